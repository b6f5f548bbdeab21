//! inventory-svc: stock per SKU per location, reservations that never oversell, the audit
//! ledger and the mobile cache sync protocol (`oms.inventory.v1.InventoryService`).
//!
//! * `domain` — the rules, without I/O: validation, reservation states, hold planning, audit.
//! * `store` — the schema and the guarded level update every change goes through.
//! * `reservations`, `holds`, `stock` — the operations, one transaction each.
//! * `sequencer` — gives committed changes their sync sequence and publishes level events.
//! * `sweeper` — expires reservations and holds past their TTL.
//! * `consumers` — fulfillment centers become stock locations.
//! * `api` — the gRPC handlers.
//!
//! The service is a library: [`start`] runs it alone under `oms serve inventory` or beside the
//! others under `oms dev`.

mod api;
mod consumers;
mod domain;
mod events;
mod holds;
mod reservations;
mod sequencer;
mod stock;
mod store;
mod sweeper;

use std::{sync::Arc, time::Duration};

use oms_platform::{
    bus::{Area, ConsumerSpec},
    config::{DatabaseArgs, ServerArgs, parse_duration},
    consumer::IdempotentConsumer,
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
    /// How long an order's reservation holds before it is confirmed (or expires).
    #[arg(long = "reservation-ttl", env = "OMS_RESERVATION_TTL", default_value = "15m", value_parser = parse_duration)]
    pub reservation_ttl: Duration,
    /// How long a cart hold lasts without a sync from the app.
    #[arg(long = "hold-ttl", env = "OMS_HOLD_TTL", default_value = "10m", value_parser = parse_duration)]
    pub hold_ttl: Duration,
    /// Most units one user may hold across their cart.
    #[arg(
        long = "max-held-units",
        env = "OMS_MAX_HELD_UNITS",
        default_value_t = 50
    )]
    pub max_held_units: u32,
    /// How often the sweeper looks for expired reservations and holds.
    #[arg(long = "sweep-interval", env = "OMS_SWEEP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// Shortest time between two passes of the change sequencer: a change alone is sequenced
    /// at once, the changes of a busier moment together (one transaction, one relay pass).
    #[arg(long = "sequence-interval", env = "OMS_SEQUENCE_INTERVAL", default_value = "200ms", value_parser = parse_duration)]
    pub sequence_interval: Duration,
}

/// Starts the service: database and migrations, outbox relay, change sequencer, expiry
/// sweeper, gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let tasks = TaskTracker::new();
    let (db, outbox) = ctx
        .open_database::<store::migration::Migrator>("inventory", &config.database, &tasks)
        .await?;
    let store = store::Store::new(db.clone(), outbox);
    let centers = ConsumerSpec::durable(Area::Fulfillment, "inventory-centers")
        .with_filter("oms.fulfillment.*.center_upserted");
    let locations = IdempotentConsumer::new(
        db,
        ctx.bus.clone(),
        centers,
        Arc::new(consumers::CenterLocations),
    );
    tasks.spawn(locations.run(ctx.shutdown.clone()));
    tasks.spawn(sequencer::run(
        store.clone(),
        config.sequence_interval,
        ctx.shutdown.clone(),
    ));
    tasks.spawn(sweeper::run(
        store.clone(),
        config.sweep_interval,
        ctx.shutdown.clone(),
    ));
    let policy = holds::HoldPolicy {
        ttl: config.hold_ttl,
        max_units_per_user: i64::from(config.max_held_units),
    };
    let api = api::InventoryApi::new(store, config.reservation_ttl, policy);
    ctx.serve(
        "inventory",
        &config.server,
        DEFAULT_PORT,
        Routes::new(InventoryServiceServer::new(api)),
        vec![service_names::INVENTORY],
        tasks,
    )
    .await
}
