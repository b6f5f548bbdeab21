//! The change sequencer: gives committed ledger movements their sync sequence, in commit order.
//!
//! Writers never take a global counter (that would serialise every reservation). Instead this
//! single worker — one at a time across replicas, through the counter row's lock — picks up
//! movements that have committed but have no sequence yet and gives the whole batch the next
//! sequence number. A movement that commits late simply lands in a later batch, so a client
//! holding cursor N has seen every change any batch <= N contains: cursors never skip. For each
//! batch it also refreshes the SKU-wide figures (available, version) the app's cache keeps and
//! publishes level changes and low-stock crossings through the outbox.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use chrono::Utc;
use oms_platform::outbox;
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
    sea_query::{CaseStatement, Expr, ExprTrait},
};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{InventoryError, MovementKind, low_stock_crossing},
    events,
    store::{
        Store,
        entities::{counter, level, movement, sku},
        level_to_proto,
    },
};

/// Movements sequenced per batch.
const BATCH: u64 = 500;
const COUNTER: &str = "change_seq";

/// Sequences until `shutdown`, woken by commits that moved stock, at most once per
/// `interval`: a lone change goes at once, the changes that arrive while a pass is recent wait
/// for the next one together (group commit: under a steady trickle of orders the pass — eight
/// statements and a relay read — is shared instead of repeated per order).
pub async fn run(store: Store, interval: Duration, shutdown: CancellationToken) {
    loop {
        let pass = tokio::time::Instant::now();
        match sequence_batch(&store).await {
            Ok(count) if count as u64 >= BATCH => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "change sequencer failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = store.stock_moved.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(pass + interval) => {}
        }
    }
    // Sequence what the last requests committed, so their events are in the outbox at exit.
    if let Err(error) = sequence_batch(&store).await {
        tracing::warn!(%error, "final sequencing failed; the next start does it");
    }
}

/// The figures of one SKU and one of its levels, read in one query.
#[derive(Debug, FromQueryResult)]
struct SkuLevel {
    sku: String,
    available: i64,
    version: i64,
    low_stock_threshold: i32,
    location_id: Option<String>,
    on_hand: Option<i64>,
    reserved: Option<i64>,
    level_version: Option<i64>,
    level_updated_at: Option<chrono::DateTime<Utc>>,
}

/// Sequences one batch; returns how many movements it covered.
pub async fn sequence_batch(store: &Store) -> Result<usize, InventoryError> {
    // Most wake-ups find the work a previous batch already took: look before locking.
    let waiting = movement::Entity::find()
        .select_only()
        .column(movement::Column::Id)
        .filter(movement::Column::ChangeSeq.is_null())
        .limit(1)
        .into_tuple::<i64>()
        .one(&store.db)
        .await?;
    if waiting.is_none() {
        return Ok(0);
    }
    let txn = store.begin().await?;
    // The counter row's lock serialises sequencers until this commit, so sequence numbers
    // become visible in order.
    let seq = counter::Entity::update_many()
        .col_expr(
            counter::Column::Value,
            Expr::col(counter::Column::Value).add(1),
        )
        .filter(counter::Column::Name.eq(COUNTER))
        .exec_with_returning(&txn)
        .await?
        .first()
        .map(|c| c.value)
        .ok_or_else(|| {
            InventoryError::Db(sea_orm::DbErr::Custom(
                "the change_seq counter row is missing".into(),
            ))
        })?;
    let batch = movement::Entity::find()
        .select_only()
        .column(movement::Column::Id)
        .filter(movement::Column::ChangeSeq.is_null())
        .order_by_asc(movement::Column::Id)
        .limit(BATCH)
        .into_query();
    let pending = movement::Entity::update_many()
        .col_expr(movement::Column::ChangeSeq, Expr::value(seq))
        .filter(movement::Column::ChangeSeq.is_null())
        .filter(movement::Column::Id.in_subquery(batch))
        .exec_with_returning(&txn)
        .await?;
    if pending.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }

    // The last cause per level; the SKUs touched with all their levels, in one query.
    let mut causes: BTreeMap<(String, String), (i64, MovementKind)> = BTreeMap::new();
    for m in &pending {
        let kind = MovementKind::parse(&m.kind).unwrap_or(MovementKind::Adjustment);
        let cause = causes
            .entry((m.sku.clone(), m.location_id.clone()))
            .or_insert((m.id, kind));
        if m.id >= cause.0 {
            *cause = (m.id, kind);
        }
    }
    let touched: BTreeSet<String> = causes.keys().map(|(sku, _)| sku.clone()).collect();
    let rows = sku::Entity::find()
        .select_only()
        .columns([
            sku::Column::Sku,
            sku::Column::Available,
            sku::Column::Version,
            sku::Column::LowStockThreshold,
        ])
        .column(level::Column::LocationId)
        .column(level::Column::OnHand)
        .column(level::Column::Reserved)
        .column_as(level::Column::Version, "level_version")
        .column_as(level::Column::UpdatedAt, "level_updated_at")
        .join(
            JoinType::LeftJoin,
            sku::Entity::belongs_to(level::Entity)
                .from(sku::Column::Sku)
                .to(level::Column::Sku)
                .into(),
        )
        .filter(sku::Column::Sku.is_in(touched.iter().cloned()))
        .into_model::<SkuLevel>()
        .all(&txn)
        .await?;
    let mut before: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut levels = Vec::new();
    let mut available: BTreeMap<String, i64> = BTreeMap::new();
    for row in rows {
        before.insert(
            row.sku.clone(),
            (
                row.available,
                row.version,
                i64::from(row.low_stock_threshold),
            ),
        );
        let total = available.entry(row.sku.clone()).or_default();
        if let (Some(location_id), Some(on_hand), Some(reserved)) =
            (row.location_id, row.on_hand, row.reserved)
        {
            *total += on_hand - reserved;
            levels.push(level::Model {
                sku: row.sku,
                location_id,
                on_hand,
                reserved,
                version: row.level_version.unwrap_or(0),
                updated_at: row.level_updated_at.unwrap_or_else(Utc::now),
            });
        }
    }

    let mut events = Vec::new();
    let mut new_available = CaseStatement::new();
    for (sku_id, (was_available, _, threshold)) in &before {
        let now_available = available.get(sku_id.as_str()).copied().unwrap_or(0);
        new_available = new_available.case(
            Expr::col(sku::Column::Sku).eq(sku_id.clone()),
            now_available,
        );
        if let Some(low) = low_stock_crossing(*was_available, now_available, *threshold) {
            let threshold = u32::try_from(*threshold).unwrap_or(0);
            events.push(events::low_stock(sku_id, now_available, threshold, low)?);
        }
    }
    for level in &levels {
        let (Some((_, cause)), Some((_, version, _))) = (
            causes.get(&(level.sku.clone(), level.location_id.clone())),
            before.get(&level.sku),
        ) else {
            continue;
        };
        let sku_available = available.get(level.sku.as_str()).copied().unwrap_or(0);
        events.push(events::level_changed(
            level_to_proto(level, seq),
            sku_available,
            version + 1,
            cause.to_proto(),
        )?);
    }
    // One statement for every SKU of the batch.
    sku::Entity::update_many()
        .col_expr(
            sku::Column::Available,
            new_available
                .finally(Expr::col(sku::Column::Available))
                .into(),
        )
        .col_expr(sku::Column::Version, Expr::col(sku::Column::Version).add(1))
        .col_expr(sku::Column::ChangeSeq, Expr::value(seq))
        .col_expr(sku::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(sku::Column::Sku.is_in(before.keys().cloned()))
        .exec(&txn)
        .await?;
    outbox::enqueue_all(&txn, &events).await?;
    txn.commit().await?;
    store.outbox.wake();
    Ok(pending.len())
}
