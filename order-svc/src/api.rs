//! gRPC handlers of `oms.order.v1`: decode, check, call the operations, map errors.

use std::sync::Arc;

use oms_platform::{
    error::{ApiError, Violations},
    events::from_timestamp,
};
use oms_proto::{
    common::v1::{Channel, PageRequest, PageResponse},
    order::v1::{self as pb, order_service_server::OrderService},
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Intake, IntakeLine, channels, validate},
    orders::Orders,
    store::OrderFilter,
};

/// The service's gRPC API.
pub struct OrderApi {
    /// The operations.
    pub orders: Arc<Orders>,
}

/// Default and largest page.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn page_size(page: Option<&PageRequest>) -> Result<u64, ApiError> {
    match page.map_or(0, |p| p.page_size) {
        0 => Ok(u64::from(DEFAULT_PAGE)),
        size if size > MAX_PAGE => Err(ApiError::invalid(
            "page.page_size",
            format!("at most {MAX_PAGE}"),
        )),
        size => Ok(u64::from(size)),
    }
}

fn page_token(page: Option<&PageRequest>) -> Result<Option<String>, ApiError> {
    let token = page.map(|p| p.page_token.clone()).unwrap_or_default();
    if token.is_empty() {
        return Ok(None);
    }
    if uuid::Uuid::parse_str(&token).is_err() {
        return Err(ApiError::invalid(
            "page.page_token",
            "not a token this service issued",
        ));
    }
    Ok(Some(token))
}

/// The mobile request as an intake (the gateway has set `user_id` from the token).
fn mobile_intake(request: pb::PlaceOrderRequest) -> Intake {
    Intake {
        channel: match Channel::try_from(request.channel) {
            Ok(Channel::Unspecified) | Err(_) => Channel::Mobile,
            Ok(channel) => channel,
        },
        external_ref: String::new(),
        user_id: request.user_id,
        idempotency_key: request.idempotency_key,
        currency_code: request.currency_code,
        lines: request
            .lines
            .into_iter()
            .map(|l| IntakeLine {
                sku: l.sku,
                quantity: l.quantity,
                unit_price: None,
            })
            .collect(),
        shipping_address: request.shipping_address,
        preference: request.preference,
        quote_id: request.quote_id,
    }
}

/// Largest WebAuthn JSON accepted (attestations with certificate chains run to a few KB).
const MAX_WEBAUTHN_JSON: usize = 64 * 1024;

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::PlaceOrderResponse>, Status> {
        let order = self
            .orders
            .place(mobile_intake(request.into_inner()))
            .await?;
        Ok(Response::new(pb::PlaceOrderResponse { order: Some(order) }))
    }

    async fn quote_order(
        &self,
        request: Request<pb::QuoteOrderRequest>,
    ) -> Result<Response<pb::QuoteOrderResponse>, Status> {
        Ok(Response::new(
            self.orders.quote(request.into_inner()).await?,
        ))
    }

    async fn ingest_channel_order(
        &self,
        request: Request<pb::IngestChannelOrderRequest>,
    ) -> Result<Response<pb::IngestChannelOrderResponse>, Status> {
        let request = request.into_inner();
        let channel = Channel::try_from(request.channel).unwrap_or(Channel::Unspecified);
        let mut intake = match channels::adapt(channel, &request.payload) {
            Ok(intake) => intake,
            Err(unmappable) => {
                // Kept for operators (ListRejectedIntakes): a channel's order is never dropped silently.
                let intake_id = self
                    .orders
                    .store
                    .reject_intake(channel, &request.payload, &unmappable.0)
                    .await?;
                tracing::warn!(%intake_id, channel = channel.as_str_name(), reason = %unmappable, "channel payload rejected");
                return Err(ApiError::invalid(
                    "payload",
                    format!("{unmappable} (kept as rejected intake {intake_id})"),
                )
                .into());
            }
        };
        if !request.idempotency_key.is_empty() {
            intake.idempotency_key = request.idempotency_key;
        }
        let order = self.orders.place(intake).await?;
        Ok(Response::new(pb::IngestChannelOrderResponse {
            order: Some(order),
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.into_result()?;
        let stored = self
            .orders
            .visible(&request.order_id, &request.user_id)
            .await?;
        Ok(Response::new(pb::GetOrderResponse {
            order: Some(stored.order),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        if !request.user_id.is_empty() {
            v.id("user_id", &request.user_id);
        }
        for (i, status) in request.statuses.iter().enumerate() {
            if pb::OrderStatus::try_from(*status).is_err() || *status == 0 {
                v.add(format!("statuses[{i}]"), "not an order status");
            }
        }
        if Channel::try_from(request.channel).is_err() {
            v.add("channel", "not a channel");
        }
        v.into_result()?;
        let limit = page_size(request.page.as_ref())?;
        let filter = OrderFilter {
            user_id: (!request.user_id.is_empty()).then_some(request.user_id),
            statuses: request.statuses,
            channel: (request.channel != 0).then_some(request.channel),
            created_after: request.created_after.as_ref().and_then(from_timestamp),
            created_before: request.created_before.as_ref().and_then(from_timestamp),
            before_order_id: page_token(request.page.as_ref())?,
        };
        let orders = self.orders.store.list(&filter, limit).await?;
        let next_page_token = if orders.len() as u64 == limit {
            orders
                .last()
                .map(|o| o.order_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrdersResponse {
            orders,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.text("reason", &request.reason, 500, false);
        v.into_result()?;
        let order = self.orders.cancel(request).await?;
        Ok(Response::new(pb::CancelOrderResponse {
            order: Some(order),
        }))
    }

    async fn request_return(
        &self,
        request: Request<pb::RequestReturnRequest>,
    ) -> Result<Response<pb::RequestReturnResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.into_result()?;
        Ok(Response::new(self.orders.request_return(request).await?))
    }

    async fn receive_return(
        &self,
        request: Request<pb::ReceiveReturnRequest>,
    ) -> Result<Response<pb::ReceiveReturnResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("return_id", &request.return_id);
        v.into_result()?;
        Ok(Response::new(self.orders.receive_return(request).await?))
    }

    async fn verify_order(
        &self,
        request: Request<pb::VerifyOrderRequest>,
    ) -> Result<Response<pb::VerifyOrderResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.text(
            "assertion_json",
            &request.assertion_json,
            MAX_WEBAUTHN_JSON,
            true,
        );
        v.into_result()?;
        let order = self.orders.verify(request).await?;
        Ok(Response::new(pb::VerifyOrderResponse {
            order: Some(order),
        }))
    }

    async fn begin_order_verification(
        &self,
        request: Request<pb::BeginOrderVerificationRequest>,
    ) -> Result<Response<pb::BeginOrderVerificationResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.into_result()?;
        Ok(Response::new(
            self.orders
                .begin_verification(&request.order_id, &request.user_id)
                .await?,
        ))
    }

    async fn begin_passkey_registration(
        &self,
        request: Request<pb::BeginPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::BeginPasskeyRegistrationResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        v.text("display_name", &request.display_name, 100, false);
        v.into_result()?;
        Ok(Response::new(
            self.orders
                .passkeys
                .begin_registration(&request.user_id, &request.display_name)
                .await?,
        ))
    }

    async fn finish_passkey_registration(
        &self,
        request: Request<pb::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::FinishPasskeyRegistrationResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        v.id("registration_id", &request.registration_id);
        v.text(
            "credential_json",
            &request.credential_json,
            MAX_WEBAUTHN_JSON,
            true,
        );
        v.into_result()?;
        let passkey = self.orders.passkeys.finish_registration(&request).await?;
        Ok(Response::new(pb::FinishPasskeyRegistrationResponse {
            passkey: Some(passkey),
        }))
    }

    async fn list_passkeys(
        &self,
        request: Request<pb::ListPasskeysRequest>,
    ) -> Result<Response<pb::ListPasskeysResponse>, Status> {
        let user_id = request.into_inner().user_id;
        let mut v = Violations::new();
        v.id("user_id", &user_id);
        v.into_result()?;
        let passkeys = self.orders.passkeys.list(&user_id).await?;
        Ok(Response::new(pb::ListPasskeysResponse { passkeys }))
    }

    async fn remove_passkey(
        &self,
        request: Request<pb::RemovePasskeyRequest>,
    ) -> Result<Response<pb::RemovePasskeyResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        v.text("credential_id", &request.credential_id, 2048, true);
        v.into_result()?;
        let removed = self
            .orders
            .passkeys
            .remove(&request.user_id, &request.credential_id)
            .await?;
        Ok(Response::new(pb::RemovePasskeyResponse { removed }))
    }

    async fn list_rejected_intakes(
        &self,
        request: Request<pb::ListRejectedIntakesRequest>,
    ) -> Result<Response<pb::ListRejectedIntakesResponse>, Status> {
        let request = request.into_inner();
        if Channel::try_from(request.channel).is_err() {
            return Err(ApiError::invalid("channel", "not a channel").into());
        }
        let limit = page_size(request.page.as_ref())?;
        let before = page_token(request.page.as_ref())?;
        let intakes = self
            .orders
            .store
            .rejected_intakes(
                (request.channel != 0).then_some(request.channel),
                before,
                limit,
            )
            .await?;
        let next_page_token = if intakes.len() as u64 == limit {
            intakes
                .last()
                .map(|i| i.intake_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListRejectedIntakesResponse {
            intakes,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn upsert_price(
        &self,
        request: Request<pb::UpsertPriceRequest>,
    ) -> Result<Response<pb::UpsertPriceResponse>, Status> {
        let price = validate::price(request.get_ref().price.as_ref())?;
        self.orders.store.upsert_price(&price).await?;
        Ok(Response::new(pb::UpsertPriceResponse {
            price: Some(price),
        }))
    }

    async fn upsert_customer(
        &self,
        request: Request<pb::UpsertCustomerRequest>,
    ) -> Result<Response<pb::UpsertCustomerResponse>, Status> {
        let customer = validate::customer(request.get_ref().customer.as_ref())?;
        self.orders.store.upsert_customer(&customer).await?;
        Ok(Response::new(pb::UpsertCustomerResponse {
            customer: Some(customer),
        }))
    }
}
