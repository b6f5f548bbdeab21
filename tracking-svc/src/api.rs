//! gRPC handlers of `oms.tracking.v1` (skeleton: every RPC answers UNIMPLEMENTED until the
//! service's issue fills it in; see the README's status table).

use oms_proto::tracking::v1::tracking_service_server::TrackingService;

/// The service's gRPC API.
pub struct TrackingApi;

#[tonic::async_trait]
impl TrackingService for TrackingApi {}
