//! gRPC handlers of `oms.fulfillment.v1` (skeleton: every RPC answers UNIMPLEMENTED until the
//! service's issue fills it in; see the README's status table).

use oms_proto::fulfillment::v1::fulfillment_service_server::FulfillmentService;

/// The service's gRPC API.
pub struct FulfillmentApi;

#[tonic::async_trait]
impl FulfillmentService for FulfillmentApi {}
