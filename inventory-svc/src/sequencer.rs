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
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
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

/// Sequences until `shutdown`, woken by commits that moved stock.
pub async fn run(store: Store, shutdown: CancellationToken) {
    loop {
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
    }
    // Sequence what the last requests committed, so their events are in the outbox at exit.
    if let Err(error) = sequence_batch(&store).await {
        tracing::warn!(%error, "final sequencing failed; the next start does it");
    }
}

/// Sequences one batch; returns how many movements it covered.
pub async fn sequence_batch(store: &Store) -> Result<usize, InventoryError> {
    let txn = store.begin().await?;
    // Taking the counter row's lock first serialises sequencers until this commit.
    counter::Entity::update_many()
        .col_expr(counter::Column::Value, Expr::col(counter::Column::Value))
        .filter(counter::Column::Name.eq(COUNTER))
        .exec(&txn)
        .await?;
    let current = counter::Entity::find_by_id(COUNTER.to_owned())
        .one(&txn)
        .await?
        .map_or(0, |c| c.value);
    let pending = movement::Entity::find()
        .filter(movement::Column::ChangeSeq.is_null())
        .order_by_asc(movement::Column::Id)
        .limit(BATCH)
        .all(&txn)
        .await?;
    if pending.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }
    let seq = current + 1;
    movement::Entity::update_many()
        .col_expr(movement::Column::ChangeSeq, Expr::value(seq))
        .filter(movement::Column::Id.is_in(pending.iter().map(|m| m.id)))
        .exec(&txn)
        .await?;

    // The last cause per level; the levels and figures of the SKUs touched, in bulk.
    let mut causes: BTreeMap<(String, String), MovementKind> = BTreeMap::new();
    for m in &pending {
        let kind = MovementKind::parse(&m.kind).unwrap_or(MovementKind::Adjustment);
        causes.insert((m.sku.clone(), m.location_id.clone()), kind);
    }
    let touched: BTreeSet<String> = causes.keys().map(|(sku, _)| sku.clone()).collect();
    let before: BTreeMap<String, sku::Model> = sku::Entity::find()
        .filter(sku::Column::Sku.is_in(touched.iter().cloned()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|s| (s.sku.clone(), s))
        .collect();
    let levels = level::Entity::find()
        .filter(level::Column::Sku.is_in(touched.iter().cloned()))
        .all(&txn)
        .await?;
    let mut available: BTreeMap<&str, i64> = BTreeMap::new();
    for level in &levels {
        *available.entry(level.sku.as_str()).or_default() += level.on_hand - level.reserved;
    }

    let mut events = Vec::new();
    let mut new_available = CaseStatement::new();
    for (sku_id, row) in &before {
        let now_available = available.get(sku_id.as_str()).copied().unwrap_or(0);
        new_available = new_available.case(
            Expr::col(sku::Column::Sku).eq(sku_id.clone()),
            now_available,
        );
        let threshold = i64::from(row.low_stock_threshold);
        if let Some(low) = low_stock_crossing(row.available, now_available, threshold) {
            let threshold = u32::try_from(threshold).unwrap_or(0);
            events.push(events::low_stock(sku_id, now_available, threshold, low)?);
        }
    }
    for level in &levels {
        let (Some(cause), Some(row)) = (
            causes.get(&(level.sku.clone(), level.location_id.clone())),
            before.get(&level.sku),
        ) else {
            continue;
        };
        let sku_available = available.get(level.sku.as_str()).copied().unwrap_or(0);
        events.push(events::level_changed(
            level_to_proto(level, seq),
            sku_available,
            row.version + 1,
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
    counter::Entity::update_many()
        .col_expr(counter::Column::Value, Expr::value(seq))
        .filter(counter::Column::Name.eq(COUNTER))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    store.outbox.wake();
    Ok(pending.len())
}
