//! What tracking consumes (durable JetStream consumers, each event applied once): order status
//! changes become timeline entries, stream items, in-app alerts and queued pushes; shipment
//! events and courier assignments keep the shipment registry (owner, destination, promised
//! window, courier) positions need.
//! A batch of events is applied with one statement per kind of row (`domain::effects`).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use oms_platform::consumer::{EventHandler, HandlerError};
use oms_proto::{
    events::v1::{Envelope, envelope::Payload},
    tracking::v1::LiveUpdate,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tokio::sync::Notify;

use crate::{
    domain::{
        TrackingError,
        effects::{self, Happening},
    },
    live::FeedHandoff,
    store::Store,
};

/// Applies order and shipment events.
pub struct TrackingEvents {
    /// Where it all goes.
    store: Store,
    /// Told when the delivery history got new rows or centers (to fill in their conditions).
    history_written: Arc<Notify>,
    /// The feed tail, given the stream items of each committed batch.
    feed: FeedHandoff,
    /// What the batch in progress wrote, handed on once it commits.
    in_progress: Mutex<Recorded>,
}

impl TrackingEvents {
    /// A handler writing through `store`.
    pub fn new(store: Store, history_written: Arc<Notify>, feed: FeedHandoff) -> Self {
        Self {
            store,
            history_written,
            feed,
            in_progress: Mutex::default(),
        }
    }

    fn in_progress(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.in_progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a batch of happenings wrote that others in this process wait for.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The delivery history changed (a dispatch, a delivery or a center recorded).
    pub history: bool,
    /// Stream items, with their cursors.
    pub feed: Vec<(String, LiveUpdate)>,
}

impl Recorded {
    /// Tells the waiting: the feed tail gets the items, the enrichment a wake-up. Call it after
    /// the transaction that wrote them committed.
    pub fn hand_on(self, feed: &FeedHandoff, history_written: &Notify) {
        if self.history {
            history_written.notify_one();
        }
        if !self.feed.is_empty() {
            // The tail is gone only at shutdown; its replacement reads the feed table.
            let _ = feed.send(self.feed);
        }
    }
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
        // Whatever an earlier batch left here rolled back.
        *self.in_progress() = Recorded::default();
        let mut happenings = Vec::with_capacity(events.len());
        for event in events {
            happenings.extend(happening(event)?);
        }
        let recorded = record(&self.store, txn, effects::with_alerts(happenings))
            .await
            .map_err(|error| HandlerError::Retry(error.to_string()))?;
        *self.in_progress() = recorded;
        Ok(())
    }

    fn committed(&self) {
        std::mem::take(&mut *self.in_progress()).hand_on(&self.feed, &self.history_written);
    }
}

/// Writes what `happenings` (alerts included) come to: the alerted users' preferences and
/// devices are read once for all of them. Returns what to hand on once `conn` commits.
pub async fn record<C: ConnectionTrait>(
    store: &Store,
    conn: &C,
    happenings: Vec<Happening>,
) -> Result<Recorded, TrackingError> {
    if happenings.is_empty() {
        return Ok(Recorded::default());
    }
    let alerted = effects::alerted_users(&happenings);
    let settings = store.alert_settings(conn, &alerted).await?;
    let effects = effects::effects(
        &happenings,
        &settings.preferences,
        &settings.with_device,
        Utc::now(),
    );
    let feed = store.write_effects(conn, &effects).await?;
    Ok(Recorded {
        history: !effects.dispatches.is_empty() || !effects.centers.is_empty(),
        feed,
    })
}
