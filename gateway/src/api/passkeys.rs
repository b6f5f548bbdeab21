//! Passkeys and the biometric step-up of high-value orders: routed to order-svc with the
//! caller's id. Answers to a challenge are not retried: each challenge is answered once.

use oms_proto::{mobile::v1 as pb, order::v1 as ord};
use tonic::{Request, Response, Status};

use super::{MobileApi, retrying};
use crate::auth::scope;

/// Creation options for a new passkey of the caller's.
pub(super) async fn begin_passkey_registration(
    api: &MobileApi,
    request: Request<pb::BeginPasskeyRegistrationRequest>,
) -> Result<Response<pb::BeginPasskeyRegistrationResponse>, Status> {
    let call = api
        .admit(&request, "BeginPasskeyRegistration", scope::WRITE, false)
        .await?;
    let message = ord::BeginPasskeyRegistrationRequest {
        user_id: call.caller.user_id.clone(),
        display_name: request.into_inner().display_name,
    };
    // Each call makes a new registration; an unanswered one simply expires.
    let begun = retrying(|| async {
        api.backends
            .orders
            .clone()
            .begin_passkey_registration(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::BeginPasskeyRegistrationResponse {
        registration_id: begun.registration_id,
        creation_options_json: begun.creation_options_json,
        expires_at: begun.expires_at,
    }))
}

/// Keeps the caller's new passkey.
pub(super) async fn finish_passkey_registration(
    api: &MobileApi,
    request: Request<pb::FinishPasskeyRegistrationRequest>,
) -> Result<Response<pb::FinishPasskeyRegistrationResponse>, Status> {
    let call = api
        .admit(&request, "FinishPasskeyRegistration", scope::WRITE, false)
        .await?;
    let r = request.into_inner();
    let message = ord::FinishPasskeyRegistrationRequest {
        user_id: call.caller.user_id.clone(),
        registration_id: r.registration_id,
        credential_json: r.credential_json,
        name: r.name,
    };
    // A registration is answered once: not retried.
    let passkey = api
        .backends
        .orders
        .clone()
        .finish_passkey_registration(call.forward(message))
        .await?
        .into_inner()
        .passkey;
    Ok(Response::new(pb::FinishPasskeyRegistrationResponse {
        passkey,
    }))
}

/// The caller's passkeys.
pub(super) async fn list_passkeys(
    api: &MobileApi,
    request: Request<pb::ListPasskeysRequest>,
) -> Result<Response<pb::ListPasskeysResponse>, Status> {
    let call = api
        .admit(&request, "ListPasskeys", scope::READ, false)
        .await?;
    let message = ord::ListPasskeysRequest {
        user_id: call.caller.user_id.clone(),
    };
    let passkeys = retrying(|| async {
        api.backends
            .orders
            .clone()
            .list_passkeys(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner()
    .passkeys;
    Ok(Response::new(pb::ListPasskeysResponse { passkeys }))
}

/// Removes one of the caller's passkeys.
pub(super) async fn remove_passkey(
    api: &MobileApi,
    request: Request<pb::RemovePasskeyRequest>,
) -> Result<Response<pb::RemovePasskeyResponse>, Status> {
    let call = api
        .admit(&request, "RemovePasskey", scope::WRITE, false)
        .await?;
    let message = ord::RemovePasskeyRequest {
        user_id: call.caller.user_id.clone(),
        credential_id: request.into_inner().credential_id,
    };
    let removed = retrying(|| async {
        api.backends
            .orders
            .clone()
            .remove_passkey(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner()
    .removed;
    Ok(Response::new(pb::RemovePasskeyResponse { removed }))
}

/// The challenge of one of the caller's held orders.
pub(super) async fn begin_order_verification(
    api: &MobileApi,
    request: Request<pb::BeginOrderVerificationRequest>,
) -> Result<Response<pb::BeginOrderVerificationResponse>, Status> {
    let call = api
        .admit(&request, "BeginOrderVerification", scope::WRITE, false)
        .await?;
    let message = ord::BeginOrderVerificationRequest {
        order_id: request.into_inner().order_id,
        user_id: call.caller.user_id.clone(),
    };
    // A repeat replaces the challenge with a fresh one, so it may retry.
    let begun = retrying(|| async {
        api.backends
            .orders
            .clone()
            .begin_order_verification(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::BeginOrderVerificationResponse {
        request_options_json: begun.request_options_json,
        expires_at: begun.expires_at,
        attempts_left: begun.attempts_left,
    }))
}

/// The passkey's answer to a held order's challenge.
pub(super) async fn verify_order(
    api: &MobileApi,
    request: Request<pb::VerifyOrderRequest>,
) -> Result<Response<pb::VerifyOrderResponse>, Status> {
    let call = api
        .admit(&request, "VerifyOrder", scope::WRITE, false)
        .await?;
    let r = request.into_inner();
    let message = ord::VerifyOrderRequest {
        order_id: r.order_id,
        user_id: call.caller.user_id.clone(),
        idempotency_key: r.idempotency_key,
        assertion_json: r.assertion_json,
    };
    // The challenge is used up by the first attempt: not retried.
    let order = api
        .backends
        .orders
        .clone()
        .verify_order(call.forward(message))
        .await?
        .into_inner()
        .order;
    Ok(Response::new(pb::VerifyOrderResponse { order }))
}
