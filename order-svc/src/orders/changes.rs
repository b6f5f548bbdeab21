//! Cancellation (whole orders, or units not yet shipped) and the high-value step-up.

use chrono::Utc;
use oms_platform::{
    error::ApiError,
    idempotency::{IdempotentCall, check_key},
};
use oms_proto::{
    fulfillment::v1::ShipmentStatus,
    inventory::v1 as inv,
    order::v1::{self as pb, OrderStatus},
};

use super::{INVENTORY, Orders, move_to, with_retries};
use crate::{
    domain::{OrderError, lifecycle, money, step_up, validate},
    events,
    store::StoredOrder,
};

/// Units of `sku` in shipments that have not left a center.
fn cancellable(order: &pb::Order, sku: &str) -> u32 {
    order
        .shipments
        .iter()
        .filter(|s| !lifecycle::has_left(s.status()) && s.status() != ShipmentStatus::Cancelled)
        .flat_map(|s| &s.items)
        .filter(|item| item.sku == sku)
        .map(|item| item.quantity)
        .sum()
}

/// Takes `units` of `sku` out of shipments that have not left (the last planned first) and
/// returns what to release where; shipments left empty are cancelled.
fn take_out(order: &mut pb::Order, sku: &str, mut units: u32) -> Vec<inv::ReservationLine> {
    let mut released = Vec::new();
    for shipment in order.shipments.iter_mut().rev() {
        if units == 0
            || lifecycle::has_left(shipment.status())
            || shipment.status() == ShipmentStatus::Cancelled
        {
            continue;
        }
        for item in shipment.items.iter_mut().filter(|item| item.sku == sku) {
            let taken = item.quantity.min(units);
            item.quantity -= taken;
            units -= taken;
            if taken > 0 {
                released.push(inv::ReservationLine {
                    sku: sku.to_owned(),
                    location_id: shipment.center_id.clone(),
                    quantity: taken,
                });
            }
        }
        shipment.items.retain(|item| item.quantity > 0);
        if shipment.items.is_empty() {
            shipment.status = ShipmentStatus::Cancelled.into();
        }
    }
    released
}

impl Orders {
    /// Cancels a whole order before it ships, or some units not yet shipped: their stock is
    /// released and their money voided.
    pub async fn cancel(&self, request: pb::CancelOrderRequest) -> Result<pb::Order, OrderError> {
        with_retries(|| self.cancel_once(&request)).await
    }

    async fn cancel_once(&self, request: &pb::CancelOrderRequest) -> Result<pb::Order, OrderError> {
        check_key("idempotency_key", &request.idempotency_key)?;
        let call = IdempotentCall::new(
            format!("cancel:{}", request.order_id),
            &request.idempotency_key,
            request,
        );
        if let Some(done) = call
            .replay::<_, pb::CancelOrderResponse>(&self.store.db)
            .await?
        {
            return done.order.ok_or_else(|| {
                OrderError::Corrupt("stored cancellation without its order".into())
            });
        }
        let mut stored = self.visible(&request.order_id, &request.user_id).await?;
        let order = &mut stored.order;
        let whole = request.lines.is_empty();
        let requested: Vec<pb::LineQuantity> = if whole {
            if !lifecycle::allowed(order.status(), OrderStatus::Cancelled) {
                return Err(OrderError::NotAllowed(format!(
                    "order {} cannot be cancelled any more: {}",
                    order.order_id,
                    if lifecycle::is_open(order.status()) {
                        "goods have left the warehouse"
                    } else {
                        "it is closed"
                    }
                )));
            }
            order
                .lines
                .iter()
                .map(|line| pb::LineQuantity {
                    line_id: line.line_id.clone(),
                    quantity: cancellable(order, &line.sku),
                })
                .filter(|line| line.quantity > 0)
                .collect()
        } else {
            if !lifecycle::is_open(order.status()) || order.status() == OrderStatus::Pending {
                return Err(OrderError::NotAllowed(format!(
                    "order {} has no units left to cancel",
                    order.order_id
                )));
            }
            let snapshot = order.clone();
            validate::line_quantities("lines", &request.lines, order, |line| {
                cancellable(&snapshot, &line.sku)
            })?;
            request.lines.clone()
        };
        let before = money::totals(order)?;
        let mut released = Vec::new();
        for wanted in &requested {
            let Some(line) = order.lines.iter_mut().find(|l| l.line_id == wanted.line_id) else {
                continue;
            };
            line.cancelled_quantity += wanted.quantity;
            let sku = line.sku.clone();
            released.extend(take_out(order, &sku, wanted.quantity));
        }
        Self::retotal(order)?;
        let reason = if request.reason.trim().is_empty() {
            "cancelled by request".to_owned()
        } else {
            request.reason.trim().to_owned()
        };
        let everything = order
            .lines
            .iter()
            .all(|l| l.cancelled_quantity >= l.quantity);
        let previous = order.status();
        if everything {
            move_to(order, OrderStatus::Cancelled, &reason)?;
        } else {
            let shipping = lifecycle::shipping_status(order.shipments.iter().map(|s| s.status()));
            if shipping != previous && lifecycle::allowed(previous, shipping) {
                move_to(order, shipping, &reason)?;
            }
        }
        let key = format!("cancel-{}-{}", order.order_id, request.idempotency_key);
        let release_lines = if everything { Vec::new() } else { released };
        self.release(&stored.reservation_id, release_lines, &reason, &key)
            .await?;
        let currency = money::currency_of(&stored.order)?;
        let freed = money::amount_or_zero(before.total.as_ref(), currency)?.minus(
            &money::amount_or_zero(
                stored.order.totals.as_ref().and_then(|t| t.total.as_ref()),
                currency,
            )?,
        )?;
        self.void(&mut stored.order, freed, &key).await?;
        let txn = self.store.begin().await?;
        self.store
            .save(&txn, &mut stored, |order| {
                Ok(vec![events::status_changed(order, previous, &reason)?])
            })
            .await?;
        call.remember(
            &txn,
            &pb::CancelOrderResponse {
                order: Some(stored.order.clone()),
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(stored.order)
    }

    /// Completes a high-value order after the buyer's step-up.
    pub async fn verify(&self, request: pb::VerifyOrderRequest) -> Result<pb::Order, OrderError> {
        with_retries(|| self.verify_once(&request)).await
    }

    async fn verify_once(&self, request: &pb::VerifyOrderRequest) -> Result<pb::Order, OrderError> {
        check_key("idempotency_key", &request.idempotency_key)?;
        let mut stored = self.visible(&request.order_id, &request.user_id).await?;
        match stored.order.status() {
            OrderStatus::RequiresVerification => {}
            // A repeat after success.
            status if lifecycle::is_open(status) && status != OrderStatus::Pending => {
                return Ok(stored.order);
            }
            status => {
                return Err(OrderError::NotAllowed(format!(
                    "order {} is {}; nothing to verify",
                    stored.order.order_id,
                    status.as_str_name()
                )));
            }
        }
        let secret = self.settings.step_up_secret.as_deref().ok_or_else(|| {
            OrderError::NotAllowed("step-up verification is not configured on this server".into())
        })?;
        if request.verification_token.is_empty() {
            return Err(ApiError::invalid("verification_token", "required").into());
        }
        step_up::verify(
            secret,
            &request.verification_token,
            &stored.order.order_id,
            &stored.order.user_id,
            Utc::now().timestamp(),
        )
        .map_err(|e| OrderError::Forbidden(e.to_string()))?;
        // Reservations made before they were held until released still expire: keep them.
        let confirmed = if stored.reservation_confirmed {
            Ok(())
        } else {
            self.inventory
                .clone()
                .confirm_reservation(inv::ConfirmReservationRequest {
                    reservation_id: stored.reservation_id.clone(),
                    idempotency_key: format!("confirm-{}", stored.order.order_id),
                })
                .await
                .map(drop)
        };
        if let Err(status) = confirmed {
            let error = OrderError::from_peer(INVENTORY, status);
            if matches!(error, OrderError::Unfulfillable { .. }) {
                self.expire(stored, "the stock hold expired before the step-up")
                    .await?;
            }
            return Err(error);
        }
        stored.reservation_confirmed = true;
        stored.order.status_reason.clear();
        let note = "verified by step-up";
        let previous = move_to(&mut stored.order, OrderStatus::Confirmed, note)?;
        self.store
            .save_now(&mut stored, |order| {
                Ok(vec![events::status_changed(order, previous, note)?])
            })
            .await?;
        Ok(stored.order)
    }

    /// Cancels an order whose stock hold is gone (a step-up that came too late, a reservation
    /// that could not be kept): releases what is left, voids the money.
    pub(super) async fn expire(
        &self,
        mut stored: StoredOrder,
        reason: &str,
    ) -> Result<(), OrderError> {
        let key = format!("expire-{}", stored.order.order_id);
        self.release(&stored.reservation_id, Vec::new(), reason, &key)
            .await?;
        let currency = money::currency_of(&stored.order)?;
        let total = money::amount_or_zero(
            stored.order.totals.as_ref().and_then(|t| t.total.as_ref()),
            currency,
        )?;
        self.void(&mut stored.order, total, &key).await?;
        for line in &mut stored.order.lines {
            line.cancelled_quantity = line.quantity.saturating_sub(line.shipped_quantity);
        }
        for shipment in &mut stored.order.shipments {
            shipment.status = ShipmentStatus::Cancelled.into();
        }
        Self::retotal(&mut stored.order)?;
        stored.order.status_reason = reason.to_owned();
        let previous = move_to(&mut stored.order, OrderStatus::Cancelled, reason)?;
        self.store
            .save_now(&mut stored, |order| {
                Ok(vec![events::status_changed(order, previous, reason)?])
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::common::v1::ItemQuantity;

    fn shipment(center: &str, status: ShipmentStatus, items: &[(&str, u32)]) -> pb::OrderShipment {
        pb::OrderShipment {
            center_id: center.into(),
            status: status.into(),
            items: items
                .iter()
                .map(|(sku, quantity)| ItemQuantity {
                    sku: (*sku).into(),
                    quantity: *quantity,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_units_that_have_not_left_can_be_cancelled_and_empty_shipments_are_cancelled() {
        let mut order = pb::Order {
            shipments: vec![
                shipment("fc-a", ShipmentStatus::PickedUp, &[("A", 2)]),
                shipment(
                    "fc-b",
                    ShipmentStatus::HandedToCarrier,
                    &[("A", 1), ("B", 1)],
                ),
                shipment("fc-c", ShipmentStatus::Created, &[("A", 1)]),
            ],
            ..Default::default()
        };
        assert_eq!(cancellable(&order, "A"), 2);
        let released = take_out(&mut order, "A", 2);
        assert_eq!(
            released
                .iter()
                .map(|l| (l.location_id.as_str(), l.quantity))
                .collect::<Vec<_>>(),
            [("fc-c", 1), ("fc-b", 1)]
        );
        assert_eq!(order.shipments[2].status(), ShipmentStatus::Cancelled);
        assert_eq!(
            order.shipments[1].items,
            [ItemQuantity {
                sku: "B".into(),
                quantity: 1
            }]
        );
        assert_eq!(
            order.shipments[0].items[0].quantity, 2,
            "shipped units stay"
        );
        assert_eq!(cancellable(&order, "A"), 0);
    }
}
