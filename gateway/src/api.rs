//! gRPC handlers of `oms.mobile.v1` (skeleton: every RPC answers UNIMPLEMENTED until the
//! gateway issue fills it in; see the README's status table).

use oms_proto::mobile::v1::mobile_order_service_server::MobileOrderService;

/// The public mobile API.
pub struct MobileApi;

#[tonic::async_trait]
impl MobileOrderService for MobileApi {}
