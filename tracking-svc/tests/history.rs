//! The delivery history records itself from fulfillment's events: a center, a parcel handed to
//! its carrier, the parcel delivered — and exports as the CSV the delivery-time models learn
//! from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::*;
use oms_eta_model::history::Weather;
use oms_platform::{
    bus::Area,
    events::{envelope, to_timestamp},
};
use oms_proto::{
    common::v1::{Address, GeoPoint, ShippingMethod},
    events::v1::{CenterUpserted, ShipmentStatusChanged, envelope::Payload},
    fulfillment::v1::{
        CarrierEvent, FulfillmentCenter, Shipment, ShipmentDirection, ShipmentStatus,
    },
    tracking::v1 as pb,
};

fn carrier_event(status: ShipmentStatus, at: chrono::DateTime<Utc>) -> CarrierEvent {
    CarrierEvent {
        status: status.into(),
        at: Some(to_timestamp(at)),
        ..Default::default()
    }
}

async fn publish(mesh: &Mesh, shipment: &Shipment) {
    let event = envelope(
        Area::Fulfillment,
        &shipment.shipment_id,
        "shipment_status_changed",
        &shipment.user_id,
        Payload::ShipmentStatusChanged(ShipmentStatusChanged {
            shipment: Some(shipment.clone()),
            previous_status: 0,
        }),
    )
    .unwrap();
    mesh.bus.publish(&event).await.unwrap();
}

async fn export(mesh: &mut Mesh) -> (u32, String) {
    let exported = mesh
        .tracking
        .export_delivery_history(pb::ExportDeliveryHistoryRequest::default())
        .await
        .unwrap()
        .into_inner();
    (exported.rows, String::from_utf8(exported.csv).unwrap())
}

/// A center, then a parcel from it handed over and delivered 1,230 minutes later; returns the
/// history row once it carries what the sources said (or that they were asked).
async fn deliver_one(mesh: &mut Mesh) -> oms_eta_model::history::Delivery {
    let center = envelope(
        Area::Fulfillment,
        "fc-berlin",
        "center_upserted",
        "",
        Payload::CenterUpserted(CenterUpserted {
            center: Some(FulfillmentCenter {
                center_id: "fc-berlin".into(),
                point: Some(GeoPoint {
                    lat: 52.52,
                    lng: 13.40,
                }),
                country_code: "DE".into(),
                ..Default::default()
            }),
        }),
    )
    .unwrap();
    mesh.bus.publish(&center).await.unwrap();

    let handed = Utc::now() - chrono::Duration::hours(30);
    let mut shipment = Shipment {
        shipment_id: "s-h1".into(),
        order_id: "o-h1".into(),
        user_id: "ada".into(),
        center_id: "fc-berlin".into(),
        direction: ShipmentDirection::Outbound.into(),
        method: ShippingMethod::Standard.into(),
        carrier: "parcelnet".into(),
        status: ShipmentStatus::HandedToCarrier.into(),
        destination: Some(Address {
            country_code: "DE".into(),
            location: Some(GeoPoint {
                lat: 48.14,
                lng: 11.58,
            }),
            ..Default::default()
        }),
        events: vec![carrier_event(ShipmentStatus::HandedToCarrier, handed)],
        ..Default::default()
    };
    publish(mesh, &shipment).await;
    // Under way: recorded, not yet part of what models learn from.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(export(mesh).await.0, 0);

    shipment.status = ShipmentStatus::Delivered.into();
    shipment.events.push(carrier_event(
        ShipmentStatus::Delivered,
        handed + chrono::Duration::minutes(1_230),
    ));
    publish(mesh, &shipment).await;
    let mut csv = String::new();
    for _ in 0..100 {
        let (rows, text) = export(mesh).await;
        if rows == 1 {
            csv = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = oms_eta_model::history::read(csv.as_bytes()).unwrap();
    assert_eq!(rows.len(), 1, "{csv}");
    rows[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_parcel_joins_the_history_with_its_duration() {
    let mut mesh = start(None).await;
    let row = &deliver_one(&mut mesh).await;
    assert_eq!(row.origin, (52.52, 13.40));
    assert_eq!(row.destination, (48.14, 11.58));
    assert_eq!(row.carrier, "parcelnet");
    assert_eq!(row.method, "standard");
    assert_eq!(row.duration_min, Some(1_230.0));
    assert!(
        (Utc::now() - row.dispatched_at - chrono::Duration::hours(30))
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(row.weather, Weather::default(), "no sources configured");
    stop(mesh).await;
}

/// A local provider: `/weather` answers in Open-Meteo's shape (every hour of the asked day:
/// 2.5 mm of rain, 3 °C, 20 km/h wind, 8 km visibility), `/traffic` answers 1.7; with
/// `silent`, it accepts connections and never answers.
async fn provider(silent: bool) -> String {
    use http_body_util::Full;
    use hyper::{Request, Response, body::Incoming, service::service_fn};
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| async move {
                    if silent {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    let body = if request.uri().path() == "/weather" {
                        let day = query
                            .split('&')
                            .find_map(|p| p.strip_prefix("start_date="))
                            .unwrap_or_default()
                            .to_owned();
                        let hours: Vec<String> =
                            (0..24).map(|h| format!("\"{day}T{h:02}:00\"")).collect();
                        let series = |v: &str| vec![v; 24].join(",");
                        format!(
                            r#"{{"timezone":"GMT","hourly":{{"time":[{}],"precipitation":[{}],"snowfall":[{}],"temperature_2m":[{}],"wind_speed_10m":[{}],"visibility":[{}]}}}}"#,
                            hours.join(","),
                            series("2.5"),
                            series("0.0"),
                            series("3.0"),
                            series("20.0"),
                            series("8000.0"),
                        )
                    } else {
                        r#"{"traffic_index":1.7}"#.to_owned()
                    };
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from(
                        body,
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sources_fill_in_weather_and_traffic_at_dispatch() {
    let url = provider(false).await;
    let mut mesh = start_configured(|config| {
        config.weather_url = Some(format!("{url}/weather"));
        config.traffic_url = Some(format!("{url}/traffic"));
    })
    .await;
    deliver_one(&mut mesh).await;
    let mut row = None;
    for _ in 0..100 {
        let (_, csv) = export(&mut mesh).await;
        let rows = oms_eta_model::history::read(csv.as_bytes()).unwrap();
        if rows.first().is_some_and(|r| r.traffic_index.is_some()) {
            row = rows.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("the sources never answered");
    assert_eq!(row.traffic_index, Some(1.7));
    assert_eq!(row.weather.precip_mm, Some(2.5));
    assert_eq!(row.weather.temp_c, Some(3.0));
    assert_eq!(row.weather.visibility_km, Some(8.0));
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_source_leaves_the_values_unknown_and_changes_no_answer() {
    let url = provider(true).await;
    let mut mesh = start_configured(|config| {
        config.weather_url = Some(format!("{url}/weather"));
        config.traffic_url = Some(format!("{url}/traffic"));
        config.source_timeout = Duration::from_millis(200);
    })
    .await;
    let row = deliver_one(&mut mesh).await;
    assert_eq!(row.duration_min, Some(1_230.0));
    // Long after the sources were given up on, the history still exports, values unknown.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (rows, csv) = export(&mut mesh).await;
    assert_eq!(rows, 1);
    let row = &oms_eta_model::history::read(csv.as_bytes()).unwrap()[0];
    assert_eq!(row.weather, Weather::default());
    assert_eq!(row.traffic_index, None);
    stop(mesh).await;
}

/// Parcels from a center that ships 4 a day, handed over on German Unity Day (3 October 2026,
/// a nationwide holiday) at 08:00, 09:00 and 10:00 UTC and on the Monday after: each row
/// carries the destination's holiday and the center's load (its dispatches of the 24 hours
/// before over its capacity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_knows_the_destinations_holidays_and_the_centers_load() {
    let mut mesh = start_configured(|config| {
        config.holidays_file = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../eta-model/data/holidays-de-2025-2027.json"),
        );
    })
    .await;
    let center = envelope(
        Area::Fulfillment,
        "fc-leipzig",
        "center_upserted",
        "",
        Payload::CenterUpserted(CenterUpserted {
            center: Some(FulfillmentCenter {
                center_id: "fc-leipzig".into(),
                point: Some(GeoPoint {
                    lat: 51.34,
                    lng: 12.37,
                }),
                country_code: "DE".into(),
                daily_capacity: 4,
                ..Default::default()
            }),
        }),
    )
    .unwrap();
    mesh.bus.publish(&center).await.unwrap();
    let at = |day, hour| Utc.with_ymd_and_hms(2026, 10, day, hour, 0, 0).unwrap();
    let handed = [at(3, 8), at(3, 9), at(3, 10), at(5, 9)];
    for (i, handed) in handed.iter().enumerate() {
        let shipment = Shipment {
            shipment_id: format!("s-day-{i}"),
            order_id: format!("o-day-{i}"),
            user_id: "ada".into(),
            center_id: "fc-leipzig".into(),
            direction: ShipmentDirection::Outbound.into(),
            method: ShippingMethod::Standard.into(),
            carrier: "parcelnet".into(),
            status: ShipmentStatus::Delivered.into(),
            destination: Some(Address {
                country_code: "DE".into(),
                location: Some(GeoPoint {
                    lat: 52.52,
                    lng: 13.40,
                }),
                ..Default::default()
            }),
            events: vec![
                carrier_event(ShipmentStatus::HandedToCarrier, *handed),
                carrier_event(
                    ShipmentStatus::Delivered,
                    *handed + chrono::Duration::minutes(600),
                ),
            ],
            ..Default::default()
        };
        publish(&mesh, &shipment).await;
    }
    let mut rows = Vec::new();
    for _ in 0..100 {
        let (_, csv) = export(&mut mesh).await;
        rows = oms_eta_model::history::read(csv.as_bytes()).unwrap();
        if rows.len() == 4 && rows.iter().all(|r| r.center_load.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<(Option<bool>, Option<f64>)> =
        rows.iter().map(|r| (r.holiday, r.center_load)).collect();
    assert_eq!(
        seen,
        [
            (Some(true), Some(0.0)),
            (Some(true), Some(0.25)),
            (Some(true), Some(0.5)),
            (Some(false), Some(0.0)),
        ]
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_on_the_recorded_history_promotes_only_a_better_model() {
    let mut mesh = start_configured(|config| {
        config.eta_retrain_interval = Duration::ZERO;
        config.eta_iterations = 80;
    })
    .await;
    let too_short = mesh
        .tracking
        .retrain_eta_model(pb::RetrainEtaModelRequest {})
        .await
        .unwrap_err();
    assert_eq!(too_short.code(), tonic::Code::FailedPrecondition);

    let rows = oms_eta_model::simulate::year(2_000, 8);
    history_events::publish_history(mesh.bus.as_ref(), &rows).await;
    for _ in 0..200 {
        if export(&mut mesh).await.0 == 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(export(&mut mesh).await.0, 2_000);

    let first = mesh
        .tracking
        .retrain_eta_model(pb::RetrainEtaModelRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(first.promoted, "nothing was serving: {first:?}");
    let first = first.model.unwrap();
    assert_eq!((first.version, first.held_out), (1, 400));
    assert!(first.mae_min < first.baseline_mae_min, "{first:?}");

    // The same history again: the candidate is no better, so version 1 keeps serving.
    let second = mesh
        .tracking
        .retrain_eta_model(pb::RetrainEtaModelRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!second.promoted, "{second:?}");
    assert!(
        second
            .model
            .as_ref()
            .unwrap()
            .note
            .contains("does not beat")
    );

    // Manual promotion and rollback by version.
    let promoted = mesh
        .tracking
        .promote_eta_model(pb::PromoteEtaModelRequest { version: 2 })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert!(promoted.serving);
    mesh.tracking
        .promote_eta_model(pb::PromoteEtaModelRequest { version: 1 })
        .await
        .unwrap();
    let listed = mesh
        .tracking
        .list_eta_models(pb::ListEtaModelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .models;
    let serving: Vec<(i64, bool)> = listed.iter().map(|m| (m.version, m.serving)).collect();
    assert_eq!(serving, [(2, false), (1, true)]);
    let missing = mesh
        .tracking
        .promote_eta_model(pb::PromoteEtaModelRequest { version: 9 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A parcel on its way now: its live ETA takes the serving model's prior.
    let handed = Utc::now() - chrono::Duration::minutes(10);
    let fresh = Shipment {
        shipment_id: "live-1".into(),
        order_id: "live-order-1".into(),
        user_id: "ada".into(),
        center_id: "fc-0".into(),
        direction: ShipmentDirection::Outbound.into(),
        method: ShippingMethod::Standard.into(),
        carrier: "parcelnet".into(),
        status: ShipmentStatus::HandedToCarrier.into(),
        destination: Some(Address {
            location: Some(GeoPoint {
                lat: 48.14,
                lng: 11.58,
            }),
            ..Default::default()
        }),
        events: vec![carrier_event(ShipmentStatus::HandedToCarrier, handed)],
        ..Default::default()
    };
    publish(&mesh, &fresh).await;
    let fix = pb::PositionReport {
        device_id: "van".into(),
        shipment_id: "live-1".into(),
        point: Some(GeoPoint {
            lat: 50.0,
            lng: 11.0,
        }),
        recorded_at: Some(to_timestamp(Utc::now() - chrono::Duration::seconds(30))),
        ..Default::default()
    };
    let mut eta = None;
    for _ in 0..100 {
        // Until tracking knows the parcel the fix is refused; then one is kept.
        mesh.tracking
            .report_positions(pb::ReportPositionsRequest {
                positions: vec![fix.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        if let Ok(found) = mesh
            .tracking
            .get_eta(pb::GetEtaRequest {
                shipment_id: "live-1".into(),
                user_id: String::new(),
            })
            .await
        {
            eta = found.into_inner().eta;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let eta = eta.expect("no ETA for the live parcel");
    assert_eq!(eta.model, "smoothed-speed-v1+delivery-time-v1", "{eta:?}");
    stop(mesh).await;
}
