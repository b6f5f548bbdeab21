//! The app's own API through the gateway, against real services (SQLite, in-process bus) and a
//! real HTTP push relay: an app registers its devices and chooses its pushes, gets exactly the
//! pushes it asked for, reads an order's whole tracking history after the fact; a courier's
//! token reports positions only for the shipments dispatch gave that courier; calls without an
//! idempotency key are refused and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use common::{Mesh, Options, eventually, fix, place, start_with, stop, token, with_token};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use oms_proto::{
    fulfillment::v1 as ful,
    inventory::v1 as inv,
    mobile::v1 as pb,
    order::v1::{LineQuantity, OrderStatus},
    tracking::v1::{DevicePlatform, NotificationPreferences, PositionReport},
};
use tonic::Code;

/// The bodies the push relay received.
type Pushes = Arc<Mutex<Vec<serde_json::Value>>>;

/// An HTTP push relay that takes every push.
async fn push_relay() -> (String, Pushes) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    let pushes: Pushes = Arc::default();
    let log = pushes.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        log.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (url, pushes)
}

async fn reserved_tees(mesh: &mut Mesh) -> i64 {
    let items = mesh
        .inventory
        .get_availability(inv::GetAvailabilityRequest {
            skus: vec!["TEE".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    items[0].locations.iter().map(|l| l.reserved).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_preferences_tracking_history_and_couriers_through_the_gateway() {
    let (relay, pushes) = push_relay().await;
    let mut mesh = start_with(Options {
        push_webhook_url: Some(relay),
        ..Options::default()
    })
    .await;
    let ada = token(&mesh, "ada", "orders:read orders:write");
    let bob = token(&mesh, "bob", "orders:read orders:write");
    let kim = token(&mesh, "kim", "courier");
    let lee = token(&mesh, "lee", "courier");

    // Two installs of ada's, and a malformed registration that changes nothing.
    for (device_token, platform, locale) in [
        ("apns-ada", DevicePlatform::Ios, "de-DE"),
        ("fcm-ada", DevicePlatform::Android, ""),
    ] {
        let register = pb::RegisterDeviceRequest {
            device_token: device_token.into(),
            platform: platform.into(),
            locale: locale.into(),
        };
        mesh.gateway
            .register_device(with_token(register, &ada))
            .await
            .unwrap();
    }
    for bad in [
        pb::RegisterDeviceRequest {
            device_token: " ".into(),
            platform: DevicePlatform::Ios.into(),
            ..Default::default()
        },
        pb::RegisterDeviceRequest {
            device_token: "apns-x".into(),
            ..Default::default()
        },
        pb::RegisterDeviceRequest {
            device_token: "apns-x".into(),
            platform: DevicePlatform::Ios.into(),
            locale: "not a language!".into(),
        },
    ] {
        let refused = mesh
            .gateway
            .register_device(with_token(bad, &ada))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }

    // Ada wants a push only when an order arrives.
    let wanted = NotificationPreferences {
        user_id: "someone-else".into(),
        push_statuses: vec![OrderStatus::Delivered.into()],
        push_enabled: true,
        in_app_enabled: true,
        time_zone: "Europe/Berlin".into(),
        ..Default::default()
    };
    let set = pb::SetNotificationPreferencesRequest {
        preferences: Some(wanted.clone()),
    };
    mesh.gateway
        .set_notification_preferences(with_token(set, &ada))
        .await
        .unwrap();
    let stored = mesh
        .gateway
        .get_notification_preferences(with_token(pb::GetNotificationPreferencesRequest {}, &ada))
        .await
        .unwrap()
        .into_inner()
        .preferences
        .unwrap();
    assert_eq!(stored.user_id, "ada", "preferences are always the caller's");
    assert_eq!(stored.push_statuses, wanted.push_statuses);

    // Mutating calls without an idempotency key are refused and reserve nothing.
    let reserved_before = reserved_tees(&mut mesh).await;
    for key in ["", "   "] {
        let refused = mesh
            .gateway
            .place_order(with_token(place(key), &ada))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().contains("idempotency_key"), "{refused:?}");
    }
    assert_eq!(reserved_tees(&mut mesh).await, reserved_before);

    let order = mesh
        .gateway
        .place_order(with_token(place("ada-1"), &ada))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Confirmed);
    let whole = |key: &str| pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        idempotency_key: key.into(),
        ..Default::default()
    };
    let refused = mesh
        .gateway
        .cancel_order(with_token(whole(" "), &ada))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let refused = mesh
        .gateway
        .request_return(with_token(
            pb::RequestReturnRequest {
                order_id: order.order_id.clone(),
                lines: vec![LineQuantity {
                    line_id: order.lines[0].line_id.clone(),
                    quantity: 1,
                }],
                reason: "too small".into(),
                idempotency_key: String::new(),
            },
            &ada,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Dispatch gives the parcel to kim.
    let mut fulfillment = mesh.fulfillment.clone();
    let order_id = order.order_id.clone();
    let shipment = eventually("the parcel", || {
        let mut fulfillment = fulfillment.clone();
        let order_id = order_id.clone();
        async move {
            let listed = fulfillment
                .list_shipments(ful::ListShipmentsRequest { order_id })
                .await
                .ok()?
                .into_inner();
            listed.shipments.into_iter().next()
        }
    })
    .await;
    let assigned = fulfillment
        .assign_courier(ful::AssignCourierRequest {
            shipment_id: shipment.shipment_id.clone(),
            courier_id: "kim".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .shipment
        .unwrap();
    assert_eq!(assigned.courier_id, "kim");

    // Only kim reports its positions: another courier and a buyer are refused, and nothing of
    // theirs is kept.
    let report = |fixes: Vec<PositionReport>| pb::ReportPositionsRequest { positions: fixes };
    let refused = mesh
        .gateway
        .report_positions(with_token(
            report(vec![fix("van", &shipment.shipment_id, 52.40, 60)]),
            &lee,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let refused = mesh
        .gateway
        .report_positions(with_token(
            report(vec![fix("van", &shipment.shipment_id, 52.40, 60)]),
            &ada,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let gateway = mesh.gateway.clone();
    let shipment_id = shipment.shipment_id.clone();
    let accepted = eventually("kim's report accepted", || {
        let mut gateway = gateway.clone();
        let fixes = vec![
            fix("van", &shipment_id, 52.40, 60),
            fix("van", &shipment_id, 52.402, 30),
        ];
        let kim = kim.clone();
        async move {
            let tally = gateway
                .report_positions(with_token(report(fixes), &kim))
                .await
                .ok()?
                .into_inner();
            Some(tally)
        }
    })
    .await;
    assert_eq!(accepted.accepted, 2, "{:?}", accepted.rejections);
    let streamed = mesh
        .gateway
        .stream_positions(with_token(
            futures::stream::iter([pb::StreamPositionsRequest {
                position: Some(fix("van", &shipment.shipment_id, 52.404, 10)),
            }]),
            &kim,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.accepted, 1);
    let other = mesh
        .gateway
        .place_order(with_token(place("bob-1"), &bob))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let refused = mesh
        .gateway
        .report_positions(with_token(
            report(vec![
                fix("van", &shipment.shipment_id, 52.405, 5),
                fix("van", &format!("{}-x", other.order_id), 52.405, 4),
            ]),
            &kim,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::NotFound,
        "one shipment that is not kim's refuses the whole call"
    );

    // The carrier delivers; the app, restarted, reads the whole history.
    for step in ["picked_up", "delivered"] {
        fulfillment
            .report_carrier_update(ful::ReportCarrierUpdateRequest {
                carrier: shipment.carrier.clone(),
                payload: oms_platform::sample::carrier_payload(&shipment, step),
            })
            .await
            .unwrap();
    }
    let tracking = eventually("the delivery in the history", || {
        let mut gateway = mesh.gateway.clone();
        let request = pb::GetOrderTrackingRequest {
            order_id: order.order_id.clone(),
        };
        let ada = ada.clone();
        async move {
            let tracking = gateway
                .get_order_tracking(with_token(request, &ada))
                .await
                .ok()?
                .into_inner();
            tracking
                .timeline
                .iter()
                .any(|e| e.status() == OrderStatus::Delivered)
                .then_some(tracking)
        }
    })
    .await;
    let statuses: Vec<OrderStatus> = tracking
        .timeline
        .iter()
        .map(|e| e.status())
        .filter(|s| *s != OrderStatus::Unspecified)
        .collect();
    assert_eq!(statuses.first(), Some(&OrderStatus::Confirmed));
    assert_eq!(statuses.last(), Some(&OrderStatus::Delivered));
    assert!(
        tracking
            .timeline
            .iter()
            .any(|e| e.note.contains("with a courier")),
        "{:?}",
        tracking.timeline
    );
    assert_eq!(tracking.shipments.len(), 1);
    let parcel = &tracking.shipments[0];
    assert_eq!(parcel.shipment_id, shipment.shipment_id);
    assert_eq!(parcel.status(), ful::ShipmentStatus::Delivered);
    assert_eq!(
        parcel.track.len(),
        3,
        "every accepted fix, none of the refused"
    );
    assert!(parcel.eta.is_some());
    let hidden = mesh
        .gateway
        .get_order_tracking(with_token(
            pb::GetOrderTrackingRequest {
                order_id: order.order_id.clone(),
            },
            &bob,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        hidden.code(),
        Code::NotFound,
        "someone else's order is not there"
    );

    // One push, for the delivery only (ada chose so), addressed to both installs.
    let delivered = eventually("the delivery push", || {
        let pushes = pushes.clone();
        async move {
            pushes
                .lock()
                .unwrap()
                .iter()
                .find(|p| p["user_id"] == "ada" && p["title"] == "Order delivered")
                .cloned()
        }
    })
    .await;
    let mut devices: Vec<(String, String, String)> = delivered["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["token"].as_str().unwrap().to_owned(),
                d["platform"].as_str().unwrap().to_owned(),
                d["locale"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    devices.sort();
    assert_eq!(
        devices,
        [
            ("apns-ada".into(), "ios".into(), "de-DE".into()),
            ("fcm-ada".into(), "android".into(), String::new()),
        ]
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let adas: Vec<String> = pushes
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["user_id"] == "ada")
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(adas, ["Order delivered"], "only the statuses ada asked for");

    // Signing out of one install: bob cannot remove ada's, ada can, once.
    let unregister = |device_token: &str| pb::UnregisterDeviceRequest {
        device_token: device_token.into(),
    };
    for (who, expected) in [(&bob, false), (&ada, true), (&ada, false)] {
        let removed = mesh
            .gateway
            .unregister_device(with_token(unregister("fcm-ada"), who))
            .await
            .unwrap()
            .into_inner()
            .removed;
        assert_eq!(removed, expected);
    }
    stop(mesh).await;
}
