//! A real mesh for order-svc's tests: inventory, fulfillment and order services, each on its
//! own PostgreSQL database, over a NATS JetStream server of the test's own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use oms_order_svc::payment::PaymentProvider;
pub use oms_platform::sample::{berlin_address, eur, german_center};
use oms_platform::{
    bus::{self, EventBus},
    config::{self, BusArgs, DatabaseArgs},
    runtime::{RunningService, ServiceContext},
    sample,
    testing::{NatsServer, TestDatabase, namespace},
};
use oms_proto::{
    fulfillment::v1::{self as ful, fulfillment_service_client::FulfillmentServiceClient},
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    order::v1::{self as pb, order_service_client::OrderServiceClient},
};
use tonic::transport::Channel;

/// The web origin the tests' apps answer passkey challenges from (relying party "localhost").
pub const APP_ORIGIN: &str = "http://localhost:8080";

pub struct Mesh {
    pub orders: OrderServiceClient<Channel>,
    pub fulfillment: FulfillmentServiceClient<Channel>,
    pub inventory: InventoryServiceClient<Channel>,
    pub bus: Arc<dyn EventBus>,
    ctx: ServiceContext,
    running: Vec<RunningService>,
    _nats: NatsServer,
    _databases: Vec<TestDatabase>,
}

async fn channel(url: String) -> Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn database(db: &TestDatabase) -> DatabaseArgs {
    let mut args = DatabaseArgs::new(&db.url);
    // Three services per test and tests in parallel share one PostgreSQL.
    args.max_connections = 8;
    args
}

/// Starts the mesh; `payments` replaces the embedded ledger when given.
pub async fn start(payments: Option<Arc<dyn PaymentProvider>>) -> Mesh {
    start_configured(payments, |_| {}).await
}

/// Starts the mesh with order-svc's configuration adjusted by `configure`.
pub async fn start_configured(
    payments: Option<Arc<dyn PaymentProvider>>,
    configure: impl FnOnce(&mut oms_order_svc::Config),
) -> Mesh {
    oms_platform::telemetry::init_for_tests();
    let nats = NatsServer::start().await;
    let bus = bus::connect(&BusArgs {
        nats_url: Some(nats.url()),
        namespace: namespace(),
        ..BusArgs::default()
    })
    .await
    .unwrap();
    let ctx = ServiceContext::new(bus.clone());
    let databases = vec![
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ];

    let mut inventory_config: oms_inventory_svc::Config = config::defaults().unwrap();
    inventory_config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    inventory_config.database = database(&databases[0]);
    let inventory = oms_inventory_svc::start(inventory_config, ctx.clone())
        .await
        .unwrap();

    let mut fulfillment_config: oms_fulfillment_svc::Config = config::defaults().unwrap();
    fulfillment_config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    fulfillment_config.database = database(&databases[1]);
    fulfillment_config.inventory_url = inventory.url();
    let fulfillment = oms_fulfillment_svc::start(fulfillment_config, ctx.clone())
        .await
        .unwrap();

    let mut order_config: oms_order_svc::Config = config::defaults().unwrap();
    order_config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    order_config.database = database(&databases[2]);
    order_config.inventory_url = inventory.url();
    order_config.fulfillment_url = fulfillment.url();
    order_config.passkey_rp_id = "localhost".into();
    order_config.passkey_origins = vec![APP_ORIGIN.into()];
    order_config.max_open_orders = 1000;
    configure(&mut order_config);
    let order = match payments {
        Some(payments) => oms_order_svc::start_with(order_config, ctx.clone(), payments)
            .await
            .unwrap(),
        None => oms_order_svc::start(order_config, ctx.clone())
            .await
            .unwrap(),
    };

    Mesh {
        orders: OrderServiceClient::new(channel(order.url()).await),
        fulfillment: FulfillmentServiceClient::new(channel(fulfillment.url()).await),
        inventory: InventoryServiceClient::new(channel(inventory.url()).await),
        bus,
        ctx,
        running: vec![order, fulfillment, inventory],
        _nats: nats,
        _databases: databases,
    }
}

pub async fn stop(mesh: Mesh) {
    mesh.ctx.shutdown.cancel();
    for running in mesh.running {
        running.wait().await.unwrap();
    }
}

/// Creates centers, SKUs with prices, and stock: `stock` is (sku, center, units).
pub async fn seed(
    mesh: &mut Mesh,
    centers: &[ful::FulfillmentCenter],
    skus: &[(&str, &str)],
    stock: &[(&str, &str, u32)],
) {
    for definition in centers {
        mesh.fulfillment
            .upsert_center(ful::UpsertCenterRequest {
                center: Some(definition.clone()),
            })
            .await
            .unwrap();
    }
    for (sku, price) in skus {
        mesh.inventory
            .upsert_sku(inv::UpsertSkuRequest {
                sku: Some(inv::Sku {
                    sku: (*sku).into(),
                    name: (*sku).into(),
                    weight_grams: 700,
                    hs_code: "640399".into(),
                    origin_country: "PT".into(),
                    low_stock_threshold: 0,
                }),
            })
            .await
            .unwrap();
        mesh.orders
            .upsert_price(pb::UpsertPriceRequest {
                price: Some(pb::Price {
                    sku: (*sku).into(),
                    name: format!("The {sku}"),
                    unit_price: eur(price),
                }),
            })
            .await
            .unwrap();
    }
    // Centers reach inventory as locations through the bus.
    for (sku, location, quantity) in stock {
        let mut received = false;
        for _ in 0..200 {
            let request = inv::ReceiveRequest {
                sku: (*sku).into(),
                location_id: (*location).into(),
                quantity: *quantity,
                reason: "seed".into(),
                idempotency_key: format!("seed-{sku}-{location}"),
            };
            if mesh.inventory.receive(request).await.is_ok() {
                received = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(received, "{location} never became a stock location");
    }
}

pub fn place_request(key: &str, lines: &[(&str, u32)]) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        user_id: "ada".into(),
        idempotency_key: key.into(),
        lines: lines
            .iter()
            .map(|(sku, quantity)| pb::OrderLineInput {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
        shipping_address: Some(berlin_address()),
        currency_code: "EUR".into(),
        ..Default::default()
    }
}

/// Polls an order until `done` holds.
pub async fn wait_for_order(
    mesh: &mut Mesh,
    order_id: &str,
    done: impl Fn(&pb::Order) -> bool,
) -> pb::Order {
    let mut last = None;
    for _ in 0..400 {
        let order = mesh
            .orders
            .get_order(pb::GetOrderRequest {
                order_id: order_id.into(),
                user_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        if done(&order) {
            return order;
        }
        last = Some(order);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order {order_id} never got there: {last:#?}");
}

/// Polls fulfillment until the order's shipments are with their carriers.
pub async fn wait_for_dispatch(
    mesh: &mut Mesh,
    order_id: &str,
    count: usize,
) -> Vec<ful::Shipment> {
    for _ in 0..400 {
        let shipments = mesh
            .fulfillment
            .list_shipments(ful::ListShipmentsRequest {
                order_id: order_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .shipments;
        let outbound: Vec<_> = shipments
            .into_iter()
            .filter(|s| s.direction() == ful::ShipmentDirection::Outbound)
            .collect();
        if outbound.len() >= count {
            return outbound;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{order_id} was not dispatched");
}

/// A carrier reports `status` ("picked_up", "delivered") for a shipment, in its own format.
pub async fn carrier_reports(mesh: &mut Mesh, shipment: &ful::Shipment, status: &str) {
    mesh.fulfillment
        .report_carrier_update(ful::ReportCarrierUpdateRequest {
            carrier: shipment.carrier.clone(),
            payload: sample::carrier_payload(shipment, status),
        })
        .await
        .unwrap();
}

/// (on_hand, reserved) of a SKU at a location.
pub async fn level(mesh: &mut Mesh, sku: &str, location: &str) -> (i64, i64) {
    let availability = mesh
        .inventory
        .get_availability(inv::GetAvailabilityRequest {
            skus: vec![sku.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    availability
        .items
        .iter()
        .flat_map(|s| &s.locations)
        .find(|l| l.location_id == location)
        .map(|l| (l.on_hand, l.reserved))
        .unwrap_or_default()
}

/// The inventory audit finds nothing wrong.
pub async fn assert_audit_clean(mesh: &mut Mesh) {
    let audit = mesh
        .inventory
        .audit_inventory(inv::AuditInventoryRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(audit.mismatches.is_empty(), "{:#?}", audit.mismatches);
}
