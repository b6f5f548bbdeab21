//! The gateway: the public `oms.mobile.v1.MobileOrderService` for the mobile SDK, over gRPC
//! and gRPC-web on one port. It authenticates, rate-limits and routes to the services.
//!
//! The gateway is a library: [`start`] runs it alone under `oms serve gateway` or beside the
//! services under `oms dev`.

mod api;

use oms_platform::{
    config::ServerArgs,
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{mobile::v1::mobile_order_service_server::MobileOrderServiceServer, service_names};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the gateway listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50051;

/// Flags and `OMS_*` variables of the gateway.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// order-svc address(es), comma-separated to balance over several.
    #[arg(
        long = "order-url",
        env = "OMS_ORDER_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub order_url: String,
    /// inventory-svc address(es).
    #[arg(
        long = "inventory-url",
        env = "OMS_INVENTORY_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub inventory_url: String,
    /// fulfillment-svc address(es).
    #[arg(
        long = "fulfillment-url",
        env = "OMS_FULFILLMENT_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub fulfillment_url: String,
    /// tracking-svc address(es).
    #[arg(
        long = "tracking-url",
        env = "OMS_TRACKING_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub tracking_url: String,
}

/// Starts the gateway. gRPC-web with CORS is always on: browsers and the mobile SDK's
/// gRPC-web transport are its clients.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let mut server = config.server.clone();
    server.grpc_web = true;
    let routes = Routes::new(MobileOrderServiceServer::new(api::MobileApi));
    ctx.serve(
        "gateway",
        &server,
        DEFAULT_PORT,
        routes,
        vec![service_names::MOBILE],
        TaskTracker::new(),
    )
    .await
}
