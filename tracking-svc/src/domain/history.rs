//! What the delivery history keeps of an outbound shipment: which center it left, when it was
//! handed to its carrier, where it goes, who carries it and how — and, once delivered, when.
//! The durations learned from come from these two carrier events' own times.

use chrono::{DateTime, Utc};
use oms_platform::events::from_timestamp;
use oms_proto::{
    common::v1::ShippingMethod,
    fulfillment::v1::{self as ful, ShipmentDirection, ShipmentStatus},
};

/// A shipment as the history records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Which shipment.
    pub shipment_id: String,
    /// The center it left (its point comes from the center's own events).
    pub center_id: String,
    /// Handed to the carrier.
    pub dispatched_at: DateTime<Utc>,
    /// The buyer's point.
    pub destination: (f64, f64),
    /// The buyer's country (ISO 3166-1 alpha-2; "" when the address has none).
    pub dest_country: String,
    /// The carrier.
    pub carrier: String,
    /// "standard", "express", …
    pub method: String,
    /// Delivered, once it is (after dispatch: a delivery stamped at or before it is a
    /// carrier's clock error, not a duration to learn from).
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The time of the first carrier event with `status`.
fn first(shipment: &ful::Shipment, status: ShipmentStatus) -> Option<DateTime<Utc>> {
    shipment
        .events
        .iter()
        .filter(|e| e.status() == status)
        .find_map(|e| e.at.as_ref().and_then(from_timestamp))
}

/// The history's record of `shipment`; `None` for returns, for shipments not yet handed to a
/// carrier, and for those without a destination point.
pub fn dispatch_of(shipment: &ful::Shipment) -> Option<Dispatch> {
    if shipment.direction() != ShipmentDirection::Outbound {
        return None;
    }
    let address = shipment.destination.as_ref()?;
    let point = address.location?;
    let dispatched_at = first(shipment, ShipmentStatus::HandedToCarrier)?;
    let method = ShippingMethod::try_from(shipment.method)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("SHIPPING_METHOD_")
                .to_lowercase()
        })
        .unwrap_or_default();
    Some(Dispatch {
        shipment_id: shipment.shipment_id.clone(),
        center_id: shipment.center_id.clone(),
        dispatched_at,
        destination: (point.lat, point.lng),
        dest_country: address.country_code.to_ascii_uppercase(),
        carrier: shipment.carrier.clone(),
        method: if method == "unspecified" {
            String::new()
        } else {
            method
        },
        delivered_at: first(shipment, ShipmentStatus::Delivered).filter(|at| *at > dispatched_at),
    })
}

/// How many of a center's dispatch `times` (sorted) fall in the 24 hours before `at` — the
/// numerator of its load at that dispatch.
pub fn dispatches_in_day_before(times: &[DateTime<Utc>], at: DateTime<Utc>) -> usize {
    let from = times.partition_point(|t| *t < at - chrono::Duration::hours(24));
    let to = times.partition_point(|t| *t < at);
    to - from
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_platform::events::to_timestamp;
    use oms_proto::common::v1::{Address, GeoPoint};

    fn event(status: ShipmentStatus, at: DateTime<Utc>) -> ful::CarrierEvent {
        ful::CarrierEvent {
            status: status.into(),
            at: Some(to_timestamp(at)),
            ..Default::default()
        }
    }

    fn shipment(events: Vec<ful::CarrierEvent>) -> ful::Shipment {
        ful::Shipment {
            shipment_id: "s1".into(),
            center_id: "fc-berlin".into(),
            direction: ShipmentDirection::Outbound.into(),
            method: ShippingMethod::Express.into(),
            carrier: "swiftship".into(),
            destination: Some(Address {
                location: Some(GeoPoint {
                    lat: 52.4,
                    lng: 13.0,
                }),
                ..Default::default()
            }),
            events,
            ..Default::default()
        }
    }

    #[test]
    fn dispatch_and_delivery_times_come_from_the_carrier_events() {
        let handed = Utc::now() - chrono::Duration::hours(20);
        let delivered = handed + chrono::Duration::hours(18);
        let on_its_way = dispatch_of(&shipment(vec![
            event(ShipmentStatus::Created, handed - chrono::Duration::hours(1)),
            event(ShipmentStatus::HandedToCarrier, handed),
        ]))
        .unwrap();
        assert_eq!(on_its_way.dispatched_at.timestamp(), handed.timestamp());
        assert_eq!(on_its_way.delivered_at, None);
        assert_eq!(on_its_way.method, "express");
        let arrived = dispatch_of(&shipment(vec![
            event(ShipmentStatus::HandedToCarrier, handed),
            event(ShipmentStatus::Delivered, delivered),
        ]))
        .unwrap();
        assert_eq!(
            arrived.delivered_at.map(|d| d.timestamp()),
            Some(delivered.timestamp())
        );
    }

    #[test]
    fn the_load_counts_the_day_before_not_the_dispatch_itself() {
        let at = Utc::now();
        let hours = |h: i64| at - chrono::Duration::hours(h);
        let times = [hours(30), hours(24), hours(23), hours(1), at, at];
        assert_eq!(dispatches_in_day_before(&times, at), 3);
        assert_eq!(dispatches_in_day_before(&times, hours(23)), 2);
        assert_eq!(dispatches_in_day_before(&[], at), 0);
    }

    #[test]
    fn returns_and_parcels_not_yet_handed_over_are_not_recorded() {
        let mut planned = shipment(vec![event(ShipmentStatus::Created, Utc::now())]);
        assert_eq!(dispatch_of(&planned), None);
        planned
            .events
            .push(event(ShipmentStatus::HandedToCarrier, Utc::now()));
        planned.direction = ShipmentDirection::Return.into();
        assert_eq!(dispatch_of(&planned), None);
    }
}
