//! order-svc: one governed entry flow for every channel, the order saga, cancellations,
//! returns and refunds (`oms.order.v1.OrderService`).
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve order` or beside the others under `oms dev`.

mod api;
mod store;

use oms_platform::{
    config::{DatabaseArgs, ServerArgs},
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{order::v1::order_service_server::OrderServiceServer, service_names};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50052;

/// Flags and `OMS_*` variables of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// inventory-svc address(es), comma-separated to balance over several.
    #[arg(
        long = "inventory-url",
        env = "OMS_INVENTORY_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub inventory_url: String,
    /// fulfillment-svc address(es), comma-separated to balance over several.
    #[arg(
        long = "fulfillment-url",
        env = "OMS_FULFILLMENT_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub fulfillment_url: String,
}

/// Starts the service: database and migrations, outbox relay, gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let tasks = TaskTracker::new();
    let (_db, _outbox) = ctx
        .open_database::<store::Migrator>("order", &config.database, &tasks)
        .await?;
    let routes = Routes::new(OrderServiceServer::new(api::OrderApi));
    ctx.serve(
        "order",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::ORDER],
        tasks,
    )
    .await
}
