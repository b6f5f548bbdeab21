//! The public `oms.mobile.v1` API: every call is authenticated, scoped, rate-limited and
//! routed to its service with the caller's user id — the services check that objects belong
//! to that user (someone else's order is NOT_FOUND: nothing about it leaks).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use oms_platform::{error::ApiError, telemetry::REQUEST_ID_HEADER};
use oms_proto::{
    assistant::v1::assistant_service_client::AssistantServiceClient,
    catalog::v1::catalog_service_client::CatalogServiceClient,
    common::v1::Channel as SalesChannel,
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    mobile::v1::{self as pb, mobile_order_service_server::MobileOrderService},
    order::v1::{self as ord, order_service_client::OrderServiceClient},
    tracking::v1::{self as trk, tracking_service_client::TrackingServiceClient},
};
use tonic::{
    Code, Request, Response, Status, Streaming, metadata::MetadataValue, transport::Channel,
};

mod app;
mod catalog;
mod passkeys;

use crate::{
    auth::{AuthError, Caller, Verifier, scope},
    limits::Limits,
};

/// The backends.
#[derive(Clone)]
pub struct Backends {
    /// order-svc.
    pub orders: OrderServiceClient<Channel>,
    /// inventory-svc.
    pub inventory: InventoryServiceClient<Channel>,
    /// tracking-svc.
    pub tracking: TrackingServiceClient<Channel>,
    /// catalog-svc.
    pub catalog: CatalogServiceClient<Channel>,
    /// assistant-svc.
    pub assistant: AssistantServiceClient<Channel>,
}

/// The gateway's handlers.
pub struct MobileApi {
    /// Token checks.
    pub verifier: Arc<Verifier>,
    /// Rate limits and load shedding.
    pub limits: Arc<Limits>,
    /// Where calls go.
    pub backends: Backends,
    /// Longest time a call may take downstream.
    pub timeout: Duration,
}

/// An admitted call: who, and until when.
struct Admitted {
    caller: Caller,
    deadline: Duration,
    request_id: Option<String>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Parses a `grpc-timeout` header ("250m", "5S").
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    let number: u64 = number.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(number.saturating_mul(3600)),
        "M" => Duration::from_secs(number.saturating_mul(60)),
        "S" => Duration::from_secs(number),
        "m" => Duration::from_millis(number),
        "u" => Duration::from_micros(number),
        "n" => Duration::from_nanos(number),
        _ => return None,
    })
}

fn unauthenticated(error: AuthError) -> Status {
    match error {
        AuthError::Keys(reason) => {
            tracing::error!(%reason, "cannot verify tokens");
            Status::unavailable("token verification is unavailable; retry shortly")
        }
        refused => Status::from(ApiError::Unauthenticated(refused.to_string())),
    }
}

impl MobileApi {
    /// Authenticates, checks the scope, charges the rate limit and takes an in-flight slot
    /// (`streaming` calls hold none: a stream open for hours is not load).
    async fn admit<T>(
        &self,
        request: &Request<T>,
        method: &str,
        needed: &str,
        streaming: bool,
    ) -> Result<Admitted, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| unauthenticated(AuthError::Missing))?;
        let caller = self
            .verifier
            .verify(token.trim())
            .await
            .map_err(unauthenticated)?;
        if !caller.scopes.contains(needed) {
            return Err(
                ApiError::PermissionDenied(format!("{method} needs the {needed} scope")).into(),
            );
        }
        self.limits.charge(&caller.user_id, method)?;
        let slot = if streaming {
            None
        } else {
            Some(self.limits.admit()?)
        };
        let deadline = grpc_timeout(request).map_or(self.timeout, |d| d.min(self.timeout));
        let request_id = request
            .metadata()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Admitted {
            caller,
            deadline,
            request_id,
            _slot: slot,
        })
    }
}

impl Admitted {
    /// The downstream request: the caller's id and the request id in metadata, the deadline.
    fn forward<M>(&self, message: M) -> Request<M> {
        let mut request = self.identified(message);
        request.set_timeout(self.deadline);
        request
    }

    /// The downstream request with the caller's id and the request id, without a deadline.
    fn identified<M>(&self, message: M) -> Request<M> {
        let mut request = Request::new(message);
        if let Ok(user) = MetadataValue::try_from(self.caller.user_id.as_str()) {
            request.metadata_mut().insert("x-user-id", user);
        }
        if let Some(id) = self
            .request_id
            .as_deref()
            .and_then(|id| MetadataValue::try_from(id).ok())
        {
            request.metadata_mut().insert(REQUEST_ID_HEADER, id);
        }
        request
    }
}

/// Calls once more when the backend was unavailable — only for calls that are safe to repeat
/// (reads, and writes that carry an idempotency key).
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    match call().await {
        Err(status) if status.code() == Code::Unavailable => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            call().await
        }
        outcome => outcome,
    }
}

/// The response stream of `Subscribe`.
type LiveStream =
    Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MobileOrderService for MobileApi {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::PlaceOrderResponse>, Status> {
        let call = self
            .admit(&request, "PlaceOrder", scope::WRITE, false)
            .await?;
        let r = request.into_inner();
        let message = ord::PlaceOrderRequest {
            user_id: call.caller.user_id.clone(),
            idempotency_key: r.idempotency_key,
            lines: r.lines,
            shipping_address: r.shipping_address,
            currency_code: r.currency_code,
            preference: r.preference,
            quote_id: r.quote_id,
            channel: SalesChannel::Mobile.into(),
        };
        let order = retrying(|| async {
            self.backends
                .orders
                .clone()
                .place_order(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner()
        .order;
        Ok(Response::new(pb::PlaceOrderResponse { order }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let call = self.admit(&request, "GetOrder", scope::READ, false).await?;
        let message = ord::GetOrderRequest {
            order_id: request.into_inner().order_id,
            user_id: call.caller.user_id.clone(),
        };
        let order = retrying(|| async {
            self.backends
                .orders
                .clone()
                .get_order(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner()
        .order;
        Ok(Response::new(pb::GetOrderResponse { order }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let call = self
            .admit(&request, "ListOrders", scope::READ, false)
            .await?;
        let r = request.into_inner();
        let message = ord::ListOrdersRequest {
            user_id: call.caller.user_id.clone(),
            statuses: r.statuses,
            channel: 0,
            created_after: r.created_after,
            created_before: r.created_before,
            page: r.page,
        };
        let listed = retrying(|| async {
            self.backends
                .orders
                .clone()
                .list_orders(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner();
        Ok(Response::new(pb::ListOrdersResponse {
            orders: listed.orders,
            page: listed.page,
        }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let call = self
            .admit(&request, "CancelOrder", scope::WRITE, false)
            .await?;
        let r = request.into_inner();
        let message = ord::CancelOrderRequest {
            order_id: r.order_id,
            user_id: call.caller.user_id.clone(),
            lines: r.lines,
            reason: r.reason,
            idempotency_key: r.idempotency_key,
        };
        let order = retrying(|| async {
            self.backends
                .orders
                .clone()
                .cancel_order(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner()
        .order;
        Ok(Response::new(pb::CancelOrderResponse { order }))
    }

    async fn request_return(
        &self,
        request: Request<pb::RequestReturnRequest>,
    ) -> Result<Response<pb::RequestReturnResponse>, Status> {
        let call = self
            .admit(&request, "RequestReturn", scope::WRITE, false)
            .await?;
        let r = request.into_inner();
        let message = ord::RequestReturnRequest {
            order_id: r.order_id,
            user_id: call.caller.user_id.clone(),
            lines: r.lines,
            reason: r.reason,
            idempotency_key: r.idempotency_key,
        };
        let returned = retrying(|| async {
            self.backends
                .orders
                .clone()
                .request_return(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner();
        Ok(Response::new(pb::RequestReturnResponse {
            order: returned.order,
            order_return: returned.order_return,
        }))
    }

    async fn quote_delivery(
        &self,
        request: Request<pb::QuoteDeliveryRequest>,
    ) -> Result<Response<pb::QuoteDeliveryResponse>, Status> {
        let call = self
            .admit(&request, "QuoteDelivery", scope::READ, false)
            .await?;
        let r = request.into_inner();
        let message = ord::QuoteOrderRequest {
            user_id: call.caller.user_id.clone(),
            lines: r.lines,
            destination: r.destination,
            currency_code: r.currency_code,
            preference: r.preference,
        };
        // Quoting stores a quote; a repeat stores another, which is harmless, so it may retry.
        let quoted = retrying(|| async {
            self.backends
                .orders
                .clone()
                .quote_order(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner();
        Ok(Response::new(pb::QuoteDeliveryResponse {
            quote: quoted.quote,
            subtotal: quoted.subtotal,
        }))
    }

    async fn sync_cart(
        &self,
        request: Request<pb::SyncCartRequest>,
    ) -> Result<Response<pb::SyncCartResponse>, Status> {
        let call = self
            .admit(&request, "SyncCart", scope::WRITE, false)
            .await?;
        let r = request.into_inner();
        let message = inv::SyncCartRequest {
            user_id: call.caller.user_id.clone(),
            lines: r.lines,
            near: r.near,
        };
        // A cart sync states the whole cart, so repeating it converges on the same holds.
        let synced = retrying(|| async {
            self.backends
                .inventory
                .clone()
                .sync_cart(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner();
        Ok(Response::new(pb::SyncCartResponse {
            lines: synced.lines,
            holds_expire_at: synced.holds_expire_at,
        }))
    }

    async fn sync_inventory(
        &self,
        request: Request<pb::SyncInventoryRequest>,
    ) -> Result<Response<pb::SyncInventoryResponse>, Status> {
        let call = self
            .admit(&request, "SyncInventory", scope::READ, false)
            .await?;
        let r = request.into_inner();
        let message = inv::SyncInventoryRequest {
            since_seq: r.since_seq,
            skus: r.skus,
            limit: r.limit,
        };
        let synced = retrying(|| async {
            self.backends
                .inventory
                .clone()
                .sync_inventory(call.forward(message.clone()))
                .await
        })
        .await?
        .into_inner();
        Ok(Response::new(pb::SyncInventoryResponse {
            deltas: synced.deltas,
            next_seq: synced.next_seq,
            has_more: synced.has_more,
        }))
    }

    type SubscribeStream = LiveStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let call = self.admit(&request, "Subscribe", scope::READ, true).await?;
        let r = request.into_inner();
        let message = trk::SubscribeRequest {
            user_id: call.caller.user_id.clone(),
            resume_cursor: r.resume_cursor,
            watch_skus: r.watch_skus,
        };
        // The stream outlives any call deadline.
        let upstream = self
            .backends
            .tracking
            .clone()
            .subscribe(call.identified(message))
            .await?
            .into_inner();
        let stream = upstream.map(|item| {
            item.map(|response| pb::SubscribeResponse {
                update: response.update,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_order_tracking(
        &self,
        request: Request<pb::GetOrderTrackingRequest>,
    ) -> Result<Response<pb::GetOrderTrackingResponse>, Status> {
        app::get_order_tracking(self, request).await
    }

    async fn register_device(
        &self,
        request: Request<pb::RegisterDeviceRequest>,
    ) -> Result<Response<pb::RegisterDeviceResponse>, Status> {
        app::register_device(self, request).await
    }

    async fn unregister_device(
        &self,
        request: Request<pb::UnregisterDeviceRequest>,
    ) -> Result<Response<pb::UnregisterDeviceResponse>, Status> {
        app::unregister_device(self, request).await
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::GetNotificationPreferencesResponse>, Status> {
        app::get_notification_preferences(self, request).await
    }

    async fn set_notification_preferences(
        &self,
        request: Request<pb::SetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::SetNotificationPreferencesResponse>, Status> {
        app::set_notification_preferences(self, request).await
    }

    async fn report_positions(
        &self,
        request: Request<pb::ReportPositionsRequest>,
    ) -> Result<Response<pb::ReportPositionsResponse>, Status> {
        app::report_positions(self, request).await
    }

    async fn stream_positions(
        &self,
        request: Request<Streaming<pb::StreamPositionsRequest>>,
    ) -> Result<Response<pb::StreamPositionsResponse>, Status> {
        app::stream_positions(self, request).await
    }

    async fn begin_passkey_registration(
        &self,
        request: Request<pb::BeginPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::BeginPasskeyRegistrationResponse>, Status> {
        passkeys::begin_passkey_registration(self, request).await
    }

    async fn finish_passkey_registration(
        &self,
        request: Request<pb::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<pb::FinishPasskeyRegistrationResponse>, Status> {
        passkeys::finish_passkey_registration(self, request).await
    }

    async fn list_passkeys(
        &self,
        request: Request<pb::ListPasskeysRequest>,
    ) -> Result<Response<pb::ListPasskeysResponse>, Status> {
        passkeys::list_passkeys(self, request).await
    }

    async fn remove_passkey(
        &self,
        request: Request<pb::RemovePasskeyRequest>,
    ) -> Result<Response<pb::RemovePasskeyResponse>, Status> {
        passkeys::remove_passkey(self, request).await
    }

    async fn begin_order_verification(
        &self,
        request: Request<pb::BeginOrderVerificationRequest>,
    ) -> Result<Response<pb::BeginOrderVerificationResponse>, Status> {
        passkeys::begin_order_verification(self, request).await
    }

    async fn verify_order(
        &self,
        request: Request<pb::VerifyOrderRequest>,
    ) -> Result<Response<pb::VerifyOrderResponse>, Status> {
        passkeys::verify_order(self, request).await
    }

    async fn search_products(
        &self,
        request: Request<pb::SearchProductsRequest>,
    ) -> Result<Response<pb::SearchProductsResponse>, Status> {
        catalog::search_products(self, request).await
    }

    async fn browse_catalog(
        &self,
        request: Request<pb::BrowseCatalogRequest>,
    ) -> Result<Response<pb::BrowseCatalogResponse>, Status> {
        catalog::browse_catalog(self, request).await
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        catalog::get_product(self, request).await
    }

    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        catalog::recommend(self, request).await
    }

    async fn report_interaction(
        &self,
        request: Request<pb::ReportInteractionRequest>,
    ) -> Result<Response<pb::ReportInteractionResponse>, Status> {
        catalog::report_interaction(self, request).await
    }

    async fn set_personalization(
        &self,
        request: Request<pb::SetPersonalizationRequest>,
    ) -> Result<Response<pb::SetPersonalizationResponse>, Status> {
        catalog::set_personalization(self, request).await
    }

    async fn converse(
        &self,
        request: Request<pb::ConverseRequest>,
    ) -> Result<Response<pb::ConverseResponse>, Status> {
        catalog::converse(self, request).await
    }
}
