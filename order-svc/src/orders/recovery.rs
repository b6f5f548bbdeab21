//! Settles work a crash or an outage interrupted, every few seconds:
//! * a placement still PENDING past the placement deadline was interrupted: whatever stock
//!   its order holds is released, a stray authorisation voided, and it is REJECTED, so the
//!   buyer's retry gets an answer instead of "still being placed";
//! * a high-value order not verified within the TTL is cancelled;
//! * a confirmed order whose reservation inventory was not yet told to keep is confirmed now,
//!   or cancelled if the stock hold was lost meanwhile.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use oms_platform::money::Money;
use oms_proto::{inventory::v1 as inv, order::v1::OrderStatus};
use tokio_util::sync::CancellationToken;

use super::{INVENTORY, Orders, move_to};
use crate::{
    domain::{OrderError, money},
    events,
    store::StoredOrder,
};

/// Orders settled per pass and kind.
const BATCH: u64 = 100;

/// Runs until shutdown.
pub async fn run(orders: Arc<Orders>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = orders.recover().await {
            tracing::warn!(%error, "order recovery pass failed; the next pass retries");
        }
    }
}

impl Orders {
    /// One pass.
    pub async fn recover(&self) -> Result<(), OrderError> {
        let ttl = chrono::Duration::from_std(self.settings.reservation_ttl)
            .unwrap_or(chrono::Duration::minutes(15));
        let deadline = chrono::Duration::from_std(self.settings.placement_deadline)
            .unwrap_or(chrono::Duration::minutes(1));
        for stored in self
            .store
            .stale(OrderStatus::Pending, Utc::now() - deadline, BATCH)
            .await?
        {
            self.reject_interrupted(stored).await?;
        }
        for stored in self
            .store
            .stale(OrderStatus::RequiresVerification, Utc::now() - ttl, BATCH)
            .await?
        {
            self.settle_unkept(
                stored,
                OrderStatus::Rejected,
                "not verified in time: the stock hold ran out",
            )
            .await?;
        }
        for stored in self.store.unconfirmed_reservations(BATCH).await? {
            let request = inv::ConfirmReservationRequest {
                reservation_id: stored.reservation_id.clone(),
                idempotency_key: format!("confirm-{}", stored.order.order_id),
            };
            match self.inventory.clone().confirm_reservation(request).await {
                Ok(_) => {
                    self.store
                        .mark_reservation_confirmed(&stored.order.order_id)
                        .await?
                }
                Err(status) => match OrderError::from_peer(INVENTORY, status) {
                    OrderError::Unfulfillable { message, .. }
                        if stored.order.status() == OrderStatus::Confirmed =>
                    {
                        let reason = format!("the stock hold was lost: {message}");
                        self.settle_unkept(stored, OrderStatus::Cancelled, &reason)
                            .await?;
                    }
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }

    async fn reject_interrupted(&self, mut stored: StoredOrder) -> Result<(), OrderError> {
        let order_id = stored.order.order_id.clone();
        let currency = money::currency_of(&stored.order)?;
        // The placement may have reserved without saving the reservation's id; inventory
        // finds it by the order. Unreachable inventory fails the pass, which retries.
        let released = self
            .inventory
            .clone()
            .release(inv::ReleaseRequest {
                order_id: order_id.clone(),
                reason: "placement was interrupted".into(),
                idempotency_key: format!("interrupted-{order_id}"),
                ..Default::default()
            })
            .await
            .map_err(|status| OrderError::from_peer(INVENTORY, status))?;
        self.stock_came_back(released.get_ref().reservation.as_ref());
        // A crash between authorising and saving leaves an authorisation under the order's
        // id; voiding an unknown one is refused and harmless.
        let authorization = format!("auth-{order_id}");
        if let Err(error) = self
            .payments
            .void(
                &authorization,
                Money::new(currency, rust_decimal::Decimal::MAX),
                &format!("interrupted-{order_id}"),
            )
            .await
        {
            tracing::debug!(%order_id, %error, "no authorisation to void");
        }
        let reason = "placement was interrupted; nothing is held";
        stored.order.status_reason = reason.to_owned();
        let previous = move_to(&mut stored.order, OrderStatus::Rejected, reason)?;
        self.store
            .save_now(&mut stored, |order| {
                Ok(vec![events::status_changed(order, previous, reason)?])
            })
            .await
    }
}
