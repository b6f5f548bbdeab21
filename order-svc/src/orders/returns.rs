//! Reverse logistics: a return of delivered units gets a return label from fulfillment; on
//! receipt at the center inventory restocks sellable units and writes off damaged ones, and the
//! returned units are refunded automatically. Each step is an event; each is idempotent.

use std::collections::BTreeMap;

use oms_platform::{
    error::{ApiError, Violations},
    events::now,
    idempotency::{IdempotentCall, check_key},
};
use oms_proto::{
    common::v1::ItemQuantity,
    fulfillment::v1 as ful,
    inventory::v1 as inv,
    order::v1::{self as pb, OrderStatus, ReturnStatus},
};
use sha2::{Digest, Sha256};

use super::{FULFILLMENT, INVENTORY, Orders, move_to, payment_error, with_retries};
use crate::{
    domain::{OrderError, lifecycle, money, validate},
    events,
};

/// Units of a line already on a return that is not finished.
fn on_open_returns(order: &pb::Order, line_id: &str) -> u32 {
    order
        .returns
        .iter()
        .filter(|r| {
            matches!(
                r.status(),
                ReturnStatus::Requested | ReturnStatus::InTransit
            )
        })
        .flat_map(|r| &r.lines)
        .filter(|l| l.line_id == line_id)
        .map(|l| l.quantity)
        .sum()
}

/// Units of a line that may still be returned.
fn returnable(order: &pb::Order, line: &pb::OrderLine) -> u32 {
    line.delivered_quantity
        .saturating_sub(line.returned_quantity + on_open_returns(order, &line.line_id))
}

impl Orders {
    /// Starts a return of delivered units.
    pub async fn request_return(
        &self,
        request: pb::RequestReturnRequest,
    ) -> Result<pb::RequestReturnResponse, OrderError> {
        with_retries(|| self.request_return_once(&request)).await
    }

    async fn request_return_once(
        &self,
        request: &pb::RequestReturnRequest,
    ) -> Result<pb::RequestReturnResponse, OrderError> {
        check_key("idempotency_key", &request.idempotency_key)?;
        let call = IdempotentCall::new(
            format!("return:{}", request.order_id),
            &request.idempotency_key,
            request,
        );
        if let Some(done) = call.replay(&self.store.db).await? {
            return Ok(done);
        }
        let mut stored = self.visible(&request.order_id, &request.user_id).await?;
        let order = &stored.order;
        if !lifecycle::allowed(order.status(), OrderStatus::ReturnRequested) {
            return Err(OrderError::NotAllowed(format!(
                "order {} has nothing delivered to return",
                order.order_id
            )));
        }
        if request.lines.is_empty() {
            return Err(ApiError::invalid("lines", "at least one line").into());
        }
        let mut v = Violations::new();
        v.text("reason", &request.reason, 500, true);
        v.into_result()?;
        validate::line_quantities("lines", &request.lines, order, |line| {
            returnable(order, line)
        })?;
        // Derived from the request so a retry after a crash asks fulfillment for the same label.
        let digest = hex::encode(Sha256::digest(
            format!("{}:{}", order.order_id, request.idempotency_key).as_bytes(),
        ));
        let return_id = format!("ret-{}", &digest[..24]);
        let lines: Vec<pb::ReturnLine> = request
            .lines
            .iter()
            .filter_map(|wanted| {
                order
                    .lines
                    .iter()
                    .find(|l| l.line_id == wanted.line_id)
                    .map(|line| pb::ReturnLine {
                        line_id: line.line_id.clone(),
                        sku: line.sku.clone(),
                        quantity: wanted.quantity,
                        ..Default::default()
                    })
            })
            .collect();
        let label = self
            .fulfillment
            .clone()
            .create_return_shipment(ful::CreateReturnShipmentRequest {
                order_id: order.order_id.clone(),
                return_id: return_id.clone(),
                user_id: order.user_id.clone(),
                items: lines
                    .iter()
                    .map(|l| ItemQuantity {
                        sku: l.sku.clone(),
                        quantity: l.quantity,
                    })
                    .collect(),
                origin: order.shipping_address.clone(),
                idempotency_key: return_id.clone(),
            })
            .await
            .map_err(|status| OrderError::from_peer(FULFILLMENT, status))?
            .into_inner()
            .shipment
            .unwrap_or_default();
        let units: BTreeMap<String, u32> = lines
            .iter()
            .map(|l| (l.line_id.clone(), l.quantity))
            .collect();
        let estimate =
            money::refund_for(order, &units, self.settings.refund_shipping_on_full_return)?;
        let order_return = pb::Return {
            return_id: return_id.clone(),
            order_id: order.order_id.clone(),
            status: ReturnStatus::Requested.into(),
            lines,
            reason: request.reason.trim().to_owned(),
            shipment_id: label.shipment_id,
            refund: Some(estimate.to_proto()),
            created_at: Some(now()),
        };
        let order = &mut stored.order;
        order.returns.push(order_return.clone());
        let note = format!("return {return_id} requested: {}", order_return.reason);
        let previous = move_to(order, OrderStatus::ReturnRequested, &note)?;
        let txn = self.store.begin().await?;
        self.store
            .link_return(&txn, &return_id, &stored.order.order_id)
            .await?;
        self.store
            .save(&txn, &mut stored, |order| {
                Ok(vec![
                    events::status_changed(order, previous, &note)?,
                    events::return_changed(order, &order_return)?,
                ])
            })
            .await?;
        let response = pb::RequestReturnResponse {
            order: Some(stored.order.clone()),
            order_return: Some(order_return),
        };
        call.remember(&txn, &response).await?;
        self.store.commit(txn).await?;
        Ok(response)
    }

    /// A center received a return: restock or write off, then refund.
    pub async fn receive_return(
        &self,
        request: pb::ReceiveReturnRequest,
    ) -> Result<pb::ReceiveReturnResponse, OrderError> {
        with_retries(|| self.receive_return_once(&request)).await
    }

    async fn receive_return_once(
        &self,
        request: &pb::ReceiveReturnRequest,
    ) -> Result<pb::ReceiveReturnResponse, OrderError> {
        check_key("idempotency_key", &request.idempotency_key)?;
        let order_id = self.store.order_of_return(&request.return_id).await?;
        let call = IdempotentCall::new(
            format!("receive:{}", request.return_id),
            &request.idempotency_key,
            request,
        );
        if let Some(done) = call.replay(&self.store.db).await? {
            return Ok(done);
        }
        let mut stored = self.visible(&order_id, "").await?;
        let position = stored
            .order
            .returns
            .iter()
            .position(|r| r.return_id == request.return_id)
            .ok_or_else(|| OrderError::UnknownReturn(request.return_id.clone()))?;
        let order_return = stored.order.returns[position].clone();
        if !matches!(
            order_return.status(),
            ReturnStatus::Requested | ReturnStatus::InTransit
        ) {
            return Err(OrderError::NotAllowed(format!(
                "return {} was received already",
                order_return.return_id
            )));
        }
        let received = received_lines(request, &order_return)?;
        let center = self.return_center(&order_return).await?;
        let restock = self
            .inventory
            .clone()
            .restock(inv::RestockRequest {
                order_id: order_id.clone(),
                return_id: order_return.return_id.clone(),
                lines: received
                    .iter()
                    .map(|(line, condition, quantity)| inv::RestockLine {
                        sku: line.sku.clone(),
                        location_id: center.clone(),
                        quantity: *quantity,
                        condition: (*condition).into(),
                    })
                    .collect(),
                idempotency_key: format!("restock-{}", order_return.return_id),
            })
            .await
            .map_err(|status| OrderError::from_peer(INVENTORY, status))?;
        tracing::info!(return_id = %order_return.return_id, written_off = restock.get_ref().written_off, "return restocked");

        let mut units: BTreeMap<String, u32> = BTreeMap::new();
        let mut updated_return = order_return.clone();
        for (line, condition, quantity) in &received {
            *units.entry(line.line_id.clone()).or_insert(0) += quantity;
            if let Some(state) = updated_return
                .lines
                .iter_mut()
                .find(|l| l.line_id == line.line_id)
            {
                match condition {
                    inv::ItemCondition::Sellable => state.restocked += quantity,
                    _ => state.written_off += quantity,
                }
            }
        }
        let due = money::refund_for(
            &stored.order,
            &units,
            self.settings.refund_shipping_on_full_return,
        )?;
        let currency = money::currency_of(&stored.order)?;
        let refunded_before = money::amount_or_zero(
            stored
                .order
                .payment
                .as_ref()
                .and_then(|p| p.refunded.as_ref()),
            currency,
        )?;
        let authorization = stored
            .order
            .payment
            .as_ref()
            .map(|p| p.authorization_id.clone())
            .unwrap_or_default();
        let payment = self
            .payments
            .refund(
                &authorization,
                due,
                &format!("refund-{}", order_return.return_id),
            )
            .await
            .map_err(payment_error)?;
        let refunded_now = money::amount_or_zero(payment.refunded.as_ref(), currency)?;
        // The provider caps a refund at what was captured.
        let refund = refunded_now.minus(&refunded_before)?;
        let order = &mut stored.order;
        order.payment = Some(payment);
        for line in &mut order.lines {
            line.returned_quantity += units.get(&line.line_id).copied().unwrap_or(0);
        }
        if let Some(totals) = order.totals.as_mut() {
            totals.refunded = Some(refunded_now.to_proto());
        }
        updated_return.status = ReturnStatus::Refunded.into();
        updated_return.refund = Some(refund.to_proto());
        order.returns[position] = updated_return.clone();
        let received_note = format!("return {} received at {center}", updated_return.return_id);
        let refund_note = format!("refunded {refund} for return {}", updated_return.return_id);
        let before_receipt = move_to(order, OrderStatus::Returned, &received_note)?;
        move_to(order, OrderStatus::Refunded, &refund_note)?;
        let txn = self.store.begin().await?;
        self.store
            .save(&txn, &mut stored, |order| {
                let mut received_view = order.clone();
                received_view.status = OrderStatus::Returned.into();
                Ok(vec![
                    events::status_changed(&received_view, before_receipt, &received_note)?,
                    events::refund_issued(
                        order,
                        &updated_return.return_id,
                        refund.to_proto(),
                        &updated_return.reason,
                    )?,
                    events::return_changed(order, &updated_return)?,
                    events::status_changed(order, OrderStatus::Returned, &refund_note)?,
                ])
            })
            .await?;
        let response = pb::ReceiveReturnResponse {
            order: Some(stored.order.clone()),
            order_return: Some(updated_return),
        };
        call.remember(&txn, &response).await?;
        self.store.commit(txn).await?;
        Ok(response)
    }

    /// The center the return label sends the parcel to.
    async fn return_center(&self, order_return: &pb::Return) -> Result<String, OrderError> {
        let shipment = self
            .fulfillment
            .clone()
            .get_shipment(ful::GetShipmentRequest {
                shipment_id: order_return.shipment_id.clone(),
            })
            .await
            .map_err(|status| OrderError::from_peer(FULFILLMENT, status))?
            .into_inner()
            .shipment
            .unwrap_or_default();
        Ok(shipment.center_id)
    }
}

/// The received lines with their return line, condition and units; every line of the request
/// must be on the return, with no more units than it carries.
fn received_lines<'a>(
    request: &pb::ReceiveReturnRequest,
    order_return: &'a pb::Return,
) -> Result<Vec<(&'a pb::ReturnLine, inv::ItemCondition, u32)>, ApiError> {
    let mut v = Violations::new();
    let mut counted: BTreeMap<&str, u32> = BTreeMap::new();
    let mut received = Vec::new();
    if request.lines.is_empty() {
        v.add("lines", "at least one line");
    }
    for (i, line) in request.lines.iter().enumerate() {
        let Some(on_return) = order_return
            .lines
            .iter()
            .find(|l| l.line_id == line.line_id)
        else {
            v.add(format!("lines[{i}].line_id"), "not on this return");
            continue;
        };
        let condition = match inv::ItemCondition::try_from(line.condition) {
            Ok(condition @ (inv::ItemCondition::Sellable | inv::ItemCondition::Damaged)) => {
                condition
            }
            _ => {
                v.add(format!("lines[{i}].condition"), "SELLABLE or DAMAGED");
                continue;
            }
        };
        let total = counted.entry(on_return.line_id.as_str()).or_insert(0);
        *total += line.quantity;
        if line.quantity == 0 || *total > on_return.quantity {
            v.add(
                format!("lines[{i}].quantity"),
                format!("1 to {} in all for this line", on_return.quantity),
            );
            continue;
        }
        received.push((on_return, condition, line.quantity));
    }
    v.into_result()?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn the_return() -> pb::Return {
        pb::Return {
            return_id: "r1".into(),
            status: ReturnStatus::Requested.into(),
            lines: vec![pb::ReturnLine {
                line_id: "L1".into(),
                sku: "A".into(),
                quantity: 2,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn receipt(lines: &[(&str, u32, inv::ItemCondition)]) -> pb::ReceiveReturnRequest {
        pb::ReceiveReturnRequest {
            return_id: "r1".into(),
            lines: lines
                .iter()
                .map(|(id, quantity, condition)| pb::ReceivedLine {
                    line_id: (*id).into(),
                    quantity: *quantity,
                    condition: (*condition).into(),
                })
                .collect(),
            idempotency_key: "k".into(),
        }
    }

    #[test]
    fn a_receipt_may_split_a_line_by_condition_but_not_exceed_it() {
        use inv::ItemCondition::*;
        let order_return = the_return();
        let received = received_lines(
            &receipt(&[("L1", 1, Sellable), ("L1", 1, Damaged)]),
            &order_return,
        )
        .unwrap();
        assert_eq!(received.len(), 2);
        assert!(
            received_lines(
                &receipt(&[("L1", 2, Sellable), ("L1", 1, Damaged)]),
                &order_return
            )
            .is_err()
        );
        assert!(received_lines(&receipt(&[("L2", 1, Sellable)]), &order_return).is_err());
        assert!(received_lines(&receipt(&[("L1", 1, Unspecified)]), &order_return).is_err());
    }

    #[test]
    fn delivered_units_on_open_returns_cannot_be_returned_twice() {
        let order = pb::Order {
            lines: vec![pb::OrderLine {
                line_id: "L1".into(),
                quantity: 3,
                delivered_quantity: 3,
                ..Default::default()
            }],
            returns: vec![the_return()],
            ..Default::default()
        };
        assert_eq!(returnable(&order, &order.lines[0]), 1);
    }
}
