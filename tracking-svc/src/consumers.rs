//! What tracking consumes (durable JetStream consumers, each event applied once): order status
//! changes become timeline entries, stream items, in-app alerts and queued pushes; shipment
//! events and courier assignments keep the shipment registry (owner, destination, promised
//! window, courier) positions need.
//! A batch of events is applied with one statement per kind of row (`domain::effects`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use async_trait::async_trait;
use chrono::Utc;
use oms_platform::consumer::{EventHandler, HandlerError};
use oms_proto::events::v1::{Envelope, envelope::Payload};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tokio::sync::Notify;

use crate::{
    domain::{
        TrackingError,
        effects::{self, Happening},
    },
    store::Store,
};

/// Applies order and shipment events.
pub struct TrackingEvents {
    /// Where it all goes.
    pub store: Store,
    /// Told when the delivery history got new rows or centers (to fill in their conditions).
    pub history_written: Arc<Notify>,
}

/// What an event tells tracking (nothing, for events of other kinds).
fn happening(event: &Envelope) -> Result<Option<Happening>, HandlerError> {
    match &event.payload {
        Some(Payload::OrderStatusChanged(changed)) => {
            let Some(order) = &changed.order else {
                return Err(HandlerError::Reject(
                    "status change without the order".into(),
                ));
            };
            Ok(Some(Happening::Status {
                event_id: event.event_id.clone(),
                at: event.occurred_at,
                user_id: order.user_id.clone(),
                order_id: order.order_id.clone(),
                order_version: order.version,
                status: order.status(),
                note: changed.note.clone(),
            }))
        }
        Some(Payload::ShipmentStatusChanged(changed)) => {
            let Some(shipment) = &changed.shipment else {
                return Err(HandlerError::Reject(
                    "shipment event without the shipment".into(),
                ));
            };
            Ok(Some(Happening::Shipment {
                event_id: event.event_id.clone(),
                at: event.occurred_at,
                shipment: Box::new(shipment.clone()),
            }))
        }
        Some(Payload::CenterUpserted(upserted)) => Ok(upserted
            .center
            .clone()
            .map(|center| Happening::Center(Box::new(center)))),
        Some(Payload::CourierAssigned(assigned)) => {
            let Some(shipment) = &assigned.shipment else {
                return Err(HandlerError::Reject(
                    "courier assignment without the shipment".into(),
                ));
            };
            Ok(Some(Happening::Courier {
                event_id: event.event_id.clone(),
                at: event.occurred_at,
                shipment: Box::new(shipment.clone()),
            }))
        }
        _ => Ok(None),
    }
}

#[async_trait]
impl EventHandler for TrackingEvents {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        self.handle_batch(txn, &[event]).await
    }

    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<(), HandlerError> {
        let mut happenings = Vec::with_capacity(events.len());
        for event in events {
            happenings.extend(happening(event)?);
        }
        let history = record(&self.store, txn, effects::with_alerts(happenings))
            .await
            .map_err(|error| HandlerError::Retry(error.to_string()))?;
        if history {
            // The enrichment waits a moment before it looks, so this transaction commits first.
            self.history_written.notify_one();
        }
        Ok(())
    }
}

/// Writes what `happenings` (alerts included) come to: the alerted users' preferences and
/// devices are read once for all of them. Returns whether the delivery history changed (a
/// dispatch, a delivery or a center recorded).
pub async fn record<C: ConnectionTrait>(
    store: &Store,
    conn: &C,
    happenings: Vec<Happening>,
) -> Result<bool, TrackingError> {
    if happenings.is_empty() {
        return Ok(false);
    }
    let alerted = effects::alerted_users(&happenings);
    let preferences: BTreeMap<_, _> = store.preferences_of(conn, &alerted).await?;
    let candidates = effects::push_candidates(&happenings, &preferences);
    let with_device: BTreeSet<String> = store.users_with_devices(conn, &candidates).await?;
    let effects = effects::effects(&happenings, &preferences, &with_device, Utc::now());
    store.write_effects(conn, &effects).await?;
    Ok(!effects.dispatches.is_empty() || !effects.centers.is_empty())
}
