//! Cancellation (whole orders, or units not yet shipped) and the high-value step-up.

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
    domain::{
        OrderError, lifecycle, money, validate,
        verification::{self, AfterFailure},
    },
    events,
    passkeys::AnswerError,
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

    /// The challenge a held order's buyer answers with a passkey.
    pub async fn begin_verification(
        &self,
        order_id: &str,
        user_id: &str,
    ) -> Result<pb::BeginOrderVerificationResponse, OrderError> {
        let stored = self.visible(order_id, user_id).await?;
        if stored.order.status() != OrderStatus::RequiresVerification {
            return Err(OrderError::NotAllowed(format!(
                "order {order_id} is {}; nothing to verify",
                stored.order.status().as_str_name()
            )));
        }
        self.passkeys.challenge(&stored.order).await
    }

    /// Completes a high-value order after the buyer's passkey answered its challenge.
    pub async fn verify(&self, request: pb::VerifyOrderRequest) -> Result<pb::Order, OrderError> {
        with_retries(|| self.verify_once(&request)).await
    }

    async fn verify_once(&self, request: &pb::VerifyOrderRequest) -> Result<pb::Order, OrderError> {
        check_key("idempotency_key", &request.idempotency_key)?;
        let stored = self.visible(&request.order_id, &request.user_id).await?;
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
        if request.assertion_json.trim().is_empty() {
            return Err(ApiError::invalid(
                "assertion_json",
                "required: the passkey's answer to the order's challenge",
            )
            .into());
        }
        match self
            .passkeys
            .answer(&stored.order, &request.assertion_json)
            .await
        {
            Ok(()) => self.confirm_verified(stored).await,
            Err(AnswerError::NoChallenge(message)) => Err(OrderError::NotAllowed(message)),
            Err(AnswerError::Failed(error)) => Err(error),
            Err(AnswerError::Refused { reason, failures }) => {
                match verification::after_failure(failures, self.passkeys.max_attempts()) {
                    AfterFailure::Retry(left) => Err(OrderError::Forbidden(format!(
                        "{reason}; {left} attempt(s) left: begin the verification again"
                    ))),
                    AfterFailure::Reject => {
                        let note = "rejected: too many failed verifications";
                        self.settle_unkept(stored, OrderStatus::Rejected, note)
                            .await?;
                        Err(OrderError::Forbidden(format!(
                            "{reason}; {note}, the stock is released"
                        )))
                    }
                }
            }
        }
    }

    /// Confirms a held order whose buyer verified.
    async fn confirm_verified(&self, mut stored: StoredOrder) -> Result<pb::Order, OrderError> {
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
                self.settle_unkept(
                    stored,
                    OrderStatus::Cancelled,
                    "the stock hold expired before the step-up",
                )
                .await?;
            }
            return Err(error);
        }
        stored.reservation_confirmed = true;
        stored.order.status_reason.clear();
        let note = "verified with the buyer's passkey";
        let previous = move_to(&mut stored.order, OrderStatus::Confirmed, note)?;
        self.store
            .save_now(&mut stored, |order| {
                Ok(vec![events::status_changed(order, previous, note)?])
            })
            .await?;
        Ok(stored.order)
    }

    /// Ends an order that will not go ahead — cancelled (its stock hold is gone: a step-up that
    /// came too late, a reservation that could not be kept) or rejected (its buyer did not
    /// verify): releases what is left, voids the money.
    pub(super) async fn settle_unkept(
        &self,
        mut stored: StoredOrder,
        status: OrderStatus,
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
        let previous = move_to(&mut stored.order, status, reason)?;
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
