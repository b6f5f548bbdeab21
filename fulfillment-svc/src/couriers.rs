//! Dispatch to our own couriers: an outbound shipment on its way is given to a courier, whose
//! app may from then on report its positions (tracking learns it from the event). Assigning the
//! same courier again changes nothing; another courier takes over.

use oms_platform::outbox;
use oms_proto::fulfillment::v1 as pb;

use crate::{
    domain::{FulfillmentError, shipment::Status},
    events,
    store::{Store, status_of},
};

/// Gives `shipment_id` to `courier_id`; returns the shipment as it is now.
pub async fn assign(
    store: &Store,
    shipment_id: &str,
    courier_id: &str,
) -> Result<pb::Shipment, FulfillmentError> {
    // A concurrent change of the same shipment makes the save lose its race; read and retry.
    for _ in 0..5 {
        let txn = store.begin().await?;
        let (mut snapshot, version) = store.shipment(&txn, shipment_id).await?;
        if snapshot.courier_id == courier_id {
            txn.rollback().await?;
            return Ok(snapshot);
        }
        dispatchable(&snapshot)?;
        let previous = std::mem::replace(&mut snapshot.courier_id, courier_id.to_owned());
        if !store.save_shipment(&txn, &snapshot, version).await? {
            txn.rollback().await?;
            continue;
        }
        outbox::enqueue(&txn, &events::courier_assigned(snapshot.clone(), previous)?).await?;
        store.commit(txn).await?;
        return Ok(snapshot);
    }
    Err(FulfillmentError::Conflict(format!(
        "shipment {shipment_id} kept changing; retry"
    )))
}

/// Only an outbound shipment that has not ended can go out with a courier.
fn dispatchable(shipment: &pb::Shipment) -> Result<(), FulfillmentError> {
    let refuse = |why: &str| {
        Err(FulfillmentError::NotDispatchable(
            shipment.shipment_id.clone(),
            why.to_owned(),
        ))
    };
    if shipment.direction() != pb::ShipmentDirection::Outbound {
        return refuse("it is a return");
    }
    match status_of(shipment) {
        Status::Delivered => refuse("it is delivered"),
        Status::Cancelled => refuse("it is cancelled"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipment(direction: pb::ShipmentDirection, status: pb::ShipmentStatus) -> pb::Shipment {
        pb::Shipment {
            shipment_id: "s1".into(),
            direction: direction.into(),
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_outbound_shipments_under_way_take_a_courier() {
        use pb::{ShipmentDirection as D, ShipmentStatus as S};
        for status in [
            S::Created,
            S::HandedToCarrier,
            S::InTransit,
            S::OutForDelivery,
            S::Exception,
        ] {
            assert!(
                dispatchable(&shipment(D::Outbound, status)).is_ok(),
                "{status:?}"
            );
        }
        for (direction, status) in [
            (D::Outbound, S::Delivered),
            (D::Outbound, S::Cancelled),
            (D::Return, S::Created),
        ] {
            assert!(matches!(
                dispatchable(&shipment(direction, status)),
                Err(FulfillmentError::NotDispatchable(..))
            ));
        }
    }
}
