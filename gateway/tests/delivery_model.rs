//! The promise the buyer sees follows the learned delivery-time model: a history recorded
//! through the bus, a model trained and promoted by tracking-svc, and fulfillment's quote
//! through the gateway changes from the carrier formula's window to the model's P50–P90.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Mesh, start, stop, with_token};
use oms_platform::{
    bus::Area,
    events::{envelope, to_timestamp},
};
use oms_proto::{
    common::v1::{Address, GeoPoint, ShippingMethod, TimeWindow},
    events::v1::{CenterUpserted, ShipmentStatusChanged, envelope::Payload},
    fulfillment::v1::{
        CarrierEvent, FulfillmentCenter, Shipment, ShipmentDirection, ShipmentStatus,
    },
    mobile::v1 as pb,
    order::v1::OrderLineInput,
    tracking::v1 as trk,
};

/// A simulated year's deliveries as fulfillment's events on the bus.
async fn record_history(mesh: &Mesh, rows: &[oms_eta_model::history::Delivery]) {
    let mut centers: Vec<(f64, f64)> = rows.iter().map(|r| r.origin).collect();
    centers.sort_by(|a, b| a.partial_cmp(b).unwrap());
    centers.dedup();
    let id =
        |point: (f64, f64)| format!("sim-{}", centers.iter().position(|c| *c == point).unwrap());
    for point in &centers {
        let center = FulfillmentCenter {
            center_id: id(*point),
            point: Some(GeoPoint {
                lat: point.0,
                lng: point.1,
            }),
            country_code: "DE".into(),
            ..Default::default()
        };
        let event = envelope(
            Area::Fulfillment,
            &center.center_id.clone(),
            "center_upserted",
            "",
            Payload::CenterUpserted(CenterUpserted {
                center: Some(center),
            }),
        )
        .unwrap();
        mesh.ctx.bus.publish(&event).await.unwrap();
    }
    for (i, row) in rows.iter().enumerate() {
        let at = |t: chrono::DateTime<chrono::Utc>, status: ShipmentStatus| CarrierEvent {
            status: status.into(),
            at: Some(to_timestamp(t)),
            ..Default::default()
        };
        let delivered =
            row.dispatched_at + chrono::Duration::minutes(row.duration_min.unwrap() as i64);
        let shipment = Shipment {
            shipment_id: format!("hist-{i}"),
            order_id: format!("hist-order-{i}"),
            user_id: "history".into(),
            center_id: id(row.origin),
            direction: ShipmentDirection::Outbound.into(),
            method: ShippingMethod::Standard.into(),
            carrier: row.carrier.clone(),
            status: ShipmentStatus::Delivered.into(),
            destination: Some(Address {
                location: Some(GeoPoint {
                    lat: row.destination.0,
                    lng: row.destination.1,
                }),
                ..Default::default()
            }),
            events: vec![
                at(row.dispatched_at, ShipmentStatus::HandedToCarrier),
                at(delivered, ShipmentStatus::Delivered),
            ],
            ..Default::default()
        };
        let event = envelope(
            Area::Fulfillment,
            &shipment.shipment_id.clone(),
            "shipment_status_changed",
            "history",
            Payload::ShipmentStatusChanged(ShipmentStatusChanged {
                shipment: Some(shipment),
                previous_status: 0,
            }),
        )
        .unwrap();
        mesh.ctx.bus.publish(&event).await.unwrap();
    }
}

async fn standard_window(mesh: &mut Mesh, token: &str) -> TimeWindow {
    let request = pb::QuoteDeliveryRequest {
        lines: vec![OrderLineInput {
            sku: "TEE".into(),
            quantity: 1,
        }],
        destination: Some(Address {
            country_code: "DE".into(),
            region: "DE-BY".into(),
            location: Some(GeoPoint {
                lat: 48.14,
                lng: 11.58,
            }),
            ..Default::default()
        }),
        currency_code: "EUR".into(),
        ..Default::default()
    };
    let quote = mesh
        .gateway
        .quote_delivery(with_token(request, token))
        .await
        .unwrap()
        .into_inner()
        .quote
        .unwrap();
    let standard = quote
        .options
        .iter()
        .find(|o| o.method() == ShippingMethod::Standard)
        .unwrap();
    standard.plan.as_ref().unwrap().shipments[0]
        .promised_window
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quoted_window_follows_the_promoted_model() {
    let mut mesh = start(1000).await;
    let ada = mesh
        .key
        .mint("ada", "orders:read orders:write", Duration::from_secs(600))
        .unwrap();
    let formula = standard_window(&mut mesh, &ada).await;

    record_history(&mesh, &oms_eta_model::simulate::year(2_000, 12)).await;
    let mut trained = None;
    for _ in 0..100 {
        match mesh
            .tracking
            .retrain_eta_model(trk::RetrainEtaModelRequest {})
            .await
        {
            Ok(answer) => {
                trained = Some(answer.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let trained = trained.expect("the history never reached tracking");
    assert!(trained.promoted, "{trained:?}");

    let mut learned = formula;
    for _ in 0..100 {
        learned = standard_window(&mut mesh, &ada).await;
        if learned != formula {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(learned, formula, "the window never followed the model");
    let (start, end) = (learned.start.unwrap(), learned.end.unwrap());
    assert!(start.seconds < end.seconds, "P50 before P90: {learned:?}");
    stop(mesh).await;
}
