//! Idempotent consumers: each event is applied once, whatever the bus redelivers.
//!
//! [`IdempotentConsumer`] reads a durable consumer in batches: whatever deliveries are ready
//! (up to [`MAX_BATCH`]) are applied in one database transaction that records every
//! `(consumer, event_id)` in `processed_events` in one statement (a repeat finds its row and
//! is acknowledged without effect), lets the [`EventHandler`] apply the new events in the same
//! transaction, commits and only then acknowledges them. A crash anywhere in between leaves
//! either nothing (the bus redelivers) or everything (the redelivery is skipped). Under load a
//! batch costs a handful of statements for many events; one quiet event is a batch of one.
//! When a batch fails, its events are applied one at a time, so one event that must wait or
//! be rejected holds up nobody else.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use futures::{StreamExt, stream::BoxStream};
use oms_proto::events::v1::Envelope;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    TransactionTrait, TryInsertResult, sea_query::OnConflict,
};
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{ConsumerSpec, Delivery, EventBus},
    outbox::Outbox,
};

/// The `processed_events` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// An event a consumer has applied (or rejected for good).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "processed_events")]
    pub struct Model {
        /// The consumer's durable name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        /// The event.
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        /// `applied`, or `rejected: <reason>`.
        pub outcome: String,
        /// When.
        pub processed_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (a dependency is down, a conflict).
    #[error("retry: {0}")]
    Retry(String),
    /// Will never apply (malformed, refers to nothing); recorded and skipped.
    #[error("rejected: {0}")]
    Reject(String),
}

impl From<DbErr> for HandlerError {
    fn from(error: DbErr) -> Self {
        HandlerError::Retry(format!("database: {error}"))
    }
}

/// Applies events of one kind. Everything it writes goes through `txn`, which also records
/// the events as processed, so the effect and the record commit together.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies one event.
    async fn handle(&self, txn: &DatabaseTransaction, event: &Envelope)
    -> Result<(), HandlerError>;

    /// Called once the transaction the last `handle` / `handle_batch` wrote in has committed,
    /// before the next one starts (a handler hands what it wrote to readers in this process
    /// here; a transaction that rolled back is followed by the next `handle*`, never by this).
    fn committed(&self) {}

    /// Applies several events, in order, in one transaction. Handlers on the hot path
    /// override it to write a batch in a few statements; the default applies them one by one.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<(), HandlerError> {
        for event in events {
            self.handle(txn, event).await?;
        }
        Ok(())
    }
}

/// Deliveries applied in one transaction at most.
pub const MAX_BATCH: usize = 256;

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied now.
    Applied,
    /// Applied before; skipped.
    Duplicate,
    /// Rejected for good; recorded and skipped.
    Rejected(String),
}

/// A delivery and the durable consumer it came through.
struct Tagged {
    consumer: Arc<str>,
    delivery: Delivery,
}

/// Drives durable consumers through an [`EventHandler`], exactly once per event. Several
/// consumers (of different streams, say) can feed one handler: their deliveries are applied
/// in the same batches.
pub struct IdempotentConsumer<H> {
    /// The consumers' names, for logs and metrics.
    name: String,
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    specs: Vec<ConsumerSpec>,
    handler: Arc<H>,
    outbox: Option<Outbox>,
    committed: Option<Arc<tokio::sync::Notify>>,
}

fn durable_name(spec: &ConsumerSpec) -> String {
    spec.durable.clone().unwrap_or_else(|| "ephemeral".into())
}

impl<H: EventHandler> IdempotentConsumer<H> {
    /// A consumer reading `spec` (its durable name identifies it in `processed_events`).
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn EventBus>,
        spec: ConsumerSpec,
        handler: Arc<H>,
    ) -> Self {
        Self {
            name: durable_name(&spec),
            db,
            bus,
            specs: vec![spec],
            handler,
            outbox: None,
            committed: None,
        }
    }

    /// Also reads `spec`, into the same batches (one transaction for both streams' events).
    pub fn also(mut self, spec: ConsumerSpec) -> Self {
        self.name = format!("{}+{}", self.name, durable_name(&spec));
        self.specs.push(spec);
        self
    }

    /// Wakes this outbox's relay after each commit (for handlers that enqueue events).
    pub fn waking(mut self, outbox: Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Also signals `committed` after each commit (for readers of what the handler wrote).
    pub fn notifying(mut self, committed: Arc<tokio::sync::Notify>) -> Self {
        self.committed = Some(committed);
        self
    }

    /// Subscribes every consumer; their deliveries, tagged, in one stream.
    async fn subscribe(
        &self,
    ) -> Result<BoxStream<'static, Result<Tagged, crate::bus::BusError>>, crate::bus::BusError>
    {
        let mut streams = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            let consumer: Arc<str> = durable_name(spec).into();
            let deliveries = self.bus.consume(spec.clone()).await?;
            streams.push(
                deliveries
                    .map(move |item| {
                        item.map(|delivery| Tagged {
                            consumer: consumer.clone(),
                            delivery,
                        })
                    })
                    .boxed(),
            );
        }
        Ok(futures::stream::select_all(streams).boxed())
    }

    /// Consumes until `shutdown`, re-subscribing with back-off whenever the bus drops.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let deliveries = match self.subscribe().await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(consumer = %self.name, %error, "cannot subscribe; retrying");
                    // After a bus loss the stream itself may be gone.
                    let _ = self.bus.ensure_streams().await;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut delivered = false;
            // Whatever is ready, up to a batch: one at a time when quiet, many under load.
            let mut batches = deliveries.ready_chunks(MAX_BATCH);
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = batches.next() => next,
                };
                let Some(items) = next else { break };
                let mut ready = Vec::with_capacity(items.len());
                let mut failure = None;
                for item in items {
                    match item {
                        Ok(tagged) => ready.push(tagged),
                        Err(error) => {
                            failure = Some(error);
                            break;
                        }
                    }
                }
                if !ready.is_empty() {
                    if !delivered {
                        delivered = true;
                        backoff = Duration::from_millis(100);
                    }
                    self.process_batch(ready).await;
                }
                if let Some(error) = failure {
                    // Re-subscribing recreates a consumer the bus lost and costs little
                    // otherwise: unacknowledged deliveries simply come again.
                    tracing::warn!(consumer = %self.name, %error, "consumer stream error; re-subscribing");
                    break;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Applies and settles deliveries: together in one transaction, or — when that fails —
    /// one at a time.
    async fn process_batch(&self, mut deliveries: Vec<Tagged>) {
        if deliveries.len() == 1 {
            if let Some(one) = deliveries.pop() {
                self.process(one).await;
            }
            return;
        }
        let started = std::time::Instant::now();
        let events: Vec<(&str, &Envelope)> = deliveries
            .iter()
            .map(|t| (&*t.consumer, &t.delivery.envelope))
            .collect();
        match self.apply_batch(&events).await {
            Ok(()) => {
                metrics::histogram!("oms_consumer_batch_seconds", "consumer" => self.name.clone())
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("oms_consumer_batch_events", "consumer" => self.name.clone())
                    .record(deliveries.len() as f64);
                for tagged in deliveries {
                    if let Err(error) = tagged.delivery.ack().await {
                        // The bus redelivers; the processed-event log makes that harmless.
                        tracing::warn!(consumer = %tagged.consumer, %error, "could not settle delivery");
                    }
                }
            }
            Err(reason) => {
                tracing::debug!(consumer = %self.name, %reason, events = deliveries.len(), "batch failed; applying its events one at a time");
                for tagged in deliveries {
                    self.process(tagged).await;
                }
            }
        }
    }

    /// Applies the new events among `events` (each with the consumer it came through) in one
    /// transaction; `Err` means nothing was applied (apply them one at a time to find the one
    /// that fails).
    async fn apply_batch(&self, events: &[(&str, &Envelope)]) -> Result<(), String> {
        let txn = self.db.begin().await.map_err(|e| e.to_string())?;
        let fresh = record_all(&txn, events).await.map_err(|e| e.to_string())?;
        let mut seen = BTreeSet::new();
        let new: Vec<&Envelope> = events
            .iter()
            .filter(|(consumer, event)| {
                fresh.contains(&((*consumer).to_owned(), event.event_id.clone()))
                    && seen.insert((*consumer, event.event_id.as_str()))
            })
            .map(|(_, event)| *event)
            .collect();
        if new.is_empty() {
            txn.rollback().await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        if let Err(error) = self.handler.handle_batch(&txn, &new).await {
            txn.rollback().await.map_err(|e| e.to_string())?;
            return Err(error.to_string());
        }
        txn.commit().await.map_err(|e| e.to_string())?;
        self.committed();
        Ok(())
    }

    fn committed(&self) {
        self.handler.committed();
        if let Some(outbox) = &self.outbox {
            outbox.wake();
        }
        if let Some(committed) = &self.committed {
            committed.notify_one();
        }
    }

    /// Applies and settles one delivery.
    async fn process(&self, tagged: Tagged) {
        let Tagged { consumer, delivery } = tagged;
        let attempt = delivery.delivery_count;
        let settled = match self.apply(&consumer, &delivery.envelope).await {
            Ok(Outcome::Rejected(reason)) => {
                tracing::error!(%consumer, event_id = %delivery.envelope.event_id, subject = %delivery.envelope.subject, %reason, "event rejected");
                delivery.ack().await
            }
            Ok(_) => delivery.ack().await,
            Err(reason) => {
                let delay = retry_delay(attempt);
                tracing::warn!(%consumer, event_id = %delivery.envelope.event_id, %reason, attempt, ?delay, "event will be retried");
                delivery.nak(delay).await
            }
        };
        if let Err(error) = settled {
            // The bus redelivers; the processed-event log makes that harmless.
            tracing::warn!(%consumer, %error, "could not settle delivery");
        }
    }

    /// Applies one event that came through `consumer` exactly once; `Err` means "retry later".
    async fn apply(&self, consumer: &str, event: &Envelope) -> Result<Outcome, String> {
        let txn = self.db.begin().await.map_err(|e| e.to_string())?;
        if !record(&txn, consumer, &event.event_id, "applied")
            .await
            .map_err(|e| e.to_string())?
        {
            txn.rollback().await.map_err(|e| e.to_string())?;
            return Ok(Outcome::Duplicate);
        }
        match self.handler.handle(&txn, event).await {
            Ok(()) => {
                txn.commit().await.map_err(|e| e.to_string())?;
                self.committed();
                Ok(Outcome::Applied)
            }
            Err(HandlerError::Retry(reason)) => {
                txn.rollback().await.map_err(|e| e.to_string())?;
                Err(reason)
            }
            Err(HandlerError::Reject(reason)) => {
                // Undo the handler's partial work, then remember the rejection on its own.
                txn.rollback().await.map_err(|e| e.to_string())?;
                let outcome = format!("rejected: {reason}");
                let truncated: String = outcome.chars().take(500).collect();
                record(&self.db, consumer, &event.event_id, &truncated)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Outcome::Rejected(reason))
            }
        }
    }
}

/// Inserts the processed-event row; false when it was already there.
async fn record<C: sea_orm::ConnectionTrait>(
    conn: &C,
    consumer: &str,
    event_id: &str,
    outcome: &str,
) -> Result<bool, DbErr> {
    let row = entity::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id.to_owned()),
        outcome: Set(outcome.to_owned()),
        processed_at: Set(Utc::now()),
    };
    let inserted = entity::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([entity::Column::Consumer, entity::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// Inserts the processed-event rows of a batch in one statement; returns the (consumer,
/// event id) pairs that were new.
async fn record_all(
    txn: &DatabaseTransaction,
    events: &[(&str, &Envelope)],
) -> Result<BTreeSet<(String, String)>, DbErr> {
    let now = Utc::now();
    let rows = events.iter().map(|(consumer, event)| entity::ActiveModel {
        consumer: Set((*consumer).to_owned()),
        event_id: Set(event.event_id.clone()),
        outcome: Set("applied".to_owned()),
        processed_at: Set(now),
    });
    let inserted = entity::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([entity::Column::Consumer, entity::Column::EventId])
        .exec_with_returning_keys(txn)
        .await?;
    Ok(match inserted {
        TryInsertResult::Inserted(keys) => keys.into_iter().collect(),
        TryInsertResult::Empty | TryInsertResult::Conflicted => BTreeSet::new(),
    })
}

/// Back-off for the n-th delivery: 100 ms doubling, at most 30 s.
fn retry_delay(attempt: u64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(9) as u32;
    Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_are_capped() {
        assert_eq!(retry_delay(1), Duration::from_millis(100));
        assert_eq!(retry_delay(2), Duration::from_millis(200));
        assert_eq!(retry_delay(5), Duration::from_millis(1600));
        assert_eq!(retry_delay(50), Duration::from_secs(30));
    }
}
