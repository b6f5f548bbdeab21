//! What tracking consumes (durable JetStream consumers, each event applied once): order status
//! changes become timeline entries, stream items, in-app alerts and queued pushes; shipment
//! events keep the shipment registry (owner, destination, promised window) positions need.

use async_trait::async_trait;
use chrono::Utc;
use oms_platform::consumer::{EventHandler, HandlerError};
use oms_proto::{
    events::v1::{Envelope, envelope::Payload},
    order::v1::{OrderStatus, TimelineEntry},
    tracking::v1::{Alert, LiveUpdate, OrderStatusUpdate, live_update::Kind},
};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::{TrackingError, notify},
    store::{Store, entities::notification},
};

/// Applies order and shipment events.
pub struct TrackingEvents {
    /// Where it all goes.
    pub store: Store,
}

fn retry(error: TrackingError) -> HandlerError {
    HandlerError::Retry(error.to_string())
}

#[async_trait]
impl EventHandler for TrackingEvents {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        match &event.payload {
            Some(Payload::OrderStatusChanged(changed)) => {
                let Some(order) = &changed.order else {
                    return Err(HandlerError::Reject(
                        "status change without the order".into(),
                    ));
                };
                let status = order.status();
                let update = LiveUpdate {
                    cursor: String::new(),
                    at: event.occurred_at,
                    kind: Some(Kind::OrderStatus(OrderStatusUpdate {
                        order_id: order.order_id.clone(),
                        status: status.into(),
                        order_version: order.version,
                        note: changed.note.clone(),
                        shipment_id: String::new(),
                    })),
                };
                let entry = TimelineEntry {
                    status: status.into(),
                    at: event.occurred_at,
                    note: changed.note.clone(),
                };
                self.store
                    .add_timeline(
                        txn,
                        &event.event_id,
                        &order.order_id,
                        &order.user_id,
                        &entry,
                    )
                    .await
                    .map_err(retry)?;
                self.store
                    .append_feed(txn, &order.user_id, &update)
                    .await
                    .map_err(retry)?;
                tell(
                    &self.store,
                    txn,
                    &event.event_id,
                    &order.user_id,
                    &order.order_id,
                    status,
                )
                .await
                .map_err(retry)
            }
            Some(Payload::ShipmentStatusChanged(changed)) => {
                let Some(shipment) = &changed.shipment else {
                    return Err(HandlerError::Reject(
                        "shipment event without the shipment".into(),
                    ));
                };
                self.store
                    .upsert_shipment(txn, shipment)
                    .await
                    .map_err(retry)?;
                let note = format!(
                    "shipment {} {}",
                    shipment.shipment_id,
                    shipment
                        .status()
                        .as_str_name()
                        .trim_start_matches("SHIPMENT_STATUS_")
                        .replace('_', " ")
                        .to_lowercase()
                );
                let entry = TimelineEntry {
                    status: OrderStatus::Unspecified.into(),
                    at: event.occurred_at,
                    note,
                };
                self.store
                    .add_timeline(
                        txn,
                        &event.event_id,
                        &shipment.order_id,
                        &shipment.user_id,
                        &entry,
                    )
                    .await
                    .map_err(retry)
            }
            _ => Ok(()),
        }
    }
}

/// The in-app alert and the push for a status, as the user's preferences allow.
pub async fn tell(
    store: &Store,
    txn: &DatabaseTransaction,
    event_id: &str,
    user_id: &str,
    order_id: &str,
    status: OrderStatus,
) -> Result<(), TrackingError> {
    let Some((title, body)) = notify::message_for(status, order_id) else {
        return Ok(());
    };
    alert(
        store,
        txn,
        event_id,
        user_id,
        order_id,
        &title,
        &body,
        Some(status),
    )
    .await
}

/// Stores an in-app alert on the user's stream and queues a push, per preferences.
#[allow(clippy::too_many_arguments)]
pub async fn alert(
    store: &Store,
    txn: &DatabaseTransaction,
    event_id: &str,
    user_id: &str,
    order_id: &str,
    title: &str,
    body: &str,
    status: Option<OrderStatus>,
) -> Result<(), TrackingError> {
    let preferences = store.preferences(txn, user_id).await?;
    if preferences.in_app_enabled {
        let update = LiveUpdate {
            cursor: String::new(),
            at: Some(oms_platform::events::now()),
            kind: Some(Kind::Alert(Alert {
                alert_id: format!("alert-{event_id}"),
                title: title.to_owned(),
                body: body.to_owned(),
                order_id: order_id.to_owned(),
            })),
        };
        store.append_feed(txn, user_id, &update).await?;
    }
    let wanted = status.map_or(preferences.push_enabled, |status| {
        notify::wants_push(&preferences, status)
    });
    if wanted && !store.devices(txn, user_id).await?.is_empty() {
        let now = Utc::now();
        let row = notification::Model {
            notification_id: format!("push-{event_id}"),
            user_id: user_id.to_owned(),
            order_id: order_id.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            attempts: 0,
            next_attempt_at: notify::push_time(&preferences, now),
            delivered_at: None,
            last_error: String::new(),
            created_at: now,
        };
        store.add_notification(txn, row).await?;
    }
    Ok(())
}
