//! What order-svc publishes (through its outbox), all on the buyer's stream:
//! `oms.order.<order_id>.status_changed` (fulfillment dispatches from it, tracking shows it),
//! `oms.order.<order_id>.return_status_changed` and `oms.order.<order_id>.refund_issued`.

use oms_platform::{
    bus::{Area, BusError},
    events::envelope,
};
use oms_proto::{
    common::v1::Money,
    events::v1::{
        Envelope, OrderStatusChanged, RefundIssued, ReturnStatusChanged, envelope::Payload,
    },
    order::v1::{Order, OrderStatus, Return},
};

/// The order moved from `previous` to its current status.
pub fn status_changed(
    order: &Order,
    previous: OrderStatus,
    note: &str,
) -> Result<Envelope, BusError> {
    envelope(
        Area::Order,
        &order.order_id,
        "status_changed",
        &order.user_id,
        Payload::OrderStatusChanged(OrderStatusChanged {
            order: Some(order.clone()),
            previous_status: previous.into(),
            note: note.to_owned(),
        }),
    )
}

/// A return moved on.
pub fn return_changed(order: &Order, order_return: &Return) -> Result<Envelope, BusError> {
    envelope(
        Area::Order,
        &order.order_id,
        "return_status_changed",
        &order.user_id,
        Payload::ReturnStatusChanged(ReturnStatusChanged {
            order_id: order.order_id.clone(),
            order_return: Some(order_return.clone()),
        }),
    )
}

/// Money went back to the buyer.
pub fn refund_issued(
    order: &Order,
    return_id: &str,
    amount: Money,
    reason: &str,
) -> Result<Envelope, BusError> {
    envelope(
        Area::Order,
        &order.order_id,
        "refund_issued",
        &order.user_id,
        Payload::RefundIssued(RefundIssued {
            order_id: order.order_id.clone(),
            return_id: return_id.to_owned(),
            amount: Some(amount),
            reason: reason.to_owned(),
        }),
    )
}
