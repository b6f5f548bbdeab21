//! order-svc: one governed entry flow for every channel, the order saga, cancellations,
//! returns and refunds (`oms.order.v1.OrderService`).
//!
//! * `domain` — pure logic: the canonical intake and the channel adapters, validation,
//!   eligibility, the lifecycle, money, the step-up check.
//! * `store` — orders, prices, customers, rejected intakes (sea-orm).
//! * `payment` — the payment provider seam and the embedded ledger.
//! * `orders` — the operations: placement saga, cancel, verify, returns, shipment events,
//!   recovery.
//! * `events` — what it publishes; `api` — the gRPC handlers.
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve order` or beside the others under `oms dev`.

mod api;
mod domain;
mod events;
mod orders;
mod passkeys;
pub mod payment;
mod store;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use oms_platform::{
    bus::{Area, ConsumerSpec},
    client,
    config::{DatabaseArgs, ServerArgs, parse_duration},
    consumer::IdempotentConsumer,
    db,
    runtime::{RunningService, ServiceContext, StartError},
    stock_view::{self, StockView},
};
use oms_proto::{
    fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient,
    inventory::v1::inventory_service_client::InventoryServiceClient,
    order::v1::order_service_server::OrderServiceServer, service_names,
};
use rust_decimal::Decimal;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

use payment::{LedgerProvider, PaymentProvider};

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50052;

/// How long a full read of a SKU's stock is trusted (level events keep it fresh meanwhile;
/// this bounds how long a missed event could make the sold-out check wrong).
const STOCK_VIEW_TRUST: Duration = Duration::from_secs(10);

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
    /// The embedded payment ledger's database; default: the order database on PostgreSQL,
    /// `payments.db` beside it on SQLite.
    #[arg(long = "payments-database-url", env = "OMS_PAYMENTS_DATABASE_URL")]
    pub payments_database_url: Option<String>,
    /// How long stock is held for a placement (and for a high-value order's step-up).
    #[arg(long = "reservation-ttl", env = "OMS_RESERVATION_TTL", default_value = "10m", value_parser = parse_duration)]
    pub reservation_ttl: Duration,
    /// Refund shipping too when a return brings everything back.
    #[arg(long = "refund-shipping-on-full-return", env = "OMS_REFUND_SHIPPING_ON_FULL_RETURN", default_value_t = true, action = clap::ArgAction::Set)]
    pub refund_shipping_on_full_return: bool,
    /// The WebAuthn relying party id: the domain buyers' passkeys are bound to (the web shop's
    /// domain; the iOS app's associated domain).
    #[arg(
        long = "passkey-rp-id",
        env = "OMS_PASSKEY_RP_ID",
        default_value = "localhost"
    )]
    pub passkey_rp_id: String,
    /// Origins passkey answers may come from, comma-separated: the first a web origin on the
    /// RP id (https://shop.example), then more web origins or Android apps
    /// (android:apk-key-hash:<base64url SHA-256 of the app's signing certificate>).
    #[arg(
        long = "passkey-origins",
        env = "OMS_PASSKEY_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:8080"
    )]
    pub passkey_origins: Vec<String>,
    /// Accept those origins on any port (development: pages on changing localhost ports).
    #[arg(long = "passkey-any-port", env = "OMS_PASSKEY_ANY_PORT", default_value_t = false, action = clap::ArgAction::Set)]
    pub passkey_any_port: bool,
    /// How long a passkey challenge (enrolment or order verification) may be answered.
    #[arg(long = "verification-challenge-ttl", env = "OMS_VERIFICATION_CHALLENGE_TTL", default_value = "5m", value_parser = parse_duration)]
    pub verification_challenge_ttl: Duration,
    /// Failed passkey answers a held order survives before it is rejected and its stock
    /// released.
    #[arg(
        long = "verification-attempts",
        env = "OMS_VERIFICATION_ATTEMPTS",
        default_value_t = 3
    )]
    pub verification_attempts: u32,
    /// Open orders a customer may have unless their record says otherwise.
    #[arg(
        long = "max-open-orders",
        env = "OMS_MAX_OPEN_ORDERS",
        default_value_t = 20
    )]
    pub max_open_orders: u32,
    /// Country or region codes nothing ships to, comma-separated.
    #[arg(
        long = "blocked-destinations",
        env = "OMS_BLOCKED_DESTINATIONS",
        value_delimiter = ',',
        default_value = "KP,IR,SY,CU"
    )]
    pub blocked_destinations: Vec<String>,
    /// Totals above which an order needs the buyer's step-up, per currency ("EUR=2000,...").
    #[arg(
        long = "high-value-thresholds",
        env = "OMS_HIGH_VALUE_THRESHOLDS",
        value_delimiter = ',',
        default_value = "USD=2000,EUR=2000,GBP=1700,CAD=2700,AUD=3000,JPY=300000,INR=170000,BHD=750",
        value_parser = parse_threshold
    )]
    pub high_value_thresholds: Vec<(String, Decimal)>,
    /// How often interrupted placements and unverified orders are settled.
    #[arg(long = "recovery-interval", env = "OMS_RECOVERY_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub recovery_interval: Duration,
    /// A placement still unfinished this long after it began was interrupted (a crash, a
    /// database outage): recovery releases its stock and rejects it, so the buyer's retry gets
    /// an answer. Must exceed the longest placement (a few peer timeouts).
    #[arg(long = "placement-deadline", env = "OMS_PLACEMENT_DEADLINE", default_value = "60s", value_parser = parse_duration)]
    pub placement_deadline: Duration,
    /// Timeout of calls to inventory-svc and fulfillment-svc.
    #[arg(long = "peer-timeout", env = "OMS_PEER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub peer_timeout: Duration,
}

fn parse_threshold(text: &str) -> Result<(String, Decimal), String> {
    let (currency, amount) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected CUR=amount"))?;
    let amount: Decimal = amount
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: not a decimal amount"))?;
    Ok((currency.trim().to_uppercase(), amount))
}

/// The ledger's database URL: configured, or derived from the order database's.
fn payments_url(config: &Config) -> String {
    if let Some(url) = config
        .payments_database_url
        .clone()
        .filter(|u| !u.trim().is_empty())
    {
        return url;
    }
    let orders = config.database.url_or_default("order");
    match orders.rsplit_once('/') {
        Some((dir, _)) if orders.starts_with("sqlite:") => format!("{dir}/payments.db"),
        _ => orders,
    }
}

/// Starts the service with the embedded payment ledger.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let mut ledger_db = config.database.clone();
    ledger_db.url = Some(payments_url(&config));
    let mut ledger = db::connect_and_migrate::<payment::schema::Migrator>(&ledger_db).await?;
    db::measure(&mut ledger, "payments");
    start_with(config, ctx, Arc::new(LedgerProvider::new(ledger))).await
}

/// Starts the service with another payment provider.
pub async fn start_with(
    config: Config,
    ctx: ServiceContext,
    payments: Arc<dyn PaymentProvider>,
) -> Result<RunningService, StartError> {
    let tasks = TaskTracker::new();
    let (db, outbox) = ctx
        .open_database::<store::migration::Migrator>("order", &config.database, &tasks)
        .await?;
    let store = store::Store::new(db.clone(), outbox.clone());
    let (replays, answering) = orders::Replays::start(store.clone(), ctx.shutdown.clone());
    tasks.spawn(answering);
    let inventory = client::channel("inventory", &config.inventory_url, config.peer_timeout)?;
    let fulfillment = client::channel("fulfillment", &config.fulfillment_url, config.peer_timeout)?;
    let inventory = InventoryServiceClient::new(inventory);
    let view = Arc::new(StockView::new(STOCK_VIEW_TRUST));
    tasks.spawn(stock_view::follow(
        ctx.bus.clone(),
        view.clone(),
        ctx.shutdown.clone(),
    ));
    let gate = orders::StockGate::new(view, inventory.clone(), config.peer_timeout);
    tasks.spawn(orders::watch_view(gate.clone(), ctx.shutdown.clone()));
    let passkeys = passkeys::Passkeys::new(
        store.clone(),
        passkeys::PasskeySettings {
            rp_id: config.passkey_rp_id.trim().to_owned(),
            origins: config.passkey_origins.clone(),
            any_port: config.passkey_any_port,
            challenge_ttl: config.verification_challenge_ttl,
            max_attempts: config.verification_attempts.max(1),
        },
    )
    .map_err(StartError::Config)?;
    let orders = Arc::new(orders::Orders {
        store,
        inventory,
        fulfillment: FulfillmentServiceClient::new(fulfillment),
        payments,
        gate,
        replays,
        passkeys,
        settings: orders::Settings {
            reservation_ttl: config.reservation_ttl,
            placement_deadline: config.placement_deadline,
            refund_shipping_on_full_return: config.refund_shipping_on_full_return,
            policy: domain::eligibility::Policy {
                default_max_open_orders: config.max_open_orders,
                blocked_destinations: config
                    .blocked_destinations
                    .iter()
                    .map(|c| c.trim().to_uppercase())
                    .filter(|c| !c.is_empty())
                    .collect(),
                high_value_thresholds: config
                    .high_value_thresholds
                    .iter()
                    .cloned()
                    .collect::<BTreeMap<_, _>>(),
            },
        },
    });

    let shipments = ConsumerSpec::durable(Area::Fulfillment, "order-shipments")
        .with_filter("oms.fulfillment.*.shipment_status_changed");
    let consumer = IdempotentConsumer::new(
        db,
        ctx.bus.clone(),
        shipments,
        Arc::new(orders::ShipmentEvents {
            orders: orders.clone(),
        }),
    )
    .waking(outbox);
    tasks.spawn(consumer.run(ctx.shutdown.clone()));
    tasks.spawn(orders::run_recovery(
        orders.clone(),
        config.recovery_interval,
        ctx.shutdown.clone(),
    ));

    let routes = Routes::new(OrderServiceServer::new(api::OrderApi { orders }));
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
