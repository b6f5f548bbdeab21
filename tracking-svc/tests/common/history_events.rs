//! A delivery history published as fulfillment publishes it: each origin as a center, each row
//! as a parcel handed to its carrier and delivered `duration_min` later. Shared with the
//! gateway's tests (`#[path]`), which drive the same history through the whole mesh.

use oms_eta_model::history::Delivery;
use oms_platform::{
    bus::{Area, EventBus},
    events::{envelope, to_timestamp},
};
use oms_proto::{
    common::v1::{Address, GeoPoint, ShippingMethod},
    events::v1::{CenterUpserted, ShipmentStatusChanged, envelope::Payload},
    fulfillment::v1::{
        CarrierEvent, FulfillmentCenter, Shipment, ShipmentDirection, ShipmentStatus,
    },
};

fn carrier_event(status: ShipmentStatus, at: chrono::DateTime<chrono::Utc>) -> CarrierEvent {
    CarrierEvent {
        status: status.into(),
        at: Some(to_timestamp(at)),
        ..Default::default()
    }
}

/// Publishes `rows` on `bus`; centers are named `fc-0`, `fc-1`, … in coordinate order.
pub async fn publish_history(bus: &dyn EventBus, rows: &[Delivery]) {
    let mut centers: Vec<(f64, f64)> = rows.iter().map(|r| r.origin).collect();
    centers.sort_by(|a, b| a.partial_cmp(b).unwrap());
    centers.dedup();
    let center_id =
        |point: (f64, f64)| format!("fc-{}", centers.iter().position(|c| *c == point).unwrap());
    for point in &centers {
        let center = envelope(
            Area::Fulfillment,
            &center_id(*point),
            "center_upserted",
            "",
            Payload::CenterUpserted(CenterUpserted {
                center: Some(FulfillmentCenter {
                    center_id: center_id(*point),
                    point: Some(GeoPoint {
                        lat: point.0,
                        lng: point.1,
                    }),
                    country_code: "DE".into(),
                    ..Default::default()
                }),
            }),
        )
        .unwrap();
        bus.publish(&center).await.unwrap();
    }
    for (i, row) in rows.iter().enumerate() {
        let delivered =
            row.dispatched_at + chrono::Duration::minutes(row.duration_min.unwrap() as i64);
        let shipment = Shipment {
            shipment_id: format!("sim-{i}"),
            order_id: format!("sim-order-{i}"),
            user_id: "sim".into(),
            center_id: center_id(row.origin),
            direction: ShipmentDirection::Outbound.into(),
            method: if row.method == "express" {
                ShippingMethod::Express
            } else {
                ShippingMethod::Standard
            }
            .into(),
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
                carrier_event(ShipmentStatus::HandedToCarrier, row.dispatched_at),
                carrier_event(ShipmentStatus::Delivered, delivered),
            ],
            ..Default::default()
        };
        let event = envelope(
            Area::Fulfillment,
            &shipment.shipment_id.clone(),
            "shipment_status_changed",
            "sim",
            Payload::ShipmentStatusChanged(ShipmentStatusChanged {
                shipment: Some(shipment),
                previous_status: 0,
            }),
        )
        .unwrap();
        bus.publish(&event).await.unwrap();
    }
}
