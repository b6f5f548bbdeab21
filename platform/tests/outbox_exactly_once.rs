//! The outbox, the relay and an idempotent consumer deliver every event exactly once and in
//! order — on SQLite and PostgreSQL, over the in-process bus and NATS JetStream — including
//! when the bus goes away for a while, and after the bus loses everything and the outbox
//! re-publishes its retention window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use oms_platform::{
    bus::{
        Area, ConsumerSpec, EventBus,
        memory::{InProcessBus, Retention},
        nats::JetStreamBus,
    },
    config::{BusArgs, DatabaseArgs},
    consumer::{EventHandler, HandlerError, IdempotentConsumer},
    db,
    events::envelope,
    migration::{OutboxProgress, PlatformTables},
    outbox::{self, Outbox},
    relay::{Relay, RelayConfig},
    testing::{NatsServer, SwitchableBus, TestDatabase, namespace},
};
use oms_proto::{
    events::v1::{AlertRaised, Envelope, envelope::Payload},
    tracking::v1::Alert,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};
use sea_orm_migration::prelude::*;
use tokio_util::sync::CancellationToken;

/// The test's own table: one row per application of an event, deliberately without a unique
/// key, so a double application would show up as two rows.
#[derive(DeriveMigrationName)]
struct AppliedTable;

#[async_trait::async_trait]
impl MigrationTrait for AppliedTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE IF NOT EXISTS applied (position BIGINT NOT NULL, event_id VARCHAR(64) NOT NULL, n BIGINT NOT NULL)",
            )
            .await
            .map(|_| ())
    }
}

struct TestMigrator;

impl MigratorTrait for TestMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(AppliedTable),
            Box::new(OutboxProgress),
        ]
    }
}

/// Records each application in `applied`, in arrival order.
struct Recorder;

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let Some(Payload::AlertRaised(raised)) = &event.payload else {
            return Err(HandlerError::Reject("not a test event".into()));
        };
        let n: i64 = raised
            .alert
            .as_ref()
            .and_then(|a| a.alert_id.parse().ok())
            .ok_or_else(|| HandlerError::Reject("no number".into()))?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql(
                backend,
                "INSERT INTO applied (position, event_id, n) SELECT COUNT(*), ?, ? FROM applied",
            ),
            [event.event_id.clone().into(), n.into()],
        ))
        .await?;
        Ok(())
    }
}

fn sql(backend: DbBackend, text: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            let mut out = String::new();
            let mut index = 0;
            for c in text.chars() {
                if c == '?' {
                    index += 1;
                    out.push_str(&format!("${index}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => text.to_owned(),
    }
}

fn test_event(n: i64) -> Envelope {
    let alert = Alert {
        alert_id: n.to_string(),
        title: format!("event {n}"),
        ..Default::default()
    };
    envelope(
        Area::Order,
        &format!("order-{n}"),
        "alert_raised",
        "user-1",
        Payload::AlertRaised(AlertRaised { alert: Some(alert) }),
    )
    .unwrap()
}

/// Writes events `range` through the outbox, one transaction each, as producers do.
async fn produce(db: &DatabaseConnection, outbox: &Outbox, range: std::ops::Range<i64>) {
    for n in range {
        let txn = db.begin().await.unwrap();
        outbox::enqueue(&txn, &test_event(n)).await.unwrap();
        txn.commit().await.unwrap();
        outbox.wake();
    }
}

/// The numbers applied, in order of application.
async fn applied(db: &DatabaseConnection) -> Vec<i64> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT n FROM applied ORDER BY position".to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<i64>(0).unwrap())
        .collect()
}

async fn wait_for_applied(db: &DatabaseConnection, count: usize) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = applied(db).await;
        if now.len() >= count || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the test takes the bus away and brings it back.
enum Outage {
    Switch(SwitchableBus),
    Nats(NatsServer),
}

impl Outage {
    async fn bus_down(&mut self) {
        match self {
            Outage::Switch(bus) => bus.set_up(false),
            Outage::Nats(server) => server.stop(),
        }
    }

    async fn bus_up(&mut self) {
        match self {
            Outage::Switch(bus) => bus.set_up(true),
            Outage::Nats(server) => server.restart().await,
        }
    }

    /// The bus loses every event it held.
    async fn bus_loses_everything(&mut self) {
        match self {
            // The in-process bus below has no de-duplication window, so every re-published
            // event reaches the consumer again, as after a real loss.
            Outage::Switch(_) => {}
            Outage::Nats(server) => server.restart_empty().await,
        }
    }
}

async fn scenario(db_kind: &str, bus_kind: &str) {
    oms_platform::telemetry::init_for_tests();
    let database = TestDatabase::of_kind(db_kind).await;
    let db = db::connect_and_migrate::<TestMigrator>(&DatabaseArgs::new(&database.url))
        .await
        .unwrap();
    let (bus, mut outage): (Arc<dyn EventBus>, Outage) = match bus_kind {
        "jetstream" => {
            let server = NatsServer::start().await;
            let args = BusArgs {
                nats_url: Some(server.url()),
                namespace: namespace(),
                stream_replicas: 1,
                stream_max_age: Duration::from_secs(3600),
                connect_timeout: Duration::from_secs(5),
            };
            let bus = JetStreamBus::connect(&server.url(), &args).await.unwrap();
            bus.ensure_streams().await.unwrap();
            (Arc::new(bus), Outage::Nats(server))
        }
        _ => {
            let memory = InProcessBus::new(Retention {
                duplicate_window: Duration::ZERO,
                ..Retention::default()
            });
            let switch = SwitchableBus::new(Arc::new(memory));
            (Arc::new(switch.clone()), Outage::Switch(switch))
        }
    };

    let shutdown = CancellationToken::new();
    let outbox = Outbox::new();
    let mut relay_config = RelayConfig::new("test");
    relay_config.poll_interval = Duration::from_millis(50);
    let relay = Relay::new(db.clone(), bus.clone(), outbox.clone(), relay_config);
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    let mut spec = ConsumerSpec::durable(Area::Order, "recorder");
    spec.ack_wait = Duration::from_secs(2);
    let consumer = IdempotentConsumer::new(db.clone(), bus.clone(), spec, Arc::new(Recorder));
    let consumer_task = tokio::spawn(consumer.run(shutdown.clone()));

    // Bus up: events flow.
    produce(&db, &outbox, 0..20).await;
    assert_eq!(wait_for_applied(&db, 20).await, (0..20).collect::<Vec<_>>());
    wait_for_recorded(&db).await;

    // Bus down: producers keep committing; nothing is lost, nothing is published.
    outage.bus_down().await;
    produce(&db, &outbox, 20..40).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(outbox::pending_count(&db, "test").await.unwrap(), 20);
    assert_eq!(applied(&db).await.len(), 20);

    // Bus back: the backlog drains, exactly once, in order.
    outage.bus_up().await;
    produce(&db, &outbox, 40..50).await;
    assert_eq!(wait_for_applied(&db, 50).await, (0..50).collect::<Vec<_>>());

    // The bus loses everything; the outbox re-publishes its window; nothing applies twice.
    outage.bus_loses_everything().await;
    let resent = outbox
        .republish_since(&db, chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(resent, 50);
    outbox.wake();
    // A fresh event after the re-published ones: once it is applied, all before it were seen.
    produce(&db, &outbox, 50..51).await;
    let all = wait_for_applied(&db, 51).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all, (0..51).collect::<Vec<_>>());
    assert_eq!(applied(&db).await.len(), 51, "an event was applied twice");
    // The relay records how far it got in bulk, at the latest when things are quiet.
    wait_for_recorded(&db).await;

    shutdown.cancel();
    relay_task.await.unwrap();
    consumer_task.await.unwrap();
}

async fn wait_for_recorded(db: &DatabaseConnection) {
    for _ in 0..100 {
        if outbox::pending_count(db, "test").await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the relay never recorded that it published everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_sqlite_in_process_bus() {
    scenario("sqlite", "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_postgres_in_process_bus() {
    scenario("postgres", "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_sqlite_jetstream() {
    scenario("sqlite", "jetstream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_postgres_jetstream() {
    scenario("postgres", "jetstream").await;
}

#[tokio::test]
async fn a_second_relay_waits_while_the_first_holds_the_lease() {
    let database = TestDatabase::sqlite();
    let db = db::connect_and_migrate::<TestMigrator>(&DatabaseArgs::new(&database.url))
        .await
        .unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
    let outbox = Outbox::new();
    produce(&db, &outbox, 0..3).await;
    let mut first = Relay::new(
        db.clone(),
        bus.clone(),
        outbox.clone(),
        RelayConfig::new("svc"),
    );
    let mut second = Relay::new(
        db.clone(),
        bus.clone(),
        outbox.clone(),
        RelayConfig::new("svc"),
    );
    assert_eq!(first.publish_pending().await.unwrap(), 3);
    produce(&db, &outbox, 3..5).await;
    assert_eq!(
        second.publish_pending().await.unwrap(),
        0,
        "lease held by the first"
    );
    assert_eq!(first.publish_pending().await.unwrap(), 2);
}
