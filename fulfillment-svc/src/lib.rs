//! fulfillment-svc: fulfillment centers, routing and split shipments, delivery quotes with
//! dynamic pricing, tax and customs, dispatch to carriers and their status updates
//! (`oms.fulfillment.v1.FulfillmentService`).
//!
//! * `domain` — the rules, without I/O: routing, promises, pricing, tax, carrier payloads.
//! * `store` — centers, quotes, shipments, the tax table.
//! * `planning` — plans and quotes over live availability from inventory-svc.
//! * `dispatch` — order events become shipments; return labels.
//! * `carrier_updates` — carrier webhooks move shipments.
//! * `api` — the gRPC handlers.

mod api;
mod carrier_updates;
mod couriers;
mod dispatch;
mod domain;
mod events;
mod learned_transit;
mod planning;
mod store;

use std::{sync::Arc, time::Duration};

use oms_platform::{
    bus::{Area, ConsumerSpec},
    client,
    config::{DatabaseArgs, ServerArgs, parse_duration},
    consumer::IdempotentConsumer,
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{
    fulfillment::v1::fulfillment_service_server::FulfillmentServiceServer,
    inventory::v1::inventory_service_client::InventoryServiceClient, service_names,
};
use rust_decimal::Decimal;
use tokio::sync::RwLock;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

use domain::{
    pricing::PricingPolicy,
    routing::Weights,
    tax::{FxRates, TaxTable},
};

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50054;

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
    /// tracking-svc address(es), where the serving delivery-time model comes from.
    #[arg(
        long = "tracking-url",
        env = "OMS_TRACKING_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub tracking_url: String,
    /// Nationwide public holidays per country (Nager.Date-shaped JSON, the file tracking-svc
    /// records the history with), for the learned promise.
    #[arg(long = "holidays-file", env = "OMS_HOLIDAYS_FILE")]
    pub holidays_file: Option<std::path::PathBuf>,
    /// How often the serving delivery-time model is looked up.
    #[arg(long = "eta-model-refresh", env = "OMS_ETA_MODEL_REFRESH", default_value = "60s", value_parser = parse_duration)]
    pub eta_model_refresh: Duration,
    /// Routing score per kilometre to the destination.
    #[arg(
        long = "route-weight-km",
        env = "OMS_ROUTE_WEIGHT_KM",
        default_value_t = 1.0
    )]
    pub route_weight_km: f64,
    /// Routing score of a fully loaded center (scaled by its load).
    #[arg(
        long = "route-weight-load",
        env = "OMS_ROUTE_WEIGHT_LOAD",
        default_value_t = 200.0
    )]
    pub route_weight_load: f64,
    /// Routing score per step to a faster method when none was asked for.
    #[arg(
        long = "route-weight-faster-method",
        env = "OMS_ROUTE_WEIGHT_FASTER_METHOD",
        default_value_t = 150.0
    )]
    pub route_weight_faster_method: f64,
    /// Routing score per extra shipment of a split.
    #[arg(
        long = "route-weight-extra-shipment",
        env = "OMS_ROUTE_WEIGHT_EXTRA_SHIPMENT",
        default_value_t = 300.0
    )]
    pub route_weight_extra_shipment: f64,
    /// Centers at or above this share of their daily capacity take no new orders.
    #[arg(
        long = "capacity-cutoff",
        env = "OMS_CAPACITY_CUTOFF",
        default_value_t = 0.95
    )]
    pub capacity_cutoff: f64,
    /// Load share where expedited prices start to surge.
    #[arg(
        long = "surge-from-load",
        env = "OMS_SURGE_FROM_LOAD",
        default_value_t = 0.6
    )]
    pub surge_from_load: f64,
    /// Lowest expedited price multiplier.
    #[arg(long = "surge-floor", env = "OMS_SURGE_FLOOR", default_value = "1")]
    pub surge_floor: Decimal,
    /// Highest expedited price multiplier (at full load).
    #[arg(long = "surge-cap", env = "OMS_SURGE_CAP", default_value = "2.5")]
    pub surge_cap: Decimal,
    /// How long a delivery quote can be honoured.
    #[arg(long = "quote-ttl", env = "OMS_QUOTE_TTL", default_value = "15m", value_parser = parse_duration)]
    pub quote_ttl: Duration,
    /// Timeout of calls to inventory-svc.
    #[arg(long = "peer-timeout", env = "OMS_PEER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub peer_timeout: Duration,
}

/// Starts the service: database, the seeded tax table, the dispatch consumer, gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    if config.surge_floor > config.surge_cap || config.surge_floor <= Decimal::ZERO {
        return Err(StartError::Config(
            "--surge-floor must be positive and at most --surge-cap".into(),
        ));
    }
    let tasks = TaskTracker::new();
    let (db, outbox) = ctx
        .open_database::<store::migration::Migrator>("fulfillment", &config.database, &tasks)
        .await?;
    let store = store::Store::new(db.clone(), outbox.clone());
    let seeded =
        TaxTable::seeded().map_err(|e| StartError::Config(format!("bundled tax data: {e}")))?;
    store
        .seed_tax_rules(seeded.rules())
        .await
        .map_err(|e| StartError::Config(format!("seeding the tax table: {e}")))?;
    let rules = store
        .tax_rules()
        .await
        .map_err(|e| StartError::Config(format!("loading the tax table: {e}")))?;
    let fx = FxRates::seeded()
        .map_err(|e| StartError::Config(format!("bundled exchange rates: {e}")))?;
    // Customs values convert at these reference rates; operators should see how old they are.
    tracing::info!(
        as_of = fx.as_of(),
        source = fx.source(),
        "reference exchange rates loaded"
    );
    let inventory = client::channel("inventory", &config.inventory_url, config.peer_timeout)?;
    let holidays = match &config.holidays_file {
        Some(path) => Some(
            oms_eta_model::holidays::HolidayCalendar::open(path)
                .map_err(|e| StartError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let learned = Arc::new(learned_transit::LearnedTransit::new(holidays));
    let tracking = client::channel("tracking", &config.tracking_url, config.peer_timeout)?;
    tasks.spawn(learned_transit::follow(
        learned.clone(),
        tracking,
        config.eta_model_refresh,
        ctx.shutdown.clone(),
    ));
    let planner = Arc::new(planning::Planner {
        learned,
        store: store.clone(),
        inventory: InventoryServiceClient::new(inventory),
        weights: Weights {
            per_km: config.route_weight_km,
            load: config.route_weight_load,
            faster_method: config.route_weight_faster_method,
            per_extra_shipment: config.route_weight_extra_shipment,
            capacity_cutoff: config.capacity_cutoff,
        },
        pricing: PricingPolicy {
            surge_from_load: config.surge_from_load,
            surge_floor: config.surge_floor,
            surge_cap: config.surge_cap,
            ..PricingPolicy::default()
        },
        tax: Arc::new(RwLock::new(TaxTable::new(rules))),
        fx: Arc::new(fx),
        quote_ttl: config.quote_ttl,
    });

    let spec = ConsumerSpec::durable(Area::Order, "fulfillment-dispatch")
        .with_filter("oms.order.*.status_changed");
    let dispatcher = IdempotentConsumer::new(
        db,
        ctx.bus.clone(),
        spec,
        Arc::new(dispatch::OrderEvents { store }),
    )
    .waking(outbox);
    tasks.spawn(dispatcher.run(ctx.shutdown.clone()));

    ctx.serve(
        "fulfillment",
        &config.server,
        DEFAULT_PORT,
        Routes::new(FulfillmentServiceServer::new(api::FulfillmentApi::new(
            planner,
        ))),
        vec![service_names::FULFILLMENT],
        tasks,
    )
    .await
}
