//! The order operations: placement (the saga), cancellation and verification, returns, the
//! reaction to shipment events, and recovery of interrupted work. Each talks to inventory,
//! fulfillment and the payment provider with idempotency keys derived from the order, so a
//! retried request, a redelivered event or a restarted process never does anything twice.

mod changes;
mod placement;
mod recovery;
mod replays;
mod returns;
mod shipments;
mod steps;
mod stock_gate;

pub use recovery::run as run_recovery;
pub use replays::Replays;
pub use shipments::ShipmentEvents;
pub use stock_gate::{StockGate, watch_view};

use std::{sync::Arc, time::Duration};

use oms_platform::{events::now, money::Money};
use oms_proto::{
    fulfillment::v1::fulfillment_service_client::FulfillmentServiceClient,
    inventory::v1::{self as inv, inventory_service_client::InventoryServiceClient},
    order::v1::{self as pb, OrderStatus, TimelineEntry},
};
use tonic::transport::Channel;

use crate::{
    domain::{OrderError, eligibility::Policy, lifecycle, money},
    passkeys::Passkeys,
    payment::{PaymentError, PaymentProvider},
    store::{Store, StoredOrder},
};

/// Settings of the operations (from configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long inventory holds stock for a placement before it is confirmed (and how long a
    /// high-value order may wait for its step-up).
    pub reservation_ttl: Duration,
    /// After this a PENDING placement counts as interrupted.
    pub placement_deadline: Duration,
    /// Refund shipping too when a return brings back everything.
    pub refund_shipping_on_full_return: bool,
    /// The eligibility rules.
    pub policy: Policy,
}

/// Everything the operations need.
pub struct Orders {
    /// Orders, prices, customers.
    pub store: Store,
    /// Stock.
    pub inventory: InventoryServiceClient<Channel>,
    /// Plans, quotes, return labels.
    pub fulfillment: FulfillmentServiceClient<Channel>,
    /// Money.
    pub payments: Arc<dyn PaymentProvider>,
    /// Sold-out carts stop here.
    pub gate: Arc<StockGate>,
    /// Earlier placements of refused carts, looked up in batches.
    pub replays: Replays,
    /// The buyers' passkeys: the step-up of high-value orders.
    pub passkeys: Passkeys,
    /// Configuration.
    pub settings: Settings,
}

const INVENTORY: &str = "inventory-svc";
const FULFILLMENT: &str = "fulfillment-svc";

/// Moves the order to `to` (if the lifecycle allows) and notes it in the timeline; returns
/// the status it left.
fn move_to(order: &mut pb::Order, to: OrderStatus, note: &str) -> Result<OrderStatus, OrderError> {
    let from = order.status();
    if !lifecycle::allowed(from, to) {
        return Err(OrderError::NotAllowed(format!(
            "order {} is {}; it cannot become {}",
            order.order_id,
            words(from),
            words(to)
        )));
    }
    order.status = to.into();
    order.timeline.push(TimelineEntry {
        status: to.into(),
        at: Some(now()),
        note: note.to_owned(),
    });
    Ok(from)
}

/// "PARTIALLY_SHIPPED" → "partially shipped", for messages.
fn words(status: OrderStatus) -> String {
    status
        .as_str_name()
        .trim_start_matches("ORDER_STATUS_")
        .replace('_', " ")
        .to_lowercase()
}

fn payment_error(error: PaymentError) -> OrderError {
    match error {
        PaymentError::Declined(reason) => OrderError::PaymentDeclined(reason),
        PaymentError::Unavailable(reason) => OrderError::Peer {
            peer: "payment provider",
            status: tonic::Status::unavailable(reason),
        },
    }
}

/// Reservation lines of every shipment that has not left, or of `shipments` only.
fn reservation_lines<'a>(
    shipments: impl IntoIterator<Item = &'a pb::OrderShipment>,
) -> Vec<inv::ReservationLine> {
    shipments
        .into_iter()
        .flat_map(|s| {
            s.items.iter().map(|item| inv::ReservationLine {
                sku: item.sku.clone(),
                location_id: s.center_id.clone(),
                quantity: item.quantity,
            })
        })
        .collect()
}

/// Runs an operation again when it lost a race for the order (a shipment event landed between
/// its read and its write); its remote steps are idempotent by key, so repeating is safe.
async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T, OrderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OrderError>>,
{
    let mut lost = 0u64;
    loop {
        match attempt().await {
            Err(OrderError::Conflict(_)) if lost < 4 => {
                lost += 1;
                tokio::time::sleep(Duration::from_millis(10 * lost)).await;
            }
            outcome => return outcome,
        }
    }
}

impl Orders {
    /// An order the caller may see: anyone's when `user_id` is empty (services, operators),
    /// otherwise only the user's own (someone else's is NOT_FOUND, not a hint it exists).
    pub async fn visible(&self, order_id: &str, user_id: &str) -> Result<StoredOrder, OrderError> {
        let stored = self.store.load(&self.store.db, order_id).await?;
        if !user_id.is_empty() && stored.order.user_id != user_id {
            return Err(OrderError::UnknownOrder(order_id.to_owned()));
        }
        Ok(stored)
    }

    /// Releases the rest of a reservation (compensation; idempotent by `key`).
    async fn release(
        &self,
        reservation_id: &str,
        lines: Vec<inv::ReservationLine>,
        reason: &str,
        key: &str,
    ) -> Result<(), OrderError> {
        if reservation_id.is_empty() {
            return Ok(());
        }
        let released = self
            .inventory
            .clone()
            .release(inv::ReleaseRequest {
                reservation_id: reservation_id.to_owned(),
                lines,
                reason: reason.to_owned(),
                idempotency_key: key.to_owned(),
                order_id: String::new(),
            })
            .await
            .map_err(|status| OrderError::from_peer(INVENTORY, status))?;
        self.stock_came_back(released.get_ref().reservation.as_ref());
        Ok(())
    }

    /// Stock of a released reservation came back: whoever asks next for its SKUs asks
    /// inventory.
    fn stock_came_back(&self, released: Option<&inv::Reservation>) {
        if let Some(released) = released {
            self.gate
                .forget(released.lines.iter().map(|line| line.sku.as_str()));
        }
    }

    /// Voids what is still authorised and uncaptured, up to `amount` (idempotent by `key`).
    async fn void(
        &self,
        order: &mut pb::Order,
        amount: Money,
        key: &str,
    ) -> Result<(), OrderError> {
        let Some(payment) = &order.payment else {
            return Ok(());
        };
        let updated = self
            .payments
            .void(&payment.authorization_id, amount, key)
            .await
            .map_err(payment_error)?;
        order.payment = Some(updated);
        Ok(())
    }

    /// Recomputes totals after lines, shipments or refunds changed.
    fn retotal(order: &mut pb::Order) -> Result<(), OrderError> {
        order.totals = Some(money::totals(order)?);
        Ok(())
    }
}
