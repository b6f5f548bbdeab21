//! The transactional outbox and its relay.
//!
//! A producer writes its state change and [`enqueue`]s the event in the same database
//! transaction, then calls [`Outbox::wake`]. The [`Relay`] publishes unpublished rows in id
//! order and marks them published. So an event exists if and only if its change committed,
//! and nothing is lost while the bus is down: rows wait and the relay retries with back-off.
//!
//! Published rows are kept for a retention window: after a bus loss, [`republish_since`]
//! marks them unpublished again and the relay sends them once more (the bus de-duplicates by
//! event id, consumers by their processed-event log). One relay per database publishes at a
//! time, elected through a lease row, so several replicas of a service keep the order.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use oms_proto::events::v1::Envelope;
use prost::Message as _;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{
        Alias, CommonTableExpression, Expr, ExprTrait, Query, SelectStatement, UnionType,
        UpdateStatement, WithClause,
    },
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::{BusError, EventBus};

/// The `outbox` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One event waiting for (or kept after) publication.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// Publication order.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The envelope's event id (`Nats-Msg-Id`).
        #[sea_orm(unique)]
        pub event_id: String,
        /// Logical subject, for operators.
        pub subject: String,
        /// The encoded `oms.events.v1.Envelope`.
        pub payload: Vec<u8>,
        /// When the producing transaction wrote it.
        pub created_at: DateTimeUtc,
        /// When the bus acknowledged it; `None` while pending.
        pub published_at: Option<DateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `relay_lease` table: which relay instance may publish.
mod lease {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "relay_lease")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub holder: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes `envelope` into the outbox on `conn` — call it inside the transaction that makes
/// the change the event describes.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, envelope: &Envelope) -> Result<(), DbErr> {
    let row = entity::ActiveModel {
        event_id: Set(envelope.event_id.clone()),
        subject: Set(envelope.subject.clone()),
        payload: Set(envelope.encode_to_vec()),
        created_at: Set(Utc::now()),
        published_at: Set(None),
        ..Default::default()
    };
    entity::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes several events into the outbox in one statement, in order.
pub async fn enqueue_all<C: ConnectionTrait>(
    conn: &C,
    envelopes: &[Envelope],
) -> Result<(), DbErr> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = envelopes.iter().map(|envelope| entity::ActiveModel {
        event_id: Set(envelope.event_id.clone()),
        subject: Set(envelope.subject.clone()),
        payload: Set(envelope.encode_to_vec()),
        created_at: Set(now),
        published_at: Set(None),
        ..Default::default()
    });
    entity::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Runs `write` — an UPDATE that changes at most one row — and, only if it changed it, puts
/// `events` into the outbox, atomically. On PostgreSQL that is one statement (the update in a
/// data-modifying CTE, the outbox rows selected from its result): one round trip and one
/// commit instead of four statements. Elsewhere it is one transaction. Returns whether the row
/// was changed (false: the update's guard did not hold, and nothing was written).
pub async fn update_with_events(
    db: &DatabaseConnection,
    write: UpdateStatement,
    events: &[Envelope],
) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let txn = db.begin().await?;
        let changed = txn.execute(&write).await?.rows_affected() == 1;
        if changed {
            enqueue_all(&txn, events).await?;
            txn.commit().await?;
        } else {
            txn.rollback().await?;
        }
        return Ok(changed);
    }
    let mut write = write;
    write.returning(Query::returning().expr(Expr::val(1)));
    let written = Alias::new("written");
    let now = Utc::now();
    let mut rows: Option<SelectStatement> = None;
    for envelope in events {
        let row = Query::select()
            .exprs([
                Expr::val(envelope.event_id.clone()),
                Expr::val(envelope.subject.clone()),
                Expr::val(envelope.encode_to_vec()),
                Expr::val(now),
            ])
            .from(written.clone())
            .to_owned();
        rows = Some(match rows {
            None => row,
            Some(mut union) => {
                union.union(UnionType::All, row);
                union
            }
        });
    }
    let Some(rows) = rows else {
        return Ok(db.execute(&write).await?.rows_affected() == 1);
    };
    let insert = Query::insert()
        .into_table(entity::Entity)
        .columns([
            entity::Column::EventId,
            entity::Column::Subject,
            entity::Column::Payload,
            entity::Column::CreatedAt,
        ])
        .select_from(rows)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    let cte = CommonTableExpression::new()
        .query(write)
        .table_name(written)
        .to_owned();
    let statement = insert.with(WithClause::new().cte(cte).to_owned());
    let inserted = db.execute(&statement).await?.rows_affected();
    Ok(inserted == events.len() as u64)
}

/// Marks every event published at or after `since` as unpublished, so the relay sends it
/// again (after a bus loss). Returns how many rows will be re-sent.
pub async fn republish_since<C: ConnectionTrait>(
    conn: &C,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = entity::Entity::update_many()
        .col_expr(
            entity::Column::PublishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(entity::Column::PublishedAt.gte(since))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// How many events wait for publication.
pub async fn pending_count<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    entity::Entity::find()
        .filter(entity::Column::PublishedAt.is_null())
        .count(conn)
        .await
}

/// A handle producers use to wake the relay right after they commit.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    /// A fresh handle; give clones to producers and one to the relay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the relay there is something to publish (cheap; call after each commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Which database's outbox (the lease is per name).
    pub name: String,
    /// Rows published per round trip.
    pub batch_size: u64,
    /// Look for rows this often even without a wake-up (other replicas' rows).
    pub poll_interval: Duration,
    /// Published rows are deleted after this long.
    pub retention: Duration,
    /// A relay that stops renewing loses the lease after this long.
    pub lease_ttl: Duration,
    /// How long the final flush at shutdown may take.
    pub flush_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for the outbox of service `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            retention: Duration::from_secs(24 * 3600),
            lease_ttl: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a relay round failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("outbox database: {0}")]
    Db(#[from] DbErr),
    /// The bus refused or is away.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Publishes the outbox; one per service process.
pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    outbox: Outbox,
    config: RelayConfig,
    holder: String,
    lease_until: Option<DateTime<Utc>>,
}

impl Relay {
    /// A relay for `db`'s outbox, woken through `outbox`.
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: RelayConfig,
    ) -> Self {
        Self {
            db,
            bus,
            outbox,
            config,
            holder: uuid::Uuid::new_v4().to_string(),
            lease_until: None,
        }
    }

    /// Publishes until `shutdown`, then flushes what is left (bounded by `flush_timeout`).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut last_prune = tokio::time::Instant::now();
        let mut failing = false;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.publish_pending().await {
                Ok(published) => {
                    if failing {
                        tracing::info!(outbox = %self.config.name, "event bus reachable again; outbox draining");
                        failing = false;
                    }
                    backoff = Duration::from_millis(50);
                    if published as u64 >= self.config.batch_size {
                        continue;
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(outbox = %self.config.name, %error, "outbox relay cannot publish; retrying");
                        failing = true;
                    }
                    if matches!(error, RelayError::Bus(_)) {
                        // After a bus loss the streams themselves may be gone.
                        let _ = self.bus.ensure_streams().await;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::warn!(outbox = %self.config.name, %error, "outbox prune failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.outbox.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        let deadline = tokio::time::Instant::now() + self.config.flush_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.publish_pending()).await {
                Ok(Ok(published)) if (published as u64) < self.config.batch_size => return,
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => {
                    tracing::warn!(outbox = %self.config.name, %error, "outbox not flushed at shutdown; the next start publishes it");
                    return;
                }
                Err(_) => {
                    tracing::warn!(outbox = %self.config.name, "outbox flush timed out; the next start publishes the rest");
                    return;
                }
            }
        }
    }

    /// Publishes one batch of pending rows; returns how many were published.
    pub async fn publish_pending(&mut self) -> Result<usize, RelayError> {
        if !self.hold_lease().await? {
            return Ok(0);
        }
        let rows = entity::Entity::find()
            .filter(entity::Column::PublishedAt.is_null())
            .order_by_asc(entity::Column::Id)
            .limit(self.config.batch_size)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut envelopes = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            match Envelope::decode(row.payload.as_slice()) {
                Ok(envelope) => {
                    envelopes.push(envelope);
                    ids.push(row.id);
                }
                Err(error) => {
                    // Written by this code, so this is a bug; keep the row for operators and
                    // stop here rather than publish past it out of order.
                    tracing::error!(outbox = %self.config.name, id = row.id, %error, "undecodable outbox row");
                    break;
                }
            }
        }
        let results = self.bus.publish_batch(&envelopes).await;
        let published: Vec<i64> = results
            .iter()
            .zip(&ids)
            .take_while(|(result, _)| result.is_ok())
            .map(|(_, id)| *id)
            .collect();
        if !published.is_empty() {
            entity::Entity::update_many()
                .col_expr(entity::Column::PublishedAt, Expr::value(Some(Utc::now())))
                .filter(entity::Column::Id.is_in(published.clone()))
                .exec(&self.db)
                .await?;
            metrics::counter!("oms_outbox_published_total", "outbox" => self.config.name.clone())
                .increment(published.len() as u64);
        }
        match results.into_iter().find_map(Result::err) {
            Some(error) => Err(error.into()),
            None => Ok(published.len()),
        }
    }

    /// Takes or renews the lease; false while another relay holds it.
    async fn hold_lease(&mut self) -> Result<bool, DbErr> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.config.lease_ttl)
            .unwrap_or_else(|_| chrono::Duration::seconds(10));
        if let Some(until) = self.lease_until
            && until - now > ttl / 2
        {
            return Ok(true);
        }
        let expires_at = now + ttl;
        let renewed = lease::Entity::update_many()
            .col_expr(lease::Column::Holder, Expr::value(self.holder.clone()))
            .col_expr(lease::Column::ExpiresAt, Expr::value(expires_at))
            .filter(lease::Column::Name.eq(self.config.name.clone()))
            .filter(
                lease::Column::Holder
                    .eq(self.holder.clone())
                    .or(lease::Column::ExpiresAt.lt(now)),
            )
            .exec(&self.db)
            .await?;
        let held = if renewed.rows_affected == 1 {
            true
        } else {
            let row = lease::ActiveModel {
                name: Set(self.config.name.clone()),
                holder: Set(self.holder.clone()),
                expires_at: Set(expires_at),
            };
            match lease::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => true,
                Err(error) if crate::db::is_unique_violation(&error) => false,
                Err(error) => return Err(error),
            }
        };
        self.lease_until = held.then_some(expires_at);
        Ok(held)
    }

    async fn prune(&self) -> Result<u64, DbErr> {
        let retention = chrono::Duration::from_std(self.config.retention)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let result = entity::Entity::delete_many()
            .filter(entity::Column::PublishedAt.lt(Utc::now() - retention))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}
