//! The gateway in front of real services (SQLite, in-process bus), shared by the gateway's
//! tests: an identity provider publishing the dev key and an RSA key, a Berlin center with
//! tee shirts in stock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use oms_gateway::dev_key;
use oms_platform::{
    bus::memory::InProcessBus,
    config::{self, DatabaseArgs},
    runtime::{RunningService, ServiceContext},
};
use oms_proto::{
    catalog::v1::catalog_service_client::CatalogServiceClient,
    common::v1::{Address, GeoPoint, Money},
    fulfillment::v1::{self as ful, fulfillment_service_client::FulfillmentServiceClient},
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    mobile::v1::{self as pb, mobile_order_service_client::MobileOrderServiceClient},
    order::v1::{self as ord, OrderLineInput, order_service_client::OrderServiceClient},
    tracking::v1::{PositionReport, tracking_service_client::TrackingServiceClient},
};
use tonic::{Request, transport::Channel};

/// How the mesh is set up.
pub struct Options {
    /// The gateway's per-user rate.
    pub rate_per_user: u32,
    /// Where tracking posts pushes (none: logged).
    pub push_webhook_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate_per_user: 1000,
            push_webhook_url: None,
        }
    }
}

pub struct Mesh {
    /// The public API.
    pub gateway: MobileOrderServiceClient<Channel>,
    /// Mints tokens the gateway trusts.
    pub key: dev_key::DevKey,
    /// Dispatch (operators and couriers' back office).
    pub fulfillment: FulfillmentServiceClient<Channel>,
    /// Stock, for checking what a refused call left behind.
    pub inventory: InventoryServiceClient<Channel>,
    /// Delivery history and models (operators).
    pub tracking: TrackingServiceClient<Channel>,
    /// Products (operators).
    pub catalog: CatalogServiceClient<Channel>,
    pub ctx: ServiceContext,
    pub running: Vec<RunningService>,
    _dir: tempfile::TempDir,
}

pub async fn channel(url: String) -> Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn database(dir: &std::path::Path, name: &str) -> DatabaseArgs {
    DatabaseArgs::new(format!("sqlite://{}/{name}.db", dir.display()))
}

pub async fn start(rate_per_user: u32) -> Mesh {
    start_with(Options {
        rate_per_user,
        ..Options::default()
    })
    .await
}

pub async fn start_with(options: Options) -> Mesh {
    let rate_per_user = options.rate_per_user;
    oms_platform::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let ctx = ServiceContext::new(Arc::new(InProcessBus::default()));
    let listen = || Some("127.0.0.1:0".parse().unwrap());

    let mut inventory: oms_inventory_svc::Config = config::defaults().unwrap();
    inventory.server.listen = listen();
    inventory.database = database(dir.path(), "inventory");
    let inventory = oms_inventory_svc::start(inventory, ctx.clone())
        .await
        .unwrap();
    let mut tracking: oms_tracking_svc::Config = config::defaults().unwrap();
    tracking.server.listen = listen();
    tracking.database = database(dir.path(), "tracking");
    tracking.heartbeat = Duration::from_millis(300);
    tracking.push_webhook_url = options.push_webhook_url;
    tracking.eta_retrain_interval = Duration::ZERO;
    tracking.eta_iterations = 80;
    let tracking = oms_tracking_svc::start(tracking, ctx.clone())
        .await
        .unwrap();
    let mut fulfillment: oms_fulfillment_svc::Config = config::defaults().unwrap();
    fulfillment.server.listen = listen();
    fulfillment.database = database(dir.path(), "fulfillment");
    fulfillment.inventory_url = inventory.url();
    fulfillment.tracking_url = tracking.url();
    fulfillment.eta_model_refresh = Duration::from_millis(200);
    let fulfillment = oms_fulfillment_svc::start(fulfillment, ctx.clone())
        .await
        .unwrap();
    let mut catalog: oms_catalog_svc::Config = config::defaults().unwrap();
    catalog.server.listen = listen();
    catalog.database = database(dir.path(), "catalog");
    let catalog = oms_catalog_svc::start(catalog, ctx.clone()).await.unwrap();
    let mut assistant: oms_assistant_svc::Config = config::defaults().unwrap();
    assistant.server.listen = listen();
    assistant.catalog_url = catalog.url();
    assistant.tracking_url = tracking.url();
    assistant.catalog_refresh = Duration::from_millis(200);
    let mut order: oms_order_svc::Config = config::defaults().unwrap();
    order.server.listen = listen();
    order.database = database(dir.path(), "order");
    order.inventory_url = inventory.url();
    order.fulfillment_url = fulfillment.url();
    let order = oms_order_svc::start(order, ctx.clone()).await.unwrap();
    assistant.order_url = order.url();
    let assistant = oms_assistant_svc::start(assistant, ctx.clone())
        .await
        .unwrap();

    // The identity provider publishes an ES256 key (the dev key) and an RS256 key.
    let key = dev_key::ensure(dir.path()).unwrap();
    let mut jwks: serde_json::Value = serde_json::from_str(&key.jwks).unwrap();
    let rsa: serde_json::Value =
        serde_json::from_str(include_str!("../data/rsa-test-key.jwk.json")).unwrap();
    jwks["keys"].as_array_mut().unwrap().push(rsa);
    let jwks_path = dir.path().join("idp-jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let mut gateway: oms_gateway::Config = config::defaults().unwrap();
    gateway.server.listen = listen();
    gateway.order_url = order.url();
    gateway.inventory_url = inventory.url();
    gateway.tracking_url = tracking.url();
    gateway.catalog_url = catalog.url();
    gateway.assistant_url = assistant.url();
    gateway.jwks_file = Some(jwks_path);
    gateway.rate_per_user = rate_per_user;
    gateway.rate_burst = rate_per_user * 2;
    let gateway = oms_gateway::start(gateway, ctx.clone()).await.unwrap();

    seed(&order.url(), &inventory.url(), &fulfillment.url()).await;
    Mesh {
        gateway: MobileOrderServiceClient::new(channel(gateway.url()).await),
        fulfillment: FulfillmentServiceClient::new(channel(fulfillment.url()).await),
        inventory: InventoryServiceClient::new(channel(inventory.url()).await),
        tracking: TrackingServiceClient::new(channel(tracking.url()).await),
        catalog: CatalogServiceClient::new(channel(catalog.url()).await),
        key,
        ctx,
        running: vec![
            gateway,
            assistant,
            order,
            catalog,
            tracking,
            fulfillment,
            inventory,
        ],
        _dir: dir,
    }
}

pub async fn seed(order_url: &str, inventory_url: &str, fulfillment_url: &str) {
    let mut fulfillment = FulfillmentServiceClient::new(channel(fulfillment_url.to_owned()).await);
    let mut inventory = InventoryServiceClient::new(channel(inventory_url.to_owned()).await);
    let mut orders = OrderServiceClient::new(channel(order_url.to_owned()).await);
    let eur = |amount: &str| {
        Some(Money {
            currency_code: "EUR".into(),
            amount: amount.into(),
        })
    };
    let center = ful::FulfillmentCenter {
        center_id: "fc-berlin".into(),
        name: "Berlin".into(),
        point: Some(GeoPoint {
            lat: 52.52,
            lng: 13.40,
        }),
        country_code: "DE".into(),
        daily_capacity: 1000,
        handling_hours: 2,
        cutoff_minute_utc: 23 * 60,
        methods: vec![ful::MethodOffer {
            method: 1,
            carrier: "parcelnet".into(),
            base_hours: 24,
            per_100km_hours: 2.0,
            max_km: 0.0,
            base_price: eur("4.90"),
        }],
        active: true,
        ..Default::default()
    };
    fulfillment
        .upsert_center(ful::UpsertCenterRequest {
            center: Some(center),
        })
        .await
        .unwrap();
    inventory
        .upsert_sku(inv::UpsertSkuRequest {
            sku: Some(inv::Sku {
                sku: "TEE".into(),
                name: "Tee".into(),
                weight_grams: 200,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    orders
        .upsert_price(ord::UpsertPriceRequest {
            price: Some(ord::Price {
                sku: "TEE".into(),
                name: "Tee".into(),
                unit_price: eur("19.90"),
            }),
        })
        .await
        .unwrap();
    for _ in 0..200 {
        let receive = inv::ReceiveRequest {
            sku: "TEE".into(),
            location_id: "fc-berlin".into(),
            quantity: 1000,
            reason: "seed".into(),
            idempotency_key: "seed".into(),
        };
        if inventory.receive(receive).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fc-berlin never became a stock location");
}

pub async fn stop(mesh: Mesh) {
    mesh.ctx.shutdown.cancel();
    for running in mesh.running {
        running.wait().await.unwrap();
    }
}

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn place(key: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        idempotency_key: key.into(),
        lines: vec![OrderLineInput {
            sku: "TEE".into(),
            quantity: 1,
        }],
        shipping_address: Some(Address {
            country_code: "DE".into(),
            region: "DE-BE".into(),
            location: Some(GeoPoint {
                lat: 52.51,
                lng: 13.39,
            }),
            ..Default::default()
        }),
        currency_code: "EUR".into(),
        ..Default::default()
    }
}

pub fn token(mesh: &Mesh, user: &str, scopes: &str) -> String {
    mesh.key
        .mint(user, scopes, Duration::from_secs(600))
        .unwrap()
}

/// Retries `check` for up to ten seconds (events travel asynchronously).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

pub fn fix(device: &str, shipment: &str, lat: f64, seconds_ago: i64) -> PositionReport {
    PositionReport {
        device_id: device.into(),
        shipment_id: shipment.into(),
        point: Some(GeoPoint { lat, lng: 13.39 }),
        recorded_at: Some(oms_platform::events::to_timestamp(
            chrono::Utc::now() - chrono::Duration::seconds(seconds_ago),
        )),
        ..Default::default()
    }
}
