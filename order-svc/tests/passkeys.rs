//! Passkeys as the biometric step-up of high-value orders, with a software authenticator
//! (webauthn-authenticator-rs's soft passkey: a real P-256 key, real CBOR and signatures):
//! enrol → a high-value order is held → its challenge is answered → CONFIRMED, announced on the
//! buyer's stream; and every answer that must be refused is refused while the order stays held
//! — user verification off, a replayed answer, an answer for another order, another user's
//! passkey, a wrong origin, a signature counter going backwards — until too many failures
//! reject the order and release its stock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use oms_platform::bus::{Area, ConsumerSpec};
use oms_proto::{
    events::v1::envelope::Payload,
    order::v1::{self as pb, OrderStatus},
};
use tonic::Code;
use webauthn_authenticator_rs::{WebauthnAuthenticator, softpasskey::SoftPasskey};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// A buyer's device: a soft passkey that reports user verification (as a phone's biometric
/// unlock does).
fn device() -> SoftPasskey {
    SoftPasskey::new(true)
}

fn origin() -> Url {
    Url::parse(APP_ORIGIN).unwrap()
}

async fn enrol(mesh: &mut Mesh, user: &str, key: &mut SoftPasskey) -> pb::Passkey {
    let begun = mesh
        .orders
        .begin_passkey_registration(pb::BeginPasskeyRegistrationRequest {
            user_id: user.into(),
            display_name: format!("{user} (test)"),
        })
        .await
        .unwrap()
        .into_inner();
    let options: CreationChallengeResponse =
        serde_json::from_str(&begun.creation_options_json).unwrap();
    let credential = key.do_registration(origin(), options).unwrap();
    mesh.orders
        .finish_passkey_registration(pb::FinishPasskeyRegistrationRequest {
            user_id: user.into(),
            registration_id: begun.registration_id,
            credential_json: serde_json::to_string(&credential).unwrap(),
            name: "test phone".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .passkey
        .unwrap()
}

async fn hold(mesh: &mut Mesh, user: &str, key: &str) -> pb::Order {
    let mut request = place_request(key, &[("WATCH", 1)]);
    request.user_id = user.into();
    let order = mesh
        .orders
        .place_order(request)
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::RequiresVerification);
    order
}

async fn challenge(mesh: &mut Mesh, order: &pb::Order) -> RequestChallengeResponse {
    let begun = mesh
        .orders
        .begin_order_verification(pb::BeginOrderVerificationRequest {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    serde_json::from_str(&begun.request_options_json).unwrap()
}

/// Asking for `order`'s challenge is refused: the buyer has no passkey to answer with.
async fn assert_told_to_enrol(mesh: &mut Mesh, order: &pb::Order) {
    let refused = mesh
        .orders
        .begin_order_verification(pb::BeginOrderVerificationRequest {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("enrol"), "{}", refused.message());
}

/// The device's answer to `options` from `at`.
fn answer(key: &mut SoftPasskey, at: Url, options: RequestChallengeResponse) -> String {
    serde_json::to_string(&key.do_authentication(at, options).unwrap()).unwrap()
}

async fn verify(
    mesh: &mut Mesh,
    order: &pb::Order,
    assertion_json: String,
) -> Result<pb::Order, tonic::Status> {
    mesh.orders
        .verify_order(pb::VerifyOrderRequest {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            idempotency_key: uuid::Uuid::now_v7().to_string(),
            assertion_json,
        })
        .await
        .map(|r| r.into_inner().order.unwrap())
}

/// Sends `assertion` for `order`: it must be refused (`PERMISSION_DENIED`, the message
/// naming `why`) and leave the order `then`.
async fn assert_refused(
    mesh: &mut Mesh,
    order: &pb::Order,
    assertion: String,
    why: &str,
    then: OrderStatus,
) {
    let refused = verify(mesh, order, assertion).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().to_lowercase().contains(why),
        "expected {why:?} in {}",
        refused.message()
    );
    assert_eq!(status(mesh, order).await, then);
}

async fn status(mesh: &mut Mesh, order: &pb::Order) -> OrderStatus {
    mesh.orders
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
        .status()
}

/// Whether the bus carried `status` for `order` on its buyer's stream.
async fn announced(mesh: &Mesh, order: &pb::Order, status: OrderStatus) -> bool {
    let mut stream = mesh
        .bus
        .consume(ConsumerSpec::replay(Area::Order, 1))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        else {
            continue;
        };
        if let Some(Payload::OrderStatusChanged(changed)) = &delivery.envelope.payload {
            let changed = changed.order.as_ref().unwrap();
            if changed.order_id == order.order_id
                && changed.status() == status
                && delivery.envelope.user_id == order.user_id
            {
                return true;
            }
        }
        delivery.ack().await.unwrap();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_confirms_a_held_order_and_every_bad_answer_is_refused() {
    let mut mesh = start(None).await;
    seed(
        &mut mesh,
        &[german_center("fc-munich", 48.14, 11.58, false)],
        &[("WATCH", "2500.00")],
        &[("WATCH", "fc-munich", 10)],
    )
    .await;

    // No passkey yet: the app is told to enrol one.
    let first = hold(&mut mesh, "ada", "w1").await;
    assert_told_to_enrol(&mut mesh, &first).await;

    // An authenticator that cannot verify the user is not enrolled.
    let mut no_uv = SoftPasskey::new(false);
    let begun = mesh
        .orders
        .begin_passkey_registration(pb::BeginPasskeyRegistrationRequest {
            user_id: "ada".into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let options: CreationChallengeResponse =
        serde_json::from_str(&begun.creation_options_json).unwrap();
    assert!(
        no_uv.do_registration(origin(), options).is_err(),
        "the options require user verification"
    );

    let mut ada_phone = device();
    let enrolled = enrol(&mut mesh, "ada", &mut ada_phone).await;
    assert!(!enrolled.credential_id.is_empty());
    let mut bob_phone = device();
    enrol(&mut mesh, "bob", &mut bob_phone).await;
    let listed = mesh
        .orders
        .list_passkeys(pb::ListPasskeysRequest {
            user_id: "ada".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .passkeys;
    assert_eq!(listed, std::slice::from_ref(&enrolled));

    // Each refused answer is counted and leaves the order held with its stock reserved; the
    // third rejects it and releases the stock.
    let mut options = serde_json::to_value(challenge(&mut mesh, &first).await).unwrap();
    options["publicKey"]["userVerification"] = "discouraged".into();
    let without_uv = answer(
        &mut ada_phone,
        origin(),
        serde_json::from_value(options).unwrap(),
    );
    assert_refused(
        &mut mesh,
        &first,
        without_uv,
        "2 attempt(s) left",
        OrderStatus::RequiresVerification,
    )
    .await;

    // Bob's device answers ada's challenge with bob's own credential.
    let bobs_order = hold(&mut mesh, "bob", "b1").await;
    let bobs_credentials = challenge(&mut mesh, &bobs_order)
        .await
        .public_key
        .allow_credentials;
    let mut adas_challenge = challenge(&mut mesh, &first).await;
    adas_challenge.public_key.allow_credentials = bobs_credentials;
    let bobs_answer = answer(&mut bob_phone, origin(), adas_challenge);
    assert_refused(
        &mut mesh,
        &first,
        bobs_answer,
        "1 attempt(s) left",
        OrderStatus::RequiresVerification,
    )
    .await;
    assert_eq!(level(&mut mesh, "WATCH", "fc-munich").await, (10, 2));

    // A page on another origin (under the RP id, so the authenticator signs) is refused.
    let elsewhere = answer(
        &mut ada_phone,
        Url::parse("https://evil.localhost").unwrap(),
        challenge(&mut mesh, &first).await,
    );
    assert_refused(
        &mut mesh,
        &first,
        elsewhere,
        "rejected",
        OrderStatus::Rejected,
    )
    .await;
    assert_eq!(
        level(&mut mesh, "WATCH", "fc-munich").await,
        (10, 1),
        "the rejected order's unit is released; bob's stays held"
    );

    // An answer to another order's challenge does not verify this one.
    let second = hold(&mut mesh, "ada", "w2").await;
    let third = hold(&mut mesh, "ada", "w3").await;
    let for_second = answer(
        &mut ada_phone,
        origin(),
        challenge(&mut mesh, &second).await,
    );
    challenge(&mut mesh, &third).await;
    assert_refused(
        &mut mesh,
        &third,
        for_second,
        "refused",
        OrderStatus::RequiresVerification,
    )
    .await;

    // An answer kept back while a later one was used: its signature counter has gone
    // backwards, as a cloned authenticator's would.
    let older = answer(
        &mut ada_phone,
        origin(),
        challenge(&mut mesh, &second).await,
    );
    let newer = answer(&mut ada_phone, origin(), challenge(&mut mesh, &third).await);
    let confirmed = verify(&mut mesh, &third, newer.clone()).await.unwrap();
    assert_eq!(confirmed.status(), OrderStatus::Confirmed);
    assert!(announced(&mesh, &third, OrderStatus::Confirmed).await);
    assert_refused(
        &mut mesh,
        &second,
        older,
        "counter",
        OrderStatus::RequiresVerification,
    )
    .await;

    // A replayed answer finds no open challenge; a fresh one answered properly confirms.
    let replayed = verify(&mut mesh, &second, newer).await.unwrap_err();
    assert_eq!(replayed.code(), Code::FailedPrecondition, "{replayed:?}");
    assert_eq!(
        status(&mut mesh, &second).await,
        OrderStatus::RequiresVerification
    );
    let fresh = answer(
        &mut ada_phone,
        origin(),
        challenge(&mut mesh, &second).await,
    );
    let confirmed = verify(&mut mesh, &second, fresh).await.unwrap();
    assert_eq!(confirmed.status(), OrderStatus::Confirmed);
    assert!(announced(&mesh, &second, OrderStatus::Confirmed).await);

    // Removing the passkey: the next held order is told to enrol again.
    let removed = mesh
        .orders
        .remove_passkey(pb::RemovePasskeyRequest {
            user_id: "ada".into(),
            credential_id: enrolled.credential_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .removed;
    assert!(removed);
    let fourth = hold(&mut mesh, "ada", "w4").await;
    assert_told_to_enrol(&mut mesh, &fourth).await;
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_order_not_verified_in_time_is_rejected_and_its_stock_released() {
    let mut mesh = start_configured(None, |config| {
        config.reservation_ttl = Duration::from_secs(2);
        config.recovery_interval = Duration::from_millis(200);
    })
    .await;
    seed(
        &mut mesh,
        &[german_center("fc-munich", 48.14, 11.58, false)],
        &[("WATCH", "2500.00")],
        &[("WATCH", "fc-munich", 10)],
    )
    .await;
    let mut phone = device();
    enrol(&mut mesh, "ada", &mut phone).await;
    let held = hold(&mut mesh, "ada", "late").await;
    let options = challenge(&mut mesh, &held).await;
    assert_eq!(level(&mut mesh, "WATCH", "fc-munich").await, (10, 1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status(&mut mesh, &held).await == OrderStatus::RequiresVerification {
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(&mut mesh, &held).await, OrderStatus::Rejected);
    assert_eq!(level(&mut mesh, "WATCH", "fc-munich").await, (10, 0));
    let late = answer(&mut phone, origin(), options);
    let refused = verify(&mut mesh, &held, late).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    stop(mesh).await;
}
