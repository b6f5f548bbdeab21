//! The transactional outbox: what producers write.
//!
//! A producer writes its state change and [`enqueue`]s the event in the same database
//! transaction, then calls [`Outbox::wake`]. So an event exists if and only if its change
//! committed. Rows are never changed afterwards: the relay ([`crate::relay`]) publishes them in
//! id order and keeps its place with its lease (`relay_lease`), and rows past the retention
//! window are deleted once published. Nothing is lost while the bus is down: rows wait.
//!
//! After a bus loss, [`Outbox::republish_since`] moves the relay's place back so it sends the
//! window again (the bus de-duplicates by event id, consumers by their processed-event log).

use std::sync::Arc;

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
use tokio::sync::{Mutex, Notify};

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
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `relay_lease` table: which relay instance may publish, and how far publication got.
pub mod lease {
    use sea_orm::entity::prelude::*;

    /// One outbox's relay.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "relay_lease")]
    pub struct Model {
        /// The outbox (the service's name).
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The relay instance that may publish.
        pub holder: String,
        /// Until when, unless renewed.
        pub expires_at: DateTimeUtc,
        /// Every row up to this id is published, except the `gaps`.
        pub published_up_to: i64,
        /// Ids at or below `published_up_to` that were not there when publication passed them
        /// (their transaction had not committed yet), comma-separated.
        pub gaps: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes `envelope` into the outbox on `conn` — call it inside the transaction that makes
/// the change the event describes.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, envelope: &Envelope) -> Result<(), DbErr> {
    enqueue_all(conn, std::slice::from_ref(envelope)).await
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

/// Moves the relay of outbox `name` back so that it publishes every event written at or after
/// `since` again (after a bus loss). Returns how many events wait for publication now. Use it
/// before the relay runs (at start); a running relay is asked through
/// [`Outbox::republish_since`].
pub async fn republish_since<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let first = entity::Entity::find()
        .select_only()
        .column(entity::Column::Id)
        .filter(entity::Column::CreatedAt.gte(since))
        .order_by_asc(entity::Column::Id)
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    if let Some(first) = first {
        lease::Entity::update_many()
            .col_expr(lease::Column::PublishedUpTo, Expr::value(first - 1))
            .col_expr(lease::Column::Gaps, Expr::value(String::new()))
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::PublishedUpTo.gte(first))
            .exec(conn)
            .await?;
    }
    pending_count(conn, name).await
}

/// How many events of outbox `name` wait for publication, as far as the relay has recorded
/// its progress (it records it about once a second).
pub async fn pending_count<C: ConnectionTrait>(conn: &C, name: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    let (up_to, gaps) = lease::Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map_or((0, Vec::new()), |row| {
            (row.published_up_to, parse_gaps(&row.gaps))
        });
    entity::Entity::find()
        .filter(
            entity::Column::Id
                .gt(up_to)
                .or(entity::Column::Id.is_in(gaps)),
        )
        .count(conn)
        .await
}

/// The ids of a `gaps` column.
pub(crate) fn parse_gaps(text: &str) -> Vec<i64> {
    text.split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// A handle producers use to wake the relay right after they commit.
#[derive(Clone, Default)]
pub struct Outbox {
    pub(crate) wake: Arc<Notify>,
    /// Re-publish requests for the running relay: where to restart, taken when it next looks.
    pub(crate) republish_from: Arc<Mutex<Option<i64>>>,
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

    /// Has the running relay send every event written at or after `since` again (after a bus
    /// loss). Returns how many events are in that window.
    pub async fn republish_since<C: ConnectionTrait>(
        &self,
        conn: &C,
        since: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        let window = entity::Entity::find().filter(entity::Column::CreatedAt.gte(since));
        let first = window
            .clone()
            .select_only()
            .column(entity::Column::Id)
            .order_by_asc(entity::Column::Id)
            .into_tuple::<i64>()
            .one(conn)
            .await?;
        let count = window.count(conn).await?;
        if let Some(first) = first {
            let mut request = self.republish_from.lock().await;
            *request = Some(request.map_or(first, |earlier| std::cmp::min(earlier, first)));
        }
        self.wake();
        Ok(count)
    }
}
