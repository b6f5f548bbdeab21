//! Starts a real inventory-svc on a random port over a fresh database, with a gRPC client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use oms_inventory_svc::Config;
use oms_platform::{
    bus::{EventBus, memory::InProcessBus},
    config::{self, DatabaseArgs},
    runtime::{RunningService, ServiceContext},
    testing::TestDatabase,
};
use oms_proto::{
    common::v1::GeoPoint,
    inventory::v1::{self as pb, inventory_service_client::InventoryServiceClient},
};
use tonic::transport::Channel;

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body("sqlite").await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body("postgres").await;
            }
        }
    };
}

/// A running inventory-svc.
pub struct TestInventory {
    pub client: InventoryServiceClient<Channel>,
    pub bus: Arc<dyn EventBus>,
    pub address: SocketAddr,
    ctx: ServiceContext,
    running: Option<RunningService>,
    _database: TestDatabase,
}

impl TestInventory {
    /// Started with short hold TTLs and a fast sweeper.
    pub async fn start(kind: &str) -> Self {
        Self::start_with(kind, |_| {}).await
    }

    /// Started with `adjust` applied to the configuration.
    pub async fn start_with(kind: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        oms_platform::telemetry::init_for_tests();
        let database = TestDatabase::of_kind(kind).await;
        let mut config: Config = config::defaults().unwrap();
        config.server.listen = Some("127.0.0.1:0".parse().unwrap());
        config.database = DatabaseArgs::new(&database.url);
        config.hold_ttl = Duration::from_secs(2);
        config.sweep_interval = Duration::from_millis(100);
        adjust(&mut config);
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
        let ctx = ServiceContext::new(bus.clone());
        let running = oms_inventory_svc::start(config, ctx.clone()).await.unwrap();
        let address = running.local_addr;
        let channel = tonic::transport::Endpoint::from_shared(running.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            client: InventoryServiceClient::new(channel),
            bus,
            address,
            ctx,
            running: Some(running),
            _database: database,
        }
    }

    /// Registers SKUs and locations and receives `stock` of every SKU at every location.
    pub async fn seed(&self, skus: &[&str], locations: &[(&str, f64, f64)], stock: u32) {
        let mut client = self.client.clone();
        for sku in skus {
            client
                .upsert_sku(pb::UpsertSkuRequest {
                    sku: Some(pb::Sku {
                        sku: (*sku).into(),
                        name: format!("Product {sku}"),
                        weight_grams: 500,
                        hs_code: "640399".into(),
                        origin_country: "VN".into(),
                        low_stock_threshold: 5,
                    }),
                })
                .await
                .unwrap();
        }
        for (id, lat, lng) in locations {
            client
                .upsert_location(pb::UpsertLocationRequest {
                    location: Some(pb::Location {
                        location_id: (*id).into(),
                        name: format!("Center {id}"),
                        point: Some(GeoPoint {
                            lat: *lat,
                            lng: *lng,
                        }),
                        country_code: "DE".into(),
                    }),
                })
                .await
                .unwrap();
        }
        if stock == 0 {
            return;
        }
        for sku in skus {
            for (id, _, _) in locations {
                client
                    .receive(pb::ReceiveRequest {
                        sku: (*sku).into(),
                        location_id: (*id).into(),
                        quantity: stock,
                        reason: "initial stock".into(),
                        idempotency_key: format!("seed-{sku}-{id}"),
                    })
                    .await
                    .unwrap();
            }
        }
    }

    /// (on_hand, reserved, available) of one level.
    pub async fn level(&self, sku: &str, location: &str) -> (i64, i64, i64) {
        let answer = self
            .client
            .clone()
            .get_availability(pb::GetAvailabilityRequest {
                skus: vec![sku.into()],
                location_ids: vec![location.into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        answer.items[0]
            .locations
            .iter()
            .find(|l| l.location_id == location)
            .map_or((0, 0, 0), |l| (l.on_hand, l.reserved, l.available))
    }

    /// Waits until the sync feed (sequenced changes) shows `sku` with `available` units.
    pub async fn wait_for_feed(&self, sku: &str, available: i64) {
        for _ in 0..200 {
            let page = self
                .client
                .clone()
                .sync_inventory(pb::SyncInventoryRequest {
                    since_seq: 0,
                    skus: vec![sku.into()],
                    limit: 0,
                })
                .await
                .unwrap()
                .into_inner();
            if page
                .deltas
                .iter()
                .any(|d| d.sku == sku && d.available == available)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{sku} never showed {available} available in the feed");
    }

    /// Asserts the audit finds nothing and returns how many levels it checked.
    pub async fn assert_audit_clean(&self) -> u32 {
        let audit = self
            .client
            .clone()
            .audit_inventory(pb::AuditInventoryRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(
            audit.mismatches.is_empty(),
            "audit mismatches: {:#?}",
            audit.mismatches
        );
        audit.levels_checked
    }

    /// Stops the service (drains, flushes).
    pub async fn stop(mut self) {
        self.ctx.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }
}

impl Drop for TestInventory {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

/// A reserve request with a fresh idempotency key.
pub fn reserve(order: &str, lines: &[(&str, &str, u32)]) -> pb::ReserveRequest {
    pb::ReserveRequest {
        order_id: order.into(),
        lines: lines
            .iter()
            .map(|(sku, location, quantity)| pb::ReservationLine {
                sku: (*sku).into(),
                location_id: (*location).into(),
                quantity: *quantity,
            })
            .collect(),
        ttl_seconds: 0,
        idempotency_key: format!("key-{}", uuid::Uuid::new_v4()),
        user_id: String::new(),
        until_released: false,
    }
}
