//! Both bus implementations keep the same promises: de-duplication by event id, ordered
//! sequences, replay from a sequence, redelivery of what was not acknowledged, durable
//! consumers that resume. And start-up failures are clear errors, not panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use oms_platform::{
    bus::{
        self, Area, BusError, ConsumerSpec, DeliveryStream, EventBus, StartFrom,
        memory::InProcessBus,
    },
    config::{BusArgs, DatabaseArgs},
    db,
    events::envelope,
    migration::{OutboxProgress, PlatformTables},
    testing::{NatsServer, TestDatabase, free_port, namespace},
};
use oms_proto::events::v1::{AlertRaised, Envelope, envelope::Payload};
use sea_orm::ConnectionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(PlatformTables), Box::new(OutboxProgress)]
    }
}

fn event(area: Area, entity: &str) -> Envelope {
    envelope(
        area,
        entity,
        "alert_raised",
        "",
        Payload::AlertRaised(AlertRaised::default()),
    )
    .unwrap()
}

/// A bus of each kind; the NATS server lives as long as the returned guard.
async fn buses() -> Vec<(Arc<dyn EventBus>, Option<NatsServer>)> {
    let server = NatsServer::start().await;
    let args = BusArgs {
        nats_url: Some(server.url()),
        namespace: namespace(),
        stream_replicas: 1,
        stream_max_age: Duration::from_secs(3600),
        connect_timeout: Duration::from_secs(5),
    };
    let jetstream = bus::connect(&args).await.unwrap();
    let memory = bus::connect(&BusArgs::default()).await.unwrap();
    vec![(memory, None), (jetstream, Some(server))]
}

async fn next(stream: &mut DeliveryStream) -> bus::Delivery {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a delivery within 10 s")
        .expect("stream open")
        .expect("delivery")
}

#[tokio::test]
async fn a_repeated_event_id_is_stored_once() {
    for (bus, _server) in buses().await {
        let first = event(Area::Inventory, "SKU-1");
        let a = bus.publish(&first).await.unwrap();
        let b = bus.publish(&first).await.unwrap();
        assert!(!a.duplicate, "{}", bus.kind());
        assert!(b.duplicate, "{}", bus.kind());
        assert_eq!(a.sequence, b.sequence, "{}", bus.kind());
        let c = bus.publish(&event(Area::Inventory, "SKU-1")).await.unwrap();
        assert_eq!(c.sequence, a.sequence + 1, "{}", bus.kind());
    }
}

#[tokio::test]
async fn replay_starts_at_the_requested_sequence_and_keeps_order() {
    for (bus, _server) in buses().await {
        let events: Vec<Envelope> = (0..10)
            .map(|i| event(Area::Order, &format!("o{i}")))
            .collect();
        let acks = bus.publish_batch(&events).await;
        assert_eq!(acks.len(), 10);
        let sequences: Vec<u64> = acks.into_iter().map(|a| a.unwrap().sequence).collect();
        let mut replay = bus
            .consume(ConsumerSpec::replay(Area::Order, sequences[4]))
            .await
            .unwrap();
        for expected in &events[4..] {
            let delivery = next(&mut replay).await;
            assert_eq!(
                delivery.envelope.event_id,
                expected.event_id,
                "{}",
                bus.kind()
            );
            assert_eq!(
                delivery.envelope.subject,
                expected.subject,
                "{}",
                bus.kind()
            );
            delivery.ack().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_nak_redelivers_and_a_durable_consumer_resumes_where_it_was() {
    for (bus, _server) in buses().await {
        let kind = bus.kind();
        let events: Vec<Envelope> = (0..3)
            .map(|i| event(Area::Fulfillment, &format!("s{i}")))
            .collect();
        for e in &events {
            bus.publish(e).await.unwrap();
        }
        let spec = ConsumerSpec::durable(Area::Fulfillment, "resumer");
        let mut stream = bus.consume(spec.clone()).await.unwrap();
        let first = next(&mut stream).await;
        assert_eq!(first.envelope.event_id, events[0].event_id, "{kind}");
        assert_eq!(first.delivery_count, 1, "{kind}");
        first.nak(Duration::from_millis(100)).await.unwrap();
        // Newer events keep flowing while the nak'd one waits out its delay, then it returns.
        let mut seen = Vec::new();
        let redelivered = loop {
            let delivery = next(&mut stream).await;
            if delivery.envelope.event_id == events[0].event_id {
                break delivery;
            }
            seen.push(delivery.envelope.event_id.clone());
            delivery.ack().await.unwrap();
        };
        assert_eq!(redelivered.delivery_count, 2, "{kind}");
        redelivered.ack().await.unwrap();
        while seen.len() < 2 {
            let delivery = next(&mut stream).await;
            seen.push(delivery.envelope.event_id.clone());
            delivery.ack().await.unwrap();
        }
        assert_eq!(
            seen,
            vec![events[1].event_id.clone(), events[2].event_id.clone()],
            "{kind}"
        );
        // Give JetStream a moment to record the acks before the consumer goes away.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(stream);

        let later = event(Area::Fulfillment, "s3");
        bus.publish(&later).await.unwrap();
        let mut resumed = bus.consume(spec).await.unwrap();
        let delivery = next(&mut resumed).await;
        assert_eq!(
            delivery.envelope.event_id, later.event_id,
            "{kind}: resumed past acked events"
        );
        delivery.ack().await.unwrap();
    }
}

#[tokio::test]
async fn a_filter_selects_subjects_and_new_skips_the_past() {
    for (bus, _server) in buses().await {
        bus.publish(&event(Area::Tracking, "old")).await.unwrap();
        let mut spec =
            ConsumerSpec::durable(Area::Tracking, "filtered").with_filter("oms.tracking.wanted.>");
        spec.start = StartFrom::New;
        let mut stream = bus.consume(spec).await.unwrap();
        bus.publish(&event(Area::Tracking, "other")).await.unwrap();
        let wanted = event(Area::Tracking, "wanted");
        bus.publish(&wanted).await.unwrap();
        let delivery = next(&mut stream).await;
        assert_eq!(
            delivery.envelope.event_id,
            wanted.event_id,
            "{}",
            bus.kind()
        );
    }
}

#[tokio::test]
async fn an_unreachable_nats_is_a_clear_error_at_start() {
    let args = BusArgs {
        nats_url: Some(format!("nats://127.0.0.1:{}", free_port())),
        connect_timeout: Duration::from_secs(2),
        ..BusArgs::default()
    };
    let started = std::time::Instant::now();
    let error = match bus::connect(&args).await {
        Err(error) => error,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(matches!(error, BusError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("NATS"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn events_with_a_bad_subject_are_refused() {
    let bus = InProcessBus::default();
    let mut bad = event(Area::Order, "x");
    bad.subject = "elsewhere.x".into();
    assert!(matches!(
        bus.publish(&bad).await,
        Err(BusError::InvalidSubject(_))
    ));
}

#[tokio::test]
async fn migrations_run_twice_without_harm() {
    for kind in ["sqlite", "postgres"] {
        let database = TestDatabase::of_kind(kind).await;
        let args = DatabaseArgs::new(&database.url);
        let first = db::connect_and_migrate::<Migrator>(&args).await.unwrap();
        oms_platform::outbox::enqueue(&first, &event(Area::Order, "kept"))
            .await
            .unwrap();
        let second = db::connect_and_migrate::<Migrator>(&args).await.unwrap();
        db::migrate::<Migrator>(&second).await.unwrap();
        assert_eq!(
            oms_platform::outbox::pending_count(&second, "test")
                .await
                .unwrap(),
            1,
            "{kind}"
        );
        let _ = second.execute_unprepared("SELECT 1").await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_migrations_on_postgres_do_not_collide() {
    let database = TestDatabase::postgres().await;
    let args = DatabaseArgs::new(&database.url);
    let runs = (0..4).map(|_| {
        let args = args.clone();
        tokio::spawn(async move { db::connect_and_migrate::<Migrator>(&args).await.map(|_| ()) })
    });
    for run in futures::future::join_all(runs).await {
        run.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_bad_database_url_is_a_clear_error() {
    let error = db::connect_and_migrate::<Migrator>(&DatabaseArgs::new("redis://localhost"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not supported"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "not a directory").unwrap();
    let url = format!("sqlite://{}/sub/x.db", blocked.display());
    let error = db::connect_and_migrate::<Migrator>(&DatabaseArgs::new(url))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot create the directory"),
        "{error}"
    );
}
