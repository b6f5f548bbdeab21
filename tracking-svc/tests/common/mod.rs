//! tracking-svc over real gRPC, on its own PostgreSQL database and NATS JetStream server; the
//! tests publish order and shipment events on the bus as order-svc and fulfillment-svc do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod history_events;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use oms_platform::{
    bus::{self, Area, EventBus},
    config::{self, BusArgs, DatabaseArgs},
    events::{envelope, to_timestamp},
    runtime::{RunningService, ServiceContext},
    testing::{NatsServer, TestDatabase, namespace},
};
use oms_proto::{
    common::v1::{Address, GeoPoint, TimeWindow},
    events::v1::{Envelope, OrderStatusChanged, ShipmentStatusChanged, envelope::Payload},
    fulfillment::v1::{Shipment, ShipmentDirection, ShipmentStatus},
    order::v1::{Order, OrderStatus},
    tracking::v1::{self as pb, live_update::Kind, tracking_service_client::TrackingServiceClient},
};
use tonic::{Streaming, transport::Channel};

pub struct Mesh {
    pub url: String,
    pub tracking: TrackingServiceClient<Channel>,
    pub bus: Arc<dyn EventBus>,
    ctx: ServiceContext,
    running: RunningService,
    _nats: NatsServer,
    _database: TestDatabase,
}

pub async fn connect(url: &str) -> TrackingServiceClient<Channel> {
    TrackingServiceClient::new(
        tonic::transport::Endpoint::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

/// A client whose HTTP/2 flow-control window holds only a few updates: a phone on a slow
/// network, so the server feels back-pressure at once.
pub async fn connect_slow(url: &str) -> TrackingServiceClient<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .initial_stream_window_size(Some(1024));
    TrackingServiceClient::new(endpoint.connect().await.unwrap())
}

/// Starts tracking-svc; pushes go to `push_url` when given.
pub async fn start(push_url: Option<String>) -> Mesh {
    start_configured(|config| config.push_webhook_url = push_url).await
}

/// Starts tracking-svc with its configuration adjusted by `configure`.
pub async fn start_configured(configure: impl FnOnce(&mut oms_tracking_svc::Config)) -> Mesh {
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
    let database = TestDatabase::postgres().await;
    let mut config: oms_tracking_svc::Config = config::defaults().unwrap();
    config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    config.database = DatabaseArgs::new(&database.url);
    config.database.max_connections = 8;
    config.push_retry_base = Duration::from_millis(100);
    config.push_poll = Duration::from_millis(50);
    config.heartbeat = Duration::from_secs(1);
    config.enrich_interval = Duration::from_millis(100);
    configure(&mut config);
    let running = oms_tracking_svc::start(config, ctx.clone()).await.unwrap();
    let url = running.url();
    Mesh {
        tracking: connect(&url).await,
        url,
        bus,
        ctx,
        running,
        _nats: nats,
        _database: database,
    }
}

pub async fn stop(mesh: Mesh) {
    mesh.ctx.shutdown.cancel();
    mesh.running.wait().await.unwrap();
}

pub const BERLIN_DOOR: GeoPoint = GeoPoint {
    lat: 52.5200,
    lng: 13.4050,
};

/// An order's status change as order-svc publishes it.
pub fn status_event(user_id: &str, order_id: &str, version: i64, status: OrderStatus) -> Envelope {
    let order = Order {
        order_id: order_id.into(),
        user_id: user_id.into(),
        status: status.into(),
        version,
        ..Default::default()
    };
    let changed = OrderStatusChanged {
        order: Some(order),
        previous_status: 0,
        note: format!("v{version}"),
    };
    envelope(
        Area::Order,
        order_id,
        "status_changed",
        user_id,
        Payload::OrderStatusChanged(changed),
    )
    .unwrap()
}

/// Publishes an order's status change.
pub async fn publish_status(
    bus: &Arc<dyn EventBus>,
    user_id: &str,
    order_id: &str,
    version: i64,
    status: OrderStatus,
) {
    bus.publish(&status_event(user_id, order_id, version, status))
        .await
        .unwrap();
}

/// Publishes an outbound shipment to Berlin as fulfillment does, and waits until tracking
/// knows it.
pub async fn publish_shipment(mesh: &mut Mesh, user_id: &str, order_id: &str, shipment_id: &str) {
    let now = chrono::Utc::now();
    let shipment = Shipment {
        shipment_id: shipment_id.into(),
        order_id: order_id.into(),
        user_id: user_id.into(),
        direction: ShipmentDirection::Outbound.into(),
        status: ShipmentStatus::OutForDelivery.into(),
        destination: Some(Address {
            country_code: "DE".into(),
            location: Some(BERLIN_DOOR),
            ..Default::default()
        }),
        promised_window: Some(TimeWindow {
            start: Some(to_timestamp(now - chrono::Duration::hours(1))),
            end: Some(to_timestamp(now + chrono::Duration::hours(8))),
        }),
        ..Default::default()
    };
    let event = envelope(
        Area::Fulfillment,
        shipment_id,
        "shipment_status_changed",
        user_id,
        Payload::ShipmentStatusChanged(ShipmentStatusChanged {
            shipment: Some(shipment),
            previous_status: 0,
        }),
    )
    .unwrap();
    mesh.bus.publish(&event).await.unwrap();
    for _ in 0..200 {
        let known = mesh
            .tracking
            .get_track(pb::GetTrackRequest {
                shipment_id: shipment_id.into(),
                user_id: String::new(),
            })
            .await;
        if known.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tracking never learned of {shipment_id}");
}

/// Opens a user's stream.
pub async fn subscribe(
    client: &mut TrackingServiceClient<Channel>,
    user_id: &str,
    resume_cursor: &str,
) -> Streaming<pb::SubscribeResponse> {
    client
        .subscribe(pb::SubscribeRequest {
            user_id: user_id.into(),
            resume_cursor: resume_cursor.into(),
            watch_skus: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next update that is not a heartbeat.
pub async fn next_update(
    stream: &mut Streaming<pb::SubscribeResponse>,
    within: Duration,
) -> Option<pb::LiveUpdate> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()??;
        let update = next.unwrap().update.unwrap();
        if !matches!(update.kind, Some(Kind::Heartbeat(_))) {
            return Some(update);
        }
    }
}

/// Collects `count` order status updates (skipping other kinds).
pub async fn statuses(
    stream: &mut Streaming<pb::SubscribeResponse>,
    count: usize,
    within: Duration,
) -> Vec<(pb::OrderStatusUpdate, String)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    while seen.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(update) = next_update(stream, left).await else {
            break;
        };
        if let Some(Kind::OrderStatus(status)) = update.kind {
            seen.push((status, update.cursor));
        }
    }
    seen
}
