//! The live stream and GPS ingest over real gRPC with JetStream and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use oms_platform::events::to_timestamp;
use oms_proto::{
    common::v1::GeoPoint,
    order::v1::OrderStatus,
    tracking::v1::{self as pb, live_update::Kind},
};

fn report(device: &str, shipment: &str, lat: f64, seconds_ago: i64) -> pb::PositionReport {
    pb::PositionReport {
        device_id: device.into(),
        shipment_id: shipment.into(),
        point: Some(GeoPoint {
            lat,
            lng: BERLIN_DOOR.lng,
        }),
        recorded_at: Some(to_timestamp(
            chrono::Utc::now() - chrono::Duration::seconds(seconds_ago),
        )),
        accuracy_m: 5.0,
        speed_mps: 8.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_feed_moves_the_eta_and_fires_arriving() {
    let mut mesh = start(None).await;
    publish_shipment(&mut mesh, "ada", "o1", "s1").await;
    let mut stream = subscribe(&mut mesh.tracking, "ada", "").await;

    // A van 5 km south, driving north at about 36 km/h (1 km per 100 s).
    let far = mesh
        .tracking
        .report_positions(pb::ReportPositionsRequest {
            positions: vec![
                report("van-1", "s1", 52.475, 400),
                report("van-1", "s1", 52.484, 300),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (far.accepted, far.duplicates),
        (2, 0),
        "{:?}",
        far.rejections
    );
    let first = mesh
        .tracking
        .get_eta(pb::GetEtaRequest {
            shipment_id: "s1".into(),
            user_id: "ada".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .eta
        .unwrap();
    assert!(
        (first.remaining_km - 4.0).abs() < 0.1,
        "{}",
        first.remaining_km
    );
    assert!((first.speed_kmh - 36.0).abs() < 1.0, "{}", first.speed_kmh);
    assert!(!first.arriving);
    assert_eq!(first.model, "smoothed-speed-v1");

    // The same van through the client-streaming feed, closer and closer.
    let closer = report("van-1", "s1", 52.502, 200);
    let feed = futures::stream::iter([closer.clone(), closer, report("van-1", "s1", 52.5185, 100)])
        .map(|position| pb::StreamPositionsRequest {
            position: Some(position),
            ..Default::default()
        });
    let streamed = mesh
        .tracking
        .stream_positions(feed)
        .await
        .unwrap()
        .into_inner();
    assert_eq!((streamed.accepted, streamed.duplicates), (2, 1));
    let near = mesh
        .tracking
        .get_eta(pb::GetEtaRequest {
            shipment_id: "s1".into(),
            user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .eta
        .unwrap();
    assert!(near.remaining_km < 0.3 && near.arriving, "{near:?}");
    assert!(near.estimated_arrival.unwrap().seconds <= first.estimated_arrival.unwrap().seconds);

    // The buyer saw the van move, the ETA change and the "arriving" alert.
    let (mut positions, mut etas, mut arriving) = (0, 0, false);
    while let Some(update) = next_update(&mut stream, Duration::from_secs(5)).await {
        match update.kind {
            Some(Kind::Position(_)) => positions += 1,
            Some(Kind::Eta(_)) => etas += 1,
            Some(Kind::Alert(alert)) => {
                assert_eq!(alert.title, "Your parcel is arriving");
                assert!(!update.cursor.is_empty(), "alerts are durable");
                arriving = true;
            }
            _ => {}
        }
        if arriving && positions > 0 && etas > 0 {
            break;
        }
    }
    assert!(
        arriving && positions > 0 && etas > 0,
        "positions {positions}, etas {etas}, arriving {arriving}"
    );

    // Invalid positions are rejected with reasons, nothing else changes.
    let mut nowhere = report("van-1", "s1", 52.52, 0);
    nowhere.point = Some(GeoPoint {
        lat: 123.0,
        lng: 13.4,
    });
    let bad = mesh
        .tracking
        .report_positions(pb::ReportPositionsRequest {
            positions: vec![
                nowhere,
                report("van-1", "s1", 52.52, -3600),
                report("van-1", "s1", 52.0, 1),
                report("van-2", "nope", 52.5, 0),
                report("van-1", "s1", 52.5, 1000),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bad.accepted, 0);
    let reasons: Vec<_> = bad
        .rejections
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    for (expected, (index, reason)) in [
        "outside lat",
        "in the future",
        "not plausible",
        "not a known shipment",
        "before the device's previous fix",
    ]
    .iter()
    .zip(&reasons)
    {
        assert!(
            reason.contains(expected),
            "#{index}: {reason} should say {expected}"
        );
    }
    let track = mesh
        .tracking
        .get_track(pb::GetTrackRequest {
            shipment_id: "s1".into(),
            user_id: "ada".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(track.points.len(), 4);
    let stranger = mesh
        .tracking
        .get_track(pb::GetTrackRequest {
            shipment_id: "s1".into(),
            user_id: "mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        stranger.code(),
        tonic::Code::NotFound,
        "someone else's shipment does not exist for them"
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_each_receive_exactly_their_own_events_in_order() {
    const USERS: usize = 1_000;
    let mesh = start(None).await;
    // Several connections, as many phones would have.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(connect(&mesh.url).await);
    }
    let connections = clients.len();
    let mut streams = Vec::with_capacity(USERS);
    for user in 0..USERS {
        streams.push(
            subscribe(
                &mut clients[user % connections],
                &format!("user-{user}"),
                "",
            )
            .await,
        );
    }
    // Let every subscription register before the first event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses_in_order = [
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ];
    for (version, status) in (1..).zip(statuses_in_order) {
        for user in 0..USERS {
            publish_status(
                &mesh.bus,
                &format!("user-{user}"),
                &format!("order-{user}"),
                version,
                status,
            )
            .await;
        }
    }
    let readers = streams.into_iter().enumerate().map(|(user, mut stream)| {
        tokio::spawn(async move {
            let seen = statuses(&mut stream, 3, Duration::from_secs(90)).await;
            // Nothing more of this user's statuses, and never anyone else's.
            let extra = statuses(&mut stream, 1, Duration::from_millis(200)).await;
            (user, seen, extra)
        })
    });
    for outcome in futures::future::join_all(readers).await {
        let (user, seen, extra) = outcome.unwrap();
        let orders: Vec<_> = seen.iter().map(|(s, _)| s.order_id.clone()).collect();
        assert_eq!(
            orders,
            vec![format!("order-{user}"); 3],
            "user {user} got only their own"
        );
        let versions: Vec<_> = seen.iter().map(|(s, _)| s.order_version).collect();
        assert_eq!(versions, [1, 2, 3], "user {user}, in order");
        assert!(extra.is_empty(), "user {user} got more: {extra:?}");
    }
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_the_cursor_loses_and_duplicates_nothing() {
    let mut mesh = start(None).await;
    let quiet = pb::NotificationPreferences {
        user_id: "ada".into(),
        push_enabled: false,
        in_app_enabled: false,
        ..Default::default()
    };
    mesh.tracking
        .set_notification_preferences(pb::SetNotificationPreferencesRequest {
            preferences: Some(quiet),
        })
        .await
        .unwrap();
    let mut stream = subscribe(&mut mesh.tracking, "ada", "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for version in 1..=3 {
        publish_status(&mesh.bus, "ada", "o1", version, OrderStatus::Confirmed).await;
    }
    let first = statuses(&mut stream, 3, Duration::from_secs(20)).await;
    assert_eq!(first.len(), 3);
    // The phone goes through a tunnel after the second update.
    drop(stream);
    let cursor = first[1].1.clone();
    for version in 4..=6 {
        publish_status(&mesh.bus, "ada", "o1", version, OrderStatus::Confirmed).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resumed = subscribe(&mut mesh.tracking, "ada", &cursor).await;
    let caught_up = statuses(&mut resumed, 4, Duration::from_secs(20)).await;
    let versions: Vec<_> = caught_up.iter().map(|(s, _)| s.order_version).collect();
    assert_eq!(versions, [3, 4, 5, 6], "exactly what came after the cursor");
    publish_status(&mesh.bus, "ada", "o1", 7, OrderStatus::Confirmed).await;
    let live: Vec<_> = statuses(&mut resumed, 2, Duration::from_secs(3))
        .await
        .into_iter()
        .map(|(s, _)| s.order_version)
        .collect();
    assert_eq!(live, [7], "then live, without repeats");
    let bad = mesh
        .tracking
        .subscribe(pb::SubscribeRequest {
            user_id: "ada".into(),
            resume_cursor: "yesterday".into(),
            watch_skus: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_gets_conflated_positions_but_every_status_change() {
    let mut mesh = start(None).await;
    publish_shipment(&mut mesh, "ada", "o1", "s1").await;
    let mut phone = connect_slow(&mesh.url).await;
    let mut stream = subscribe(&mut phone, "ada", "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 300 fixes, one per second of a slow drive, while the app does not read.
    let positions: Vec<_> = (0..300)
        .map(|i| {
            report(
                "van-1",
                "s1",
                52.40 + f64::from(i) * 0.0001,
                300 - i64::from(i),
            )
        })
        .collect();
    let last_lat = positions.last().unwrap().point.unwrap().lat;
    for chunk in positions.chunks(100) {
        let tally = mesh
            .tracking
            .report_positions(pb::ReportPositionsRequest {
                positions: chunk.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tally.accepted, 100, "{:?}", tally.rejections);
    }
    for version in 1..=20 {
        publish_status(&mesh.bus, "ada", "o1", version, OrderStatus::Shipped).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut statuses_seen, mut positions_seen, mut latest_lat) = (Vec::new(), 0, 0.0);
    while let Some(update) = next_update(&mut stream, Duration::from_secs(2)).await {
        match update.kind {
            Some(Kind::OrderStatus(status)) => statuses_seen.push(status.order_version),
            Some(Kind::Position(position)) => {
                positions_seen += 1;
                latest_lat = position.point.unwrap().lat;
            }
            _ => {}
        }
    }
    assert_eq!(
        statuses_seen,
        (1..=20).collect::<Vec<i64>>(),
        "every status change, in order"
    );
    assert!(
        positions_seen < 300,
        "positions were conflated ({positions_seen} of 300 sent)"
    );
    assert!(
        (latest_lat - last_lat).abs() < 1e-9,
        "the latest position wins"
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_build_the_order_timeline() {
    let mut mesh = start(None).await;
    publish_status(&mesh.bus, "ada", "o9", 1, OrderStatus::Confirmed).await;
    publish_shipment(&mut mesh, "ada", "o9", "s9").await;
    publish_status(&mesh.bus, "ada", "o9", 2, OrderStatus::Shipped).await;
    let mut entries = Vec::new();
    for _ in 0..100 {
        if let Ok(timeline) = mesh
            .tracking
            .get_timeline(pb::GetTimelineRequest {
                order_id: "o9".into(),
                user_id: "ada".into(),
            })
            .await
        {
            entries = timeline.into_inner().entries;
            if entries.len() == 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<_> = entries.iter().map(|e| e.status()).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Confirmed,
            OrderStatus::Unspecified,
            OrderStatus::Shipped
        ],
        "{entries:?}"
    );
    assert!(entries[1].note.contains("shipment s9 out for delivery"));
    let stranger = mesh
        .tracking
        .get_timeline(pb::GetTimelineRequest {
            order_id: "o9".into(),
            user_id: "mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), tonic::Code::NotFound);
    stop(mesh).await;
}
