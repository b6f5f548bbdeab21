//! What fulfillment publishes (through its outbox): centers as they change, shipments as they
//! move.

use oms_platform::{
    bus::{Area, BusError},
    events::envelope,
};
use oms_proto::{
    events::v1::{
        CenterUpserted, CourierAssigned, Envelope, ShipmentStatusChanged, envelope::Payload,
    },
    fulfillment::v1::{FulfillmentCenter, Shipment, ShipmentStatus},
};

/// `oms.fulfillment.<center_id>.center_upserted` (inventory registers the location from it).
pub fn center_upserted(center: FulfillmentCenter) -> Result<Envelope, BusError> {
    let id = center.center_id.clone();
    envelope(
        Area::Fulfillment,
        &id,
        "center_upserted",
        "",
        Payload::CenterUpserted(CenterUpserted {
            center: Some(center),
        }),
    )
}

/// `oms.fulfillment.<shipment_id>.shipment_status_changed`, on the buyer's stream.
pub fn shipment_changed(
    shipment: Shipment,
    previous: ShipmentStatus,
) -> Result<Envelope, BusError> {
    let id = shipment.shipment_id.clone();
    let user = shipment.user_id.clone();
    envelope(
        Area::Fulfillment,
        &id,
        "shipment_status_changed",
        &user,
        Payload::ShipmentStatusChanged(ShipmentStatusChanged {
            shipment: Some(shipment),
            previous_status: previous.into(),
        }),
    )
}

/// `oms.fulfillment.<shipment_id>.courier_assigned`, on the buyer's stream (tracking learns
/// whose app may report the shipment's positions).
pub fn courier_assigned(
    shipment: Shipment,
    previous_courier_id: String,
) -> Result<Envelope, BusError> {
    let id = shipment.shipment_id.clone();
    let user = shipment.user_id.clone();
    envelope(
        Area::Fulfillment,
        &id,
        "courier_assigned",
        &user,
        Payload::CourierAssigned(CourierAssigned {
            shipment: Some(shipment),
            previous_courier_id,
        }),
    )
}
