//! The delivery history records itself from fulfillment's events: a center, a parcel handed to
//! its carrier, the parcel delivered — and exports as the CSV the delivery-time models learn
//! from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_parcel_joins_the_history_with_its_duration() {
    let mut mesh = start(None).await;
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
    publish(&mesh, &shipment).await;
    // Under way: recorded, not yet part of what models learn from.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(export(&mut mesh).await.0, 0);

    shipment.status = ShipmentStatus::Delivered.into();
    shipment.events.push(carrier_event(
        ShipmentStatus::Delivered,
        handed + chrono::Duration::minutes(1_230),
    ));
    publish(&mesh, &shipment).await;
    let mut csv = String::new();
    for _ in 0..100 {
        let (rows, text) = export(&mut mesh).await;
        if rows == 1 {
            csv = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = oms_eta_model::history::read(csv.as_bytes()).unwrap();
    assert_eq!(rows.len(), 1, "{csv}");
    let row = &rows[0];
    assert_eq!(row.origin, (52.52, 13.40));
    assert_eq!(row.destination, (48.14, 11.58));
    assert_eq!(row.carrier, "parcelnet");
    assert_eq!(row.method, "standard");
    assert_eq!(row.duration_min, Some(1_230.0));
    assert_eq!(row.dispatched_at.timestamp(), handed.timestamp());
    stop(mesh).await;
}
