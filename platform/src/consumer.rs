//! Idempotent consumers: each event is applied once, whatever the bus redelivers.
//!
//! [`IdempotentConsumer`] reads a durable consumer and, for each delivery, opens a database
//! transaction, records `(consumer, event_id)` in `processed_events` (a repeat finds the row
//! and is acknowledged without effect), lets the [`EventHandler`] apply the event in the same
//! transaction, commits and only then acknowledges. A crash anywhere in between leaves either
//! nothing (the bus redelivers) or everything (the redelivery is skipped).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use oms_proto::events::v1::Envelope;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    TransactionTrait, sea_query::OnConflict,
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
/// the event as processed, so the effect and the record commit together.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies one event.
    async fn handle(&self, txn: &DatabaseTransaction, event: &Envelope)
    -> Result<(), HandlerError>;
}

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

/// Drives one durable consumer through an [`EventHandler`], exactly once per event.
pub struct IdempotentConsumer<H> {
    name: String,
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    spec: ConsumerSpec,
    handler: Arc<H>,
    outbox: Option<Outbox>,
    committed: Option<Arc<tokio::sync::Notify>>,
}

impl<H: EventHandler> IdempotentConsumer<H> {
    /// A consumer reading `spec` (its durable name identifies it in `processed_events`).
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn EventBus>,
        spec: ConsumerSpec,
        handler: Arc<H>,
    ) -> Self {
        let name = spec.durable.clone().unwrap_or_else(|| "ephemeral".into());
        Self {
            name,
            db,
            bus,
            spec,
            handler,
            outbox: None,
            committed: None,
        }
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

    /// Consumes until `shutdown`, re-subscribing with back-off whenever the bus drops.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let mut deliveries = match self.bus.consume(self.spec.clone()).await {
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
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = deliveries.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => {
                        if !delivered {
                            delivered = true;
                            backoff = Duration::from_millis(100);
                        }
                        self.process(delivery).await;
                    }
                    Some(Err(error)) => {
                        // Re-subscribing recreates a consumer the bus lost and costs little
                        // otherwise: unacknowledged deliveries simply come again.
                        tracing::warn!(consumer = %self.name, %error, "consumer stream error; re-subscribing");
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Applies and settles one delivery.
    pub async fn process(&self, delivery: Delivery) {
        let attempt = delivery.delivery_count;
        let settled = match self.apply(&delivery.envelope).await {
            Ok(Outcome::Rejected(reason)) => {
                tracing::error!(consumer = %self.name, event_id = %delivery.envelope.event_id, subject = %delivery.envelope.subject, %reason, "event rejected");
                delivery.ack().await
            }
            Ok(_) => delivery.ack().await,
            Err(reason) => {
                let delay = retry_delay(attempt);
                tracing::warn!(consumer = %self.name, event_id = %delivery.envelope.event_id, %reason, attempt, ?delay, "event will be retried");
                delivery.nak(delay).await
            }
        };
        if let Err(error) = settled {
            // The bus redelivers; the processed-event log makes that harmless.
            tracing::warn!(consumer = %self.name, %error, "could not settle delivery");
        }
    }

    /// Applies one event exactly once; `Err` means "retry later".
    pub async fn apply(&self, event: &Envelope) -> Result<Outcome, String> {
        let txn = self.db.begin().await.map_err(|e| e.to_string())?;
        if !record(&txn, &self.name, &event.event_id, "applied")
            .await
            .map_err(|e| e.to_string())?
        {
            txn.rollback().await.map_err(|e| e.to_string())?;
            return Ok(Outcome::Duplicate);
        }
        match self.handler.handle(&txn, event).await {
            Ok(()) => {
                txn.commit().await.map_err(|e| e.to_string())?;
                if let Some(outbox) = &self.outbox {
                    outbox.wake();
                }
                if let Some(committed) = &self.committed {
                    committed.notify_one();
                }
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
                record(&self.db, &self.name, &event.event_id, &truncated)
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
