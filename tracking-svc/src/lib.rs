//! tracking-svc: GPS ingest, ETA, order timelines, notifications and the per-user live
//! stream (`oms.tracking.v1.TrackingService`).
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve tracking` or beside the others under `oms dev`.

mod api;
mod store;

use oms_platform::{
    config::{DatabaseArgs, ServerArgs},
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{service_names, tracking::v1::tracking_service_server::TrackingServiceServer};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50055;

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
        .open_database::<store::Migrator>("tracking", &config.database, &tasks)
        .await?;
    let routes = Routes::new(TrackingServiceServer::new(api::TrackingApi));
    ctx.serve(
        "tracking",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::TRACKING],
        tasks,
    )
    .await
}
