//! Placement, the saga of DESIGN.md: idempotency → validation and eligibility → a plan from
//! fulfillment (or a valid quote) → an all-or-nothing reservation in inventory (re-planned
//! once on a conflict) → payment authorisation → CONFIRMED with its event. A failure releases
//! whatever was taken.
//!
//! The order is written PENDING under its idempotency key before anything is taken, so a
//! concurrent retry finds it and a crash leaves a trace the recovery loop settles (the
//! reservation's TTL returns the stock in any case).

use std::collections::BTreeMap;

use chrono::Utc;
use oms_platform::{
    error::{ApiError, Violations},
    events::{now, to_timestamp},
    money::{Currency, Money},
};
use oms_proto::{
    common::v1::ItemQuantity,
    fulfillment::v1::{self as ful, ShipmentStatus},
    inventory::v1 as inv,
    order::v1::{self as pb, OrderStatus, TimelineEntry},
};
use sha2::{Digest, Sha256};

use super::{FULFILLMENT, INVENTORY, Orders, move_to, payment_error, steps::Steps, words};
use crate::{
    domain::{
        Intake, OrderError,
        eligibility::{self, Facts, Verdict},
        money, validate,
    },
    events,
    store::{BuyerFacts, StoredOrder},
};

/// What a placement has taken so far, to give back if it fails.
#[derive(Default)]
struct Held {
    /// A reserve call went out: stock may be held even without an id (its answer was lost).
    reserve_sent: bool,
    reservation_id: String,
    authorized: bool,
}

/// A stable digest of what was asked for, so a key reused for a different order is caught.
fn request_hash(intake: &Intake) -> String {
    hex::encode(Sha256::digest(format!("{intake:?}").as_bytes()))
}

impl Orders {
    /// Places an order from any channel; returns it CONFIRMED (or REQUIRES_VERIFICATION).
    pub async fn place(&self, intake: Intake) -> Result<pb::Order, OrderError> {
        let currency = validate::intake(&intake)?;
        let hash = request_hash(&intake);
        let mut steps = Steps::start();
        // Sold out everywhere: refused before anything is written (unless this is the retry
        // of an order placed before it sold out).
        let _admitted = match self.gate.admit(&intake.lines).await {
            Ok(admitted) => admitted,
            Err(sold_out) => {
                return match self
                    .replays
                    .find(&intake.user_id, &intake.idempotency_key)
                    .await?
                {
                    Some(existing) => replay(existing, &hash),
                    None => Err(sold_out),
                };
            }
        };
        steps.done("admit");
        let lines = match self.price_lines(&intake, currency).await {
            Ok(lines) => lines,
            // A retry finds its order even if the price list changed since.
            Err(error) => {
                return match self
                    .store
                    .by_key(&intake.user_id, &intake.idempotency_key)
                    .await?
                {
                    Some(existing) => replay(existing, &hash),
                    None => Err(error),
                };
            }
        };
        let order_id = uuid::Uuid::now_v7().to_string();
        let mut order = pb::Order {
            order_id,
            user_id: intake.user_id.clone(),
            channel: intake.channel.into(),
            external_ref: intake.external_ref.clone(),
            status: OrderStatus::Pending.into(),
            currency_code: currency.code().to_owned(),
            lines,
            shipping_address: intake.shipping_address.clone(),
            timeline: vec![TimelineEntry {
                status: OrderStatus::Pending.into(),
                at: Some(now()),
                note: format!(
                    "received from {}",
                    intake
                        .channel
                        .as_str_name()
                        .trim_start_matches("CHANNEL_")
                        .to_lowercase()
                ),
            }],
            created_at: Some(to_timestamp(Utc::now())),
            updated_at: Some(to_timestamp(Utc::now())),
            version: 1,
            ..Default::default()
        };
        Self::retotal(&mut order)?;
        let mut stored = StoredOrder {
            order,
            version: 1,
            reservation_id: String::new(),
            reservation_confirmed: false,
            request_hash: hash,
        };
        steps.done("price");
        let Some(buyer) = self
            .store
            .insert_pending(&stored, &intake.idempotency_key)
            .await?
        else {
            let existing = self
                .store
                .by_key(&intake.user_id, &intake.idempotency_key)
                .await?;
            return match existing {
                Some(existing) => replay(existing, &stored.request_hash),
                None => Err(OrderError::Conflict(
                    "a concurrent placement with this key failed; retry".into(),
                )),
            };
        };
        steps.done("record");
        let mut held = Held::default();
        let placed = match self
            .saga(
                &mut stored,
                &intake,
                currency,
                &buyer,
                &mut held,
                &mut steps,
            )
            .await
        {
            Ok(()) => Ok(stored.order),
            Err(error) => Err(self.abandon(stored, held, error).await),
        };
        if let Ok(order) = &placed {
            steps.finish(&order.order_id);
        }
        placed
    }

    /// Our price list for every line, or the channel's price where it collected one.
    async fn price_lines(
        &self,
        intake: &Intake,
        currency: Currency,
    ) -> Result<Vec<pb::OrderLine>, OrderError> {
        let skus: Vec<&str> = intake.lines.iter().map(|l| l.sku.as_str()).collect();
        let prices = self.store.prices(currency, &skus).await?;
        let mut v = Violations::new();
        let mut lines = Vec::with_capacity(intake.lines.len());
        for (i, line) in intake.lines.iter().enumerate() {
            let Some((name, list_price)) = prices.get(&line.sku) else {
                v.add(
                    format!("lines[{i}].sku"),
                    format!("{} is not sold in {currency}", line.sku),
                );
                continue;
            };
            let unit = line
                .unit_price
                .map_or(*list_price, |price| Money::new(currency, price));
            lines.push(pb::OrderLine {
                line_id: format!("L{}", i + 1),
                sku: line.sku.clone(),
                name: name.clone(),
                quantity: line.quantity,
                unit_price: Some(unit.to_proto()),
                line_total: Some(unit.times(line.quantity)?.to_proto()),
                ..Default::default()
            });
        }
        v.into_result()?;
        Ok(lines)
    }

    async fn saga(
        &self,
        stored: &mut StoredOrder,
        intake: &Intake,
        currency: Currency,
        buyer: &BuyerFacts,
        held: &mut Held,
        steps: &mut Steps,
    ) -> Result<(), OrderError> {
        let destination = stored.order.shipping_address.clone().unwrap_or_default();
        let total_of = |order: &pb::Order| {
            money::amount_or_zero(
                order.totals.as_ref().and_then(|t| t.total.as_ref()),
                currency,
            )
        };
        // Refuse early on standing and limits, before planning costs anything.
        let subtotal = total_of(&stored.order)?;
        let facts = Facts {
            customer: buyer.customer.as_ref(),
            open_orders: buyer.open_orders,
            total: &subtotal,
            destination: &destination,
        };
        eligibility::check(&facts, &self.settings.policy).map_err(OrderError::NotEligible)?;

        let plan = self.plan(&stored.order, intake).await?;
        steps.done("plan");
        held.reserve_sent = true;
        let (plan, (reservation, levels)) = match self.reserve(&stored.order, &plan, "").await {
            Err(OrderError::Unfulfillable { .. }) => {
                // Someone took the stock between plan and reserve: plan again over what is left.
                let plan = self.fresh_plan(&stored.order, intake).await?;
                let reserved = self.reserve(&stored.order, &plan, "-replan").await?;
                (plan, reserved)
            }
            other => (plan, other?),
        };
        held.reservation_id = reservation.reservation_id.clone();
        stored.reservation_id = reservation.reservation_id;
        self.gate.learn(&levels);
        steps.done("reserve");
        // Held until released: nothing to confirm with inventory later.
        stored.reservation_confirmed = true;
        let order = &mut stored.order;
        order.shipments = shipments_of(&order.order_id, &plan);
        Self::retotal(order)?;

        let total = total_of(order)?;
        let facts = Facts {
            total: &total,
            ..facts
        };
        let verdict =
            eligibility::check(&facts, &self.settings.policy).map_err(OrderError::NotEligible)?;
        let payment = self
            .payments
            .authorize(&order.order_id, total)
            .await
            .map_err(payment_error)?;
        steps.done("authorize");
        held.authorized = true;
        order.payment = Some(payment);
        let (status, note) = match verdict {
            Verdict::Accept => (
                OrderStatus::Confirmed,
                "stock reserved and payment authorised".to_owned(),
            ),
            Verdict::RequiresVerification(reason) => {
                order.status_reason = reason.clone();
                (OrderStatus::RequiresVerification, reason)
            }
        };
        let previous = move_to(order, status, &note)?;
        self.store
            .save_now(stored, |order| {
                Ok(vec![events::status_changed(order, previous, &note)?])
            })
            .await?;
        steps.done("confirm");
        Ok(())
    }

    /// The plan of a valid quote (its prices honoured), or a fresh one.
    async fn plan(
        &self,
        order: &pb::Order,
        intake: &Intake,
    ) -> Result<ful::FulfillmentPlan, OrderError> {
        if intake.quote_id.is_empty() {
            return self.fresh_plan(order, intake).await;
        }
        let quote = self
            .fulfillment
            .clone()
            .get_quote(ful::GetQuoteRequest {
                quote_id: intake.quote_id.clone(),
            })
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => {
                    OrderError::Invalid(ApiError::invalid("quote_id", "no such quote"))
                }
                _ => OrderError::from_peer(FULFILLMENT, status),
            })?
            .into_inner()
            .quote
            .unwrap_or_default();
        let wanted = intake.preference.as_ref().map_or(0, |p| p.method);
        let option = quote
            .options
            .into_iter()
            .find(|option| wanted == 0 || option.method == wanted)
            .ok_or_else(|| {
                OrderError::Invalid(ApiError::invalid(
                    "quote_id",
                    "the quote has no option for the requested method",
                ))
            })?;
        let plan = option.plan.unwrap_or_default();
        let ordered: BTreeMap<&str, u32> = order
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity))
            .collect();
        if quote.currency_code != order.currency_code
            || items_of(plan.shipments.iter().flat_map(|s| &s.items)) != ordered
        {
            return Err(OrderError::Invalid(ApiError::invalid(
                "quote_id",
                "the quote is for other items or another currency",
            )));
        }
        Ok(plan)
    }

    async fn fresh_plan(
        &self,
        order: &pb::Order,
        intake: &Intake,
    ) -> Result<ful::FulfillmentPlan, OrderError> {
        let lines = order
            .lines
            .iter()
            .map(|line| ful::PlanLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price.clone(),
            })
            .collect();
        let response = self
            .fulfillment
            .clone()
            .plan_fulfillment(ful::PlanFulfillmentRequest {
                lines,
                destination: order.shipping_address.clone(),
                preference: intake.preference,
                currency_code: order.currency_code.clone(),
                exclude_center_ids: Vec::new(),
                user_id: order.user_id.clone(),
            })
            .await
            .map_err(|status| OrderError::from_peer(FULFILLMENT, status))?;
        response
            .into_inner()
            .plan
            .ok_or_else(|| OrderError::Corrupt("fulfillment answered without a plan".into()))
    }

    async fn reserve(
        &self,
        order: &pb::Order,
        plan: &ful::FulfillmentPlan,
        attempt: &str,
    ) -> Result<(inv::Reservation, Vec<inv::StockLevel>), OrderError> {
        let lines = plan
            .shipments
            .iter()
            .flat_map(|s| {
                s.items.iter().map(|item| inv::ReservationLine {
                    sku: item.sku.clone(),
                    location_id: s.center_id.clone(),
                    quantity: item.quantity,
                })
            })
            .collect();
        let ttl_seconds =
            u32::try_from(self.settings.reservation_ttl.as_secs()).unwrap_or(u32::MAX);
        let response = self
            .inventory
            .clone()
            .reserve(inv::ReserveRequest {
                order_id: order.order_id.clone(),
                lines,
                ttl_seconds,
                idempotency_key: format!("place-{}{attempt}", order.order_id),
                user_id: order.user_id.clone(),
                // This service releases it if the placement fails, and settles placements a
                // crash interrupted (the order stays PENDING until then): no expiry, and no
                // confirmation round trip once the order is confirmed.
                until_released: true,
            })
            .await
            .map_err(|status| OrderError::from_peer(INVENTORY, status))?
            .into_inner();
        let reservation = response.reservation.ok_or_else(|| {
            OrderError::Corrupt("inventory answered without a reservation".into())
        })?;
        Ok((reservation, response.levels))
    }

    /// Gives back what a failed placement took; the order ends REJECTED when the failure is
    /// the order's own, and is forgotten otherwise (so the same key may be retried).
    async fn abandon(&self, mut stored: StoredOrder, held: Held, error: OrderError) -> OrderError {
        let order_id = stored.order.order_id.clone();
        let reason = error.to_string();
        // A lost answer may hide a reservation that was made: without its id, inventory
        // finds it by the order. Refusals before any reserve (sold out at planning, not
        // eligible) hold nothing and skip the call.
        let released = if held.reserve_sent {
            self.inventory
                .clone()
                .release(inv::ReleaseRequest {
                    reservation_id: held.reservation_id.clone(),
                    order_id: order_id.clone(),
                    reason: format!("placement failed: {reason}"),
                    idempotency_key: format!("abandon-{order_id}"),
                    ..Default::default()
                })
                .await
                .map(|released| self.stock_came_back(released.get_ref().reservation.as_ref()))
        } else {
            Ok(())
        };
        if let Err(release) = &released {
            tracing::warn!(%order_id, error = %release, "releasing after a failed placement failed; recovery settles it");
        }
        if held.authorized {
            let total = stored.order.totals.as_ref().and_then(|t| t.total.clone());
            let amount = money::currency_of(&stored.order)
                .and_then(|currency| money::amount_or_zero(total.as_ref(), currency));
            if let Ok(amount) = amount
                && let Err(void) = self
                    .void(&mut stored.order, amount, &format!("abandon-{order_id}"))
                    .await
            {
                tracing::warn!(%order_id, error = %void, "voiding after a failed placement failed");
            }
        }
        let outcome = if error.is_business() {
            stored.order.status_reason = reason.clone();
            stored.order.shipments.clear();
            match move_to(&mut stored.order, OrderStatus::Rejected, &reason) {
                Ok(previous) => {
                    self.store
                        .save_now(&mut stored, |order| {
                            Ok(vec![events::status_changed(order, previous, &reason)?])
                        })
                        .await
                }
                Err(not_allowed) => Err(not_allowed),
            }
        } else if released.is_ok() {
            self.store.forget_pending(&order_id).await
        } else {
            // Stock may still be held: the order stays PENDING until recovery releases it.
            Ok(())
        };
        if let Err(cleanup) = outcome {
            tracing::warn!(%order_id, error = %cleanup, "recording the failed placement failed; recovery settles it");
        }
        error
    }

    /// Prices delivery for a prospective order (mobile QuoteDelivery).
    pub async fn quote(
        &self,
        request: pb::QuoteOrderRequest,
    ) -> Result<pb::QuoteOrderResponse, OrderError> {
        let intake = Intake {
            user_id: request.user_id.clone(),
            idempotency_key: "quote".into(),
            currency_code: request.currency_code.clone(),
            lines: request
                .lines
                .iter()
                .map(|l| crate::domain::IntakeLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    unit_price: None,
                })
                .collect(),
            shipping_address: request.destination.clone(),
            preference: request.preference,
            ..Default::default()
        };
        let currency = validate::intake(&intake)?;
        let lines = self.price_lines(&intake, currency).await?;
        let subtotal = Money::sum(
            currency,
            &lines
                .iter()
                .map(|l| money::amount_or_zero(l.line_total.as_ref(), currency))
                .collect::<Result<Vec<_>, _>>()?,
        )?;
        let quote = self
            .fulfillment
            .clone()
            .quote_delivery(ful::QuoteDeliveryRequest {
                lines: lines
                    .iter()
                    .map(|l| ful::PlanLine {
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                        unit_price: l.unit_price.clone(),
                    })
                    .collect(),
                destination: request.destination,
                currency_code: currency.code().to_owned(),
                preference: request.preference,
                user_id: request.user_id,
            })
            .await
            .map_err(|status| OrderError::from_peer(FULFILLMENT, status))?
            .into_inner()
            .quote;
        Ok(pb::QuoteOrderResponse {
            quote,
            subtotal: Some(subtotal.to_proto()),
        })
    }
}

/// What a repeated placement answers: the order as it is, the same refusal, or "still busy".
fn replay(existing: StoredOrder, hash: &str) -> Result<pb::Order, OrderError> {
    if existing.request_hash != hash {
        return Err(OrderError::NotAllowed(format!(
            "idempotency key already used for a different order ({})",
            existing.order.order_id
        )));
    }
    match existing.order.status() {
        OrderStatus::Pending => Err(OrderError::Conflict(format!(
            "order {} is still being placed; retry shortly",
            existing.order.order_id
        ))),
        OrderStatus::Rejected => Err(OrderError::NotEligible(format!(
            "order {} was {}: {}",
            existing.order.order_id,
            words(OrderStatus::Rejected),
            existing.order.status_reason
        ))),
        _ => Ok(existing.order),
    }
}

/// Units per SKU.
fn items_of<'a>(items: impl IntoIterator<Item = &'a ItemQuantity>) -> BTreeMap<&'a str, u32> {
    let mut totals = BTreeMap::new();
    for item in items {
        *totals.entry(item.sku.as_str()).or_insert(0) += item.quantity;
    }
    totals
}

/// The order's shipments from a plan; ids derive from the order so a replay names them alike.
fn shipments_of(order_id: &str, plan: &ful::FulfillmentPlan) -> Vec<pb::OrderShipment> {
    plan.shipments
        .iter()
        .enumerate()
        .map(|(i, planned)| pb::OrderShipment {
            shipment_id: format!("{order_id}-s{}", i + 1),
            center_id: planned.center_id.clone(),
            method: planned.method,
            carrier: planned.carrier.clone(),
            items: planned.items.clone(),
            promised_window: planned.promised_window,
            shipping_price: planned.shipping_price.clone(),
            landed_cost: planned.landed_cost.clone(),
            status: ShipmentStatus::Created.into(),
            tracking_number: String::new(),
            reason: planned.reason.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_key_with_other_content_is_refused_and_a_rejection_repeats() {
        let mut order = pb::Order {
            order_id: "o1".into(),
            status: OrderStatus::Confirmed.into(),
            ..Default::default()
        };
        let stored = |order: &pb::Order| StoredOrder {
            order: order.clone(),
            version: 2,
            reservation_id: String::new(),
            reservation_confirmed: true,
            request_hash: "h1".into(),
        };
        assert!(replay(stored(&order), "h1").is_ok());
        assert!(matches!(
            replay(stored(&order), "h2"),
            Err(OrderError::NotAllowed(_))
        ));
        order.status = OrderStatus::Pending.into();
        assert!(matches!(
            replay(stored(&order), "h1"),
            Err(OrderError::Conflict(_))
        ));
        order.status = OrderStatus::Rejected.into();
        order.status_reason = "out of stock".into();
        let Err(OrderError::NotEligible(message)) = replay(stored(&order), "h1") else {
            panic!("a rejection repeats")
        };
        assert!(message.ends_with("out of stock"));
    }

    #[test]
    fn shipment_ids_derive_from_the_order() {
        let plan = ful::FulfillmentPlan {
            shipments: vec![
                ful::PlannedShipment {
                    center_id: "fc-a".into(),
                    ..Default::default()
                },
                ful::PlannedShipment::default(),
            ],
            ..Default::default()
        };
        let ids: Vec<_> = shipments_of("o1", &plan)
            .into_iter()
            .map(|s| s.shipment_id)
            .collect();
        assert_eq!(ids, ["o1-s1", "o1-s2"]);
    }
}
