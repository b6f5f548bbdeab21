//! The order lifecycle (DESIGN.md): which status may follow which, in one pure function, and
//! the status an order's shipments put it in.
//!
//! PENDING → CONFIRMED (or REQUIRES_VERIFICATION first) → (PARTIALLY_)SHIPPED →
//! (PARTIALLY_)DELIVERED → RETURN_REQUESTED → RETURN_IN_TRANSIT → RETURNED → REFUNDED;
//! CANCELLED before anything shipped; REJECTED when placement fails. Carriers skip scans, so
//! shipping progress may jump ahead (CONFIRMED → DELIVERED), never back.

use oms_proto::{fulfillment::v1::ShipmentStatus, order::v1::OrderStatus};

/// Whether an order in `from` may move to `to`.
pub fn allowed(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    match (from, to) {
        (Pending, RequiresVerification | Confirmed | Rejected) => true,
        (RequiresVerification, Confirmed | Cancelled | Rejected) => true,
        (Confirmed, PartiallyShipped | Shipped | PartiallyDelivered | Delivered | Cancelled) => {
            true
        }
        (PartiallyShipped, Shipped | PartiallyDelivered | Delivered) => true,
        (Shipped, PartiallyDelivered | Delivered) => true,
        (PartiallyDelivered, Delivered | ReturnRequested) => true,
        (Delivered, ReturnRequested) => true,
        (ReturnRequested, ReturnInTransit | Returned) => true,
        (ReturnInTransit, Returned) => true,
        (Returned, Refunded) => true,
        // Another return of lines not returned yet.
        (Refunded, ReturnRequested) => true,
        _ => false,
    }
}

/// Whether the order still waits for goods to leave or arrive (counts against open-order
/// limits).
pub fn is_open(status: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        status,
        Pending
            | RequiresVerification
            | Confirmed
            | PartiallyShipped
            | Shipped
            | PartiallyDelivered
    )
}

/// Every status but UNSPECIFIED.
pub const ALL: [OrderStatus; 13] = [
    OrderStatus::Pending,
    OrderStatus::RequiresVerification,
    OrderStatus::Confirmed,
    OrderStatus::PartiallyShipped,
    OrderStatus::Shipped,
    OrderStatus::PartiallyDelivered,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
    OrderStatus::ReturnRequested,
    OrderStatus::ReturnInTransit,
    OrderStatus::Returned,
    OrderStatus::Refunded,
    OrderStatus::Rejected,
];

/// The status the outbound shipments' progress implies (cancelled shipments do not count):
/// all delivered → DELIVERED, some → PARTIALLY_DELIVERED, all collected by the carrier →
/// SHIPPED, some → PARTIALLY_SHIPPED, none → CONFIRMED.
pub fn shipping_status(shipments: impl IntoIterator<Item = ShipmentStatus>) -> OrderStatus {
    let (mut live, mut shipped, mut delivered) = (0, 0, 0);
    for status in shipments {
        match status {
            ShipmentStatus::Cancelled => continue,
            ShipmentStatus::Delivered => delivered += 1,
            ShipmentStatus::PickedUp
            | ShipmentStatus::InTransit
            | ShipmentStatus::OutForDelivery
            | ShipmentStatus::Exception => shipped += 1,
            _ => {}
        }
        live += 1;
    }
    match (live, shipped, delivered) {
        (0, _, _) => OrderStatus::Cancelled,
        (live, _, delivered) if delivered == live => OrderStatus::Delivered,
        (_, _, delivered) if delivered > 0 => OrderStatus::PartiallyDelivered,
        (live, shipped, _) if shipped == live => OrderStatus::Shipped,
        (_, shipped, _) if shipped > 0 => OrderStatus::PartiallyShipped,
        _ => OrderStatus::Confirmed,
    }
}

/// Whether a shipment in this state has left the center (its units can no longer be
/// cancelled, its payment is due).
pub fn has_left(status: ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::PickedUp
            | ShipmentStatus::InTransit
            | ShipmentStatus::OutForDelivery
            | ShipmentStatus::Delivered
            | ShipmentStatus::Exception
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn is_final(status: OrderStatus) -> bool {
        !ALL.iter().any(|to| allowed(status, *to))
    }

    /// The whole table, written out: every pair not listed here must be forbidden.
    const ALLOWED: &[(OrderStatus, OrderStatus)] = &[
        (Pending, RequiresVerification),
        (Pending, Confirmed),
        (Pending, Rejected),
        (RequiresVerification, Confirmed),
        (RequiresVerification, Cancelled),
        (RequiresVerification, Rejected),
        (Confirmed, PartiallyShipped),
        (Confirmed, Shipped),
        (Confirmed, PartiallyDelivered),
        (Confirmed, Delivered),
        (Confirmed, Cancelled),
        (PartiallyShipped, Shipped),
        (PartiallyShipped, PartiallyDelivered),
        (PartiallyShipped, Delivered),
        (Shipped, PartiallyDelivered),
        (Shipped, Delivered),
        (PartiallyDelivered, Delivered),
        (PartiallyDelivered, ReturnRequested),
        (Delivered, ReturnRequested),
        (ReturnRequested, ReturnInTransit),
        (ReturnRequested, Returned),
        (ReturnInTransit, Returned),
        (Returned, Refunded),
        (Refunded, ReturnRequested),
    ];

    #[test]
    fn every_allowed_transition_and_every_forbidden_one() {
        let mut checked = 0;
        for from in ALL.into_iter().chain([Unspecified]) {
            for to in ALL.into_iter().chain([Unspecified]) {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(allowed(from, to), expected, "{from:?} -> {to:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 14 * 14);
    }

    #[test]
    fn cancelled_and_rejected_are_final_and_shipped_orders_cannot_be_cancelled() {
        assert!(is_final(Cancelled));
        assert!(is_final(Rejected));
        assert!(!is_final(Refunded), "another return may follow");
        for shipped in [PartiallyShipped, Shipped, PartiallyDelivered, Delivered] {
            assert!(!allowed(shipped, Cancelled), "{shipped:?}");
        }
    }

    #[test]
    fn shipments_drive_the_shipping_status() {
        use ShipmentStatus as S;
        let table: &[(&[ShipmentStatus], OrderStatus)] = &[
            (&[S::Created, S::HandedToCarrier], Confirmed),
            (&[S::PickedUp, S::HandedToCarrier], PartiallyShipped),
            (&[S::InTransit, S::OutForDelivery], Shipped),
            (&[S::Delivered, S::InTransit], PartiallyDelivered),
            (&[S::Delivered, S::HandedToCarrier], PartiallyDelivered),
            (&[S::Delivered, S::Delivered], Delivered),
            (&[S::Delivered, S::Cancelled], Delivered),
            (&[S::Exception, S::Cancelled], Shipped),
            (&[S::Cancelled, S::Cancelled], Cancelled),
        ];
        for (shipments, expected) in table {
            assert_eq!(
                shipping_status(shipments.iter().copied()),
                *expected,
                "{shipments:?}"
            );
        }
    }

    #[test]
    fn open_orders_are_the_ones_still_moving_goods() {
        let open: Vec<_> = ALL.into_iter().filter(|s| is_open(*s)).collect();
        assert_eq!(
            open,
            [
                Pending,
                RequiresVerification,
                Confirmed,
                PartiallyShipped,
                Shipped,
                PartiallyDelivered
            ]
        );
    }
}
