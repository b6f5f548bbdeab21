//! Push notifications against a real local HTTP receiver: one push per status change, retried
//! after the receiver fails, none during quiet hours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use chrono::Timelike;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use oms_proto::{order::v1::OrderStatus, tracking::v1 as pb};

/// What the receiver saw: (idempotency key, body, answered with success).
type Seen = Arc<Mutex<Vec<(String, serde_json::Value, bool)>>>;

/// An HTTP push relay that fails its first `failures` requests with 503.
async fn receiver(failures: usize) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let key = request
                            .headers()
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let mut log = log.lock().unwrap();
                        let ok = log.len() >= failures;
                        log.push((key, json, ok));
                        let status = if ok {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (url, seen)
}

async fn register(mesh: &mut Mesh, user: &str) {
    mesh.tracking
        .register_device(pb::RegisterDeviceRequest {
            user_id: user.into(),
            device_token: format!("apns-{user}"),
            platform: pb::DevicePlatform::Ios.into(),
            locale: "de-DE".into(),
        })
        .await
        .unwrap();
}

async fn wait_for(seen: &Seen, count: usize) -> Vec<(String, serde_json::Value, bool)> {
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_push_per_status_change_retried_until_the_receiver_takes_it() {
    let (url, seen) = receiver(2).await;
    let mut mesh = start(Some(url)).await;
    register(&mut mesh, "ada").await;
    publish_status(&mesh.bus, "ada", "o1", 1, OrderStatus::Confirmed).await;
    let requests = wait_for(&seen, 3).await;
    assert_eq!(requests.len(), 3, "two failures, then the delivery");
    assert_eq!(
        requests.iter().map(|r| r.2).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        requests.iter().all(|r| r.0 == requests[0].0),
        "one notification, retried under one key"
    );
    let body = &requests[2].1;
    assert_eq!(body["title"], "Order confirmed");
    assert_eq!(body["devices"][0]["token"], "apns-ada");
    assert_eq!(body["devices"][0]["platform"], "ios");
    assert_eq!(body["devices"][0]["locale"], "de-DE");

    // The same event twice (a redelivery) is one status change: one push.
    let shipped = status_event("ada", "o1", 2, OrderStatus::Shipped);
    mesh.bus.publish(&shipped).await.unwrap();
    mesh.bus.publish(&shipped).await.unwrap();
    wait_for(&seen, 4).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let delivered: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.2)
        .map(|r| r.1["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(delivered, ["Order confirmed", "Order shipped"]);
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_pushes_but_not_in_app_alerts() {
    let (url, seen) = receiver(0).await;
    let mut mesh = start(Some(url)).await;
    register(&mut mesh, "bob").await;
    let now = chrono::Utc::now();
    let minute = now.hour() * 60 + now.minute();
    let preferences = pb::NotificationPreferences {
        user_id: "bob".into(),
        push_enabled: true,
        in_app_enabled: true,
        quiet_start_minute: (minute + 24 * 60 - 60) % (24 * 60),
        quiet_end_minute: (minute + 60) % (24 * 60),
        time_zone: "UTC".into(),
        push_statuses: Vec::new(),
    };
    mesh.tracking
        .set_notification_preferences(pb::SetNotificationPreferencesRequest {
            preferences: Some(preferences),
        })
        .await
        .unwrap();
    let mut stream = subscribe(&mut mesh.tracking, "bob", "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_status(&mesh.bus, "bob", "o2", 1, OrderStatus::Shipped).await;
    let mut alert = None;
    while let Some(update) = next_update(&mut stream, Duration::from_secs(5)).await {
        if let Some(pb::live_update::Kind::Alert(a)) = update.kind {
            alert = Some(a);
            break;
        }
    }
    assert_eq!(
        alert.unwrap().title,
        "Order shipped",
        "the in-app alert is shown at once"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "no push during quiet hours"
    );
    stop(mesh).await;
}
