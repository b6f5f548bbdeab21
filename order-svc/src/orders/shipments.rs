//! Shipment events from fulfillment drive the order: when a parcel leaves, its units are taken
//! out of stock for good (the reservation commits) and its money is captured; when it arrives
//! the units count as delivered; the order's status follows its shipments. Return parcels move
//! their return to IN_TRANSIT.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use oms_platform::consumer::{EventHandler, HandlerError};
use oms_platform::outbox;
use oms_proto::{
    events::v1::{Envelope, envelope::Payload},
    fulfillment::v1::{self as ful, ShipmentDirection, ShipmentStatus},
    inventory::v1 as inv,
    order::v1::{self as pb, OrderStatus, ReturnStatus},
};
use sea_orm::DatabaseTransaction;

use super::{INVENTORY, Orders, move_to, payment_error, reservation_lines};
use crate::{
    domain::{OrderError, lifecycle, money},
    events,
    store::{Store, StoredOrder},
};

/// Consumes `oms.fulfillment.*.shipment_status_changed`.
pub struct ShipmentEvents {
    /// The operations.
    pub orders: Arc<Orders>,
}

#[async_trait]
impl EventHandler for ShipmentEvents {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let Some(Payload::ShipmentStatusChanged(changed)) = &event.payload else {
            return Ok(());
        };
        let Some(shipment) = &changed.shipment else {
            return Err(HandlerError::Reject(
                "shipment event without the shipment".into(),
            ));
        };
        self.orders
            .shipment_moved(txn, shipment)
            .await
            .map_err(handler_error)
    }

    /// The orders of a batch are loaded in one query, moved along in memory event by event,
    /// and saved in one statement with their events in another.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<(), HandlerError> {
        let mut shipments = Vec::with_capacity(events.len());
        for event in events {
            match &event.payload {
                Some(Payload::ShipmentStatusChanged(changed)) => match &changed.shipment {
                    Some(shipment) => shipments.push(shipment),
                    None => {
                        return Err(HandlerError::Reject(
                            "shipment event without the shipment".into(),
                        ));
                    }
                },
                _ => continue,
            }
        }
        self.orders
            .shipments_moved(txn, &shipments)
            .await
            .map_err(handler_error)
    }
}

fn handler_error(error: OrderError) -> HandlerError {
    match error {
        OrderError::UnknownOrder(_)
        | OrderError::Corrupt(_)
        | OrderError::NotAllowed(_)
        | OrderError::Invalid(_) => HandlerError::Reject(error.to_string()),
        other => HandlerError::Retry(other.to_string()),
    }
}

impl Orders {
    /// Applies a shipment's new status to its order (inside the consumer's transaction).
    pub async fn shipment_moved(
        &self,
        txn: &DatabaseTransaction,
        shipment: &ful::Shipment,
    ) -> Result<(), OrderError> {
        self.shipments_moved(txn, &[shipment]).await
    }

    /// Applies shipments' new statuses to their orders, in order: the orders are read in one
    /// query and written in one statement, each only if nobody changed it meanwhile.
    pub async fn shipments_moved(
        &self,
        txn: &DatabaseTransaction,
        shipments: &[&ful::Shipment],
    ) -> Result<(), OrderError> {
        let ids: Vec<&str> = shipments.iter().map(|s| s.order_id.as_str()).collect();
        let mut orders = self.store.load_many(txn, &ids).await?;
        let loaded: BTreeMap<String, i64> = orders
            .iter()
            .map(|(id, stored)| (id.clone(), stored.version))
            .collect();
        let mut events = Vec::new();
        for shipment in shipments {
            let stored = orders
                .get_mut(&shipment.order_id)
                .ok_or_else(|| OrderError::UnknownOrder(shipment.order_id.clone()))?;
            events.extend(self.apply_shipment(stored, shipment).await?);
        }
        let changed: Vec<(i64, &StoredOrder)> = orders
            .values()
            .filter_map(|stored| {
                let at = loaded.get(&stored.order.order_id).copied()?;
                (stored.version != at).then_some((at, stored))
            })
            .collect();
        self.store.save_changed(txn, &changed).await?;
        outbox::enqueue_all(txn, &events).await?;
        Ok(())
    }

    /// Moves a loaded order along with one shipment's new status; a change becomes the order's
    /// next version, and its events are returned.
    async fn apply_shipment(
        &self,
        stored: &mut StoredOrder,
        shipment: &ful::Shipment,
    ) -> Result<Vec<Envelope>, OrderError> {
        let order = &mut stored.order;
        let reported = shipment.status();
        if shipment.direction() == ShipmentDirection::Return {
            let Some(order_return) = order
                .returns
                .iter_mut()
                .find(|r| r.return_id == shipment.return_id)
            else {
                return Ok(Vec::new());
            };
            if order_return.status() != ReturnStatus::Requested || !lifecycle::has_left(reported) {
                return Ok(Vec::new());
            }
            order_return.status = ReturnStatus::InTransit.into();
            let order_return = order_return.clone();
            let note = format!("return {} is on its way back", order_return.return_id);
            let previous = order.status();
            if lifecycle::allowed(previous, OrderStatus::ReturnInTransit) {
                move_to(order, OrderStatus::ReturnInTransit, &note)?;
            }
            let moved = order.status() != previous;
            return Store::next_version(stored, |order| {
                let mut out = vec![events::return_changed(order, &order_return)?];
                if moved {
                    out.push(events::status_changed(order, previous, &note)?);
                }
                Ok(out)
            });
        }
        let Some(position) = order
            .shipments
            .iter()
            .position(|s| s.shipment_id == shipment.shipment_id)
        else {
            return Ok(Vec::new());
        };
        let known = order.shipments[position].status();
        if known == reported
            || known == ShipmentStatus::Cancelled
            || reported == ShipmentStatus::Cancelled
        {
            return Ok(Vec::new());
        }
        if lifecycle::has_left(reported) && !lifecycle::has_left(known) {
            self.take_payment_and_stock(&stored.reservation_id, order, position)
                .await?;
        }
        let order = &mut stored.order;
        let ours = &mut order.shipments[position];
        ours.status = reported.into();
        ours.tracking_number.clone_from(&shipment.tracking_number);
        let items = ours.items.clone();
        if reported == ShipmentStatus::Delivered {
            for item in &items {
                if let Some(line) = order.lines.iter_mut().find(|l| l.sku == item.sku) {
                    line.delivered_quantity += item.quantity;
                }
            }
        }
        let previous = order.status();
        let shipping = lifecycle::shipping_status(order.shipments.iter().map(|s| s.status()));
        let note = format!(
            "shipment {} {}",
            shipment.shipment_id,
            reported
                .as_str_name()
                .trim_start_matches("SHIPMENT_STATUS_")
                .replace('_', " ")
                .to_lowercase()
        );
        if shipping != previous && lifecycle::allowed(previous, shipping) {
            move_to(order, shipping, &note)?;
        }
        let moved = order.status() != previous;
        Store::next_version(stored, |order| {
            if moved {
                Ok(vec![events::status_changed(order, previous, &note)?])
            } else {
                Ok(Vec::new())
            }
        })
    }

    /// The parcel left: its reserved units leave stock for good and its money is captured.
    async fn take_payment_and_stock(
        &self,
        reservation_id: &str,
        order: &mut pb::Order,
        position: usize,
    ) -> Result<(), OrderError> {
        let shipment = order.shipments[position].clone();
        let key = format!("shipped-{}", shipment.shipment_id);
        self.inventory
            .clone()
            .commit(inv::CommitRequest {
                reservation_id: reservation_id.to_owned(),
                lines: reservation_lines([&shipment]),
                idempotency_key: key.clone(),
            })
            .await
            .map_err(|status| OrderError::from_peer(INVENTORY, status))?;
        let charge = money::shipment_charge(order, &shipment)?;
        if let Some(payment) = &order.payment {
            let captured = self
                .payments
                .capture(&payment.authorization_id, charge, &key)
                .await
                .map_err(payment_error)?;
            order.payment = Some(captured);
        }
        for item in &shipment.items {
            if let Some(line) = order.lines.iter_mut().find(|l| l.sku == item.sku) {
                line.shipped_quantity += item.quantity;
            }
        }
        Ok(())
    }
}
