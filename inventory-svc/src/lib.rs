//! inventory-svc: stock per SKU per location, reservations that never oversell, the audit
//! ledger and the mobile cache sync protocol (`oms.inventory.v1.InventoryService`).
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve inventory` or beside the others under `oms dev`.

mod api;
mod store;

use oms_platform::{
    config::{DatabaseArgs, ServerArgs},
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{inventory::v1::inventory_service_server::InventoryServiceServer, service_names};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50053;

/// Flags and `OMS_*` variables of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
}

/// Starts the service: database and migrations, outbox relay, gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let tasks = TaskTracker::new();
    let (_db, _outbox) = ctx
        .open_database::<store::Migrator>("inventory", &config.database, &tasks)
        .await?;
    let routes = Routes::new(InventoryServiceServer::new(api::InventoryApi));
    ctx.serve(
        "inventory",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::INVENTORY],
        tasks,
    )
    .await
}
