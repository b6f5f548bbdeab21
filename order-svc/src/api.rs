//! gRPC handlers of `oms.order.v1` (skeleton: every RPC answers UNIMPLEMENTED until the
//! service's issue fills it in; see the README's status table).

use oms_proto::order::v1::order_service_server::OrderService;

/// The service's gRPC API.
pub struct OrderApi;

#[tonic::async_trait]
impl OrderService for OrderApi {}
