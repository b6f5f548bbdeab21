//! Shipment states and the one rule for moving between them.
//!
//! Carriers report out of order and repeat themselves; a report moves a shipment only forward
//! (or into and out of an exception), never back, and never out of a final state.

use oms_proto::fulfillment::v1::ShipmentStatus;

/// Where a parcel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Planned, not yet with a carrier.
    Created,
    /// Booked with the carrier.
    HandedToCarrier,
    /// The carrier collected it.
    PickedUp,
    /// Moving.
    InTransit,
    /// On the courier's van.
    OutForDelivery,
    /// Arrived (final).
    Delivered,
    /// Something went wrong; the carrier may still recover it.
    Exception,
    /// Stopped before the carrier collected it (final).
    Cancelled,
}

impl Status {
    /// The table's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::HandedToCarrier => "handed_to_carrier",
            Status::PickedUp => "picked_up",
            Status::InTransit => "in_transit",
            Status::OutForDelivery => "out_for_delivery",
            Status::Delivered => "delivered",
            Status::Exception => "exception",
            Status::Cancelled => "cancelled",
        }
    }

    /// The wire enum.
    pub fn to_proto(self) -> ShipmentStatus {
        match self {
            Status::Created => ShipmentStatus::Created,
            Status::HandedToCarrier => ShipmentStatus::HandedToCarrier,
            Status::PickedUp => ShipmentStatus::PickedUp,
            Status::InTransit => ShipmentStatus::InTransit,
            Status::OutForDelivery => ShipmentStatus::OutForDelivery,
            Status::Delivered => ShipmentStatus::Delivered,
            Status::Exception => ShipmentStatus::Exception,
            Status::Cancelled => ShipmentStatus::Cancelled,
        }
    }

    fn progress(self) -> Option<u8> {
        match self {
            Status::Created => Some(0),
            Status::HandedToCarrier => Some(1),
            Status::PickedUp => Some(2),
            Status::InTransit => Some(3),
            Status::OutForDelivery => Some(4),
            Status::Delivered => Some(5),
            Status::Exception | Status::Cancelled => None,
        }
    }

    /// No report moves a shipment out of this state.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Delivered | Status::Cancelled)
    }
}

/// The state after a report of `reported` in state `current`, or `None` when the report
/// changes nothing (a repeat, a stale report, a move out of a final state).
pub fn next(current: Status, reported: Status) -> Option<Status> {
    if current.is_final() || reported == current {
        return None;
    }
    match (current, reported) {
        (_, Status::Cancelled) => matches!(current, Status::Created | Status::HandedToCarrier)
            .then_some(Status::Cancelled),
        (_, Status::Exception) => Some(Status::Exception),
        (Status::Exception, later) => {
            (later.progress() > Status::HandedToCarrier.progress()).then_some(later)
        }
        (now, later) => (later.progress() > now.progress()).then_some(later),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn reports_move_shipments_forward_only() {
        let table = [
            (Created, HandedToCarrier, Some(HandedToCarrier)),
            (HandedToCarrier, PickedUp, Some(PickedUp)),
            (PickedUp, OutForDelivery, Some(OutForDelivery)),
            (OutForDelivery, Delivered, Some(Delivered)),
            (InTransit, PickedUp, None),
            (OutForDelivery, OutForDelivery, None),
            (Delivered, InTransit, None),
            (Delivered, Exception, None),
            (InTransit, Exception, Some(Exception)),
            (Exception, OutForDelivery, Some(OutForDelivery)),
            (Exception, Delivered, Some(Delivered)),
            (Exception, HandedToCarrier, None),
            (Created, Cancelled, Some(Cancelled)),
            (HandedToCarrier, Cancelled, Some(Cancelled)),
            (PickedUp, Cancelled, None),
            (Cancelled, InTransit, None),
        ];
        for (current, reported, expected) in table {
            assert_eq!(
                next(current, reported),
                expected,
                "{current:?} + {reported:?}"
            );
        }
    }
}
