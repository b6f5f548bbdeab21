//! Inventory persistence: every change of a level goes through [`move_stock`], one
//! conditional UPDATE that only succeeds when `0 <= reserved <= on_hand` still holds after it,
//! plus its ledger movement in the same transaction. Levels are always touched in
//! (sku, location) order so concurrent transactions cannot deadlock on PostgreSQL.

pub mod entities;
pub mod migration;
pub mod queries;
pub mod quick_reserve;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use oms_platform::{events::to_timestamp, outbox::Outbox};
use oms_proto::inventory::v1 as pb;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use tokio::sync::Notify;

use crate::domain::{InventoryError, LineProgress, MovementKind, ReservationStatus, status_after};
use entities::{level, location, movement, reservation, reservation_line, sku};

/// The inventory database and the signals its writers give.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Wakes the relay after commits that enqueued events.
    pub outbox: Outbox,
    /// Wakes the change sequencer after commits that moved stock.
    pub stock_moved: Arc<Notify>,
}

impl Store {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Self {
            db,
            outbox,
            stock_moved: Arc::new(Notify::new()),
        }
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<DatabaseTransaction, InventoryError> {
        Ok(self.db.begin().await?)
    }

    /// Commits a transaction that moved stock and enqueued events, and wakes their workers.
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), InventoryError> {
        txn.commit().await?;
        self.stock_moved.notify_one();
        self.outbox.wake();
        Ok(())
    }
}

/// What a ledger entry is about.
#[derive(Debug, Clone, Copy)]
pub struct MovementNote<'a> {
    /// Why.
    pub kind: MovementKind,
    /// The reservation, receipt key or return behind it.
    pub reference: &'a str,
    /// The operator's or system's reason.
    pub reason: &'a str,
}

/// Changes one level by (`on_hand_delta`, `reserved_delta`) if the result keeps
/// `0 <= reserved <= on_hand`, and writes the movement. Returns false (and changes nothing)
/// when the guard fails or the level does not exist.
pub async fn move_stock<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
    on_hand_delta: i64,
    reserved_delta: i64,
    note: MovementNote<'_>,
) -> Result<bool, InventoryError> {
    if !guarded_update(conn, sku, location_id, on_hand_delta, reserved_delta).await? {
        return Ok(false);
    }
    record_movement(conn, sku, location_id, on_hand_delta, reserved_delta, note).await?;
    Ok(true)
}

/// The level half of [`move_stock`]: one conditional UPDATE that only applies when the result
/// keeps `0 <= reserved <= on_hand`; true when it applied.
pub async fn guarded_update<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
    on_hand_delta: i64,
    reserved_delta: i64,
) -> Result<bool, InventoryError> {
    let updated = level::Entity::update_many()
        .col_expr(
            level::Column::OnHand,
            Expr::col(level::Column::OnHand).add(on_hand_delta),
        )
        .col_expr(
            level::Column::Reserved,
            Expr::col(level::Column::Reserved).add(reserved_delta),
        )
        .col_expr(
            level::Column::Version,
            Expr::col(level::Column::Version).add(1),
        )
        .col_expr(level::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(level::Column::Sku.eq(sku))
        .filter(level::Column::LocationId.eq(location_id))
        .filter(
            Expr::col(level::Column::OnHand)
                .add(on_hand_delta)
                .sub(Expr::col(level::Column::Reserved).add(reserved_delta))
                .gte(0),
        )
        .filter(
            Expr::col(level::Column::Reserved)
                .add(reserved_delta)
                .gte(0),
        )
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// The ledger half of [`move_stock`]. Written on its own only by callers that roll the whole
/// transaction back when the matching [`guarded_update`] does not apply.
pub async fn record_movement<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
    on_hand_delta: i64,
    reserved_delta: i64,
    note: MovementNote<'_>,
) -> Result<(), InventoryError> {
    let entry = movement::ActiveModel {
        sku: Set(sku.to_owned()),
        location_id: Set(location_id.to_owned()),
        kind: Set(note.kind.as_str().to_owned()),
        on_hand_delta: Set(on_hand_delta),
        reserved_delta: Set(reserved_delta),
        reference: Set(truncate(note.reference, 200)),
        reason: Set(truncate(note.reason, 500)),
        created_at: Set(Utc::now()),
        change_seq: Set(None),
        ..Default::default()
    };
    movement::Entity::insert(entry)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Creates an empty level if there is none (receipts and adjustments may start one).
pub async fn ensure_level<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
) -> Result<(), InventoryError> {
    let row = level::ActiveModel {
        sku: Set(sku.to_owned()),
        location_id: Set(location_id.to_owned()),
        on_hand: Set(0),
        reserved: Set(0),
        version: Set(0),
        updated_at: Set(Utc::now()),
    };
    level::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([level::Column::Sku, level::Column::LocationId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One level, if it exists.
pub async fn find_level<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
) -> Result<Option<level::Model>, InventoryError> {
    Ok(
        level::Entity::find_by_id((sku.to_owned(), location_id.to_owned()))
            .one(conn)
            .await?,
    )
}

/// Refuses SKUs that are not in the catalog.
pub async fn require_skus<C: ConnectionTrait>(
    conn: &C,
    skus: impl IntoIterator<Item = &str>,
) -> Result<BTreeMap<String, sku::Model>, InventoryError> {
    let wanted: Vec<String> = skus.into_iter().map(str::to_owned).collect();
    let found: BTreeMap<String, sku::Model> = sku::Entity::find()
        .filter(sku::Column::Sku.is_in(wanted.clone()))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| (s.sku.clone(), s))
        .collect();
    match wanted.into_iter().find(|s| !found.contains_key(s)) {
        Some(missing) => Err(InventoryError::UnknownSku(missing)),
        None => Ok(found),
    }
}

/// Refuses locations that are not registered.
pub async fn require_locations<C: ConnectionTrait>(
    conn: &C,
    locations: impl IntoIterator<Item = &str>,
) -> Result<BTreeMap<String, location::Model>, InventoryError> {
    let wanted: Vec<String> = locations.into_iter().map(str::to_owned).collect();
    let found: BTreeMap<String, location::Model> = location::Entity::find()
        .filter(location::Column::LocationId.is_in(wanted.clone()))
        .all(conn)
        .await?
        .into_iter()
        .map(|l| (l.location_id.clone(), l))
        .collect();
    match wanted.into_iter().find(|l| !found.contains_key(l)) {
        Some(missing) => Err(InventoryError::UnknownLocation(missing)),
        None => Ok(found),
    }
}

/// Takes the reservation's row lock if it still holds stock; every change of a reservation
/// starts here, so they are serial per reservation.
pub async fn lock_active_reservation<C: ConnectionTrait>(
    conn: &C,
    reservation_id: &str,
) -> Result<reservation::Model, InventoryError> {
    let locked = reservation::Entity::update_many()
        .col_expr(reservation::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(reservation::Column::ReservationId.eq(reservation_id))
        .filter(reservation::Column::Status.is_in([
            ReservationStatus::Active.as_str(),
            ReservationStatus::Partial.as_str(),
        ]))
        .exec(conn)
        .await?;
    let found = reservation::Entity::find_by_id(reservation_id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| InventoryError::UnknownReservation(reservation_id.to_owned()))?;
    if locked.rows_affected == 1 {
        Ok(found)
    } else {
        Err(InventoryError::NotActive {
            id: reservation_id.to_owned(),
            status: found.status,
        })
    }
}

/// The lines of a reservation in (sku, location) order.
pub async fn reservation_lines<C: ConnectionTrait>(
    conn: &C,
    reservation_id: &str,
) -> Result<Vec<reservation_line::Model>, InventoryError> {
    Ok(reservation_line::Entity::find()
        .filter(reservation_line::Column::ReservationId.eq(reservation_id))
        .order_by_asc(reservation_line::Column::Sku)
        .order_by_asc(reservation_line::Column::LocationId)
        .all(conn)
        .await?)
}

/// Moves units of a line to committed or released, if the line still holds them.
pub async fn settle_line<C: ConnectionTrait>(
    conn: &C,
    reservation_id: &str,
    sku: &str,
    location_id: &str,
    quantity: i64,
    commit: bool,
) -> Result<bool, InventoryError> {
    let column = if commit {
        reservation_line::Column::Committed
    } else {
        reservation_line::Column::Released
    };
    let updated = reservation_line::Entity::update_many()
        .col_expr(column, Expr::col(column).add(quantity))
        .filter(reservation_line::Column::ReservationId.eq(reservation_id))
        .filter(reservation_line::Column::Sku.eq(sku))
        .filter(reservation_line::Column::LocationId.eq(location_id))
        .filter(
            Expr::col(reservation_line::Column::Quantity)
                .sub(Expr::col(reservation_line::Column::Committed))
                .sub(Expr::col(reservation_line::Column::Released))
                .gte(quantity),
        )
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Sets a reservation's status from its lines and returns it as the API shows it.
pub async fn refresh_status<C: ConnectionTrait>(
    conn: &C,
    mut row: reservation::Model,
) -> Result<pb::Reservation, InventoryError> {
    let lines = reservation_lines(conn, &row.reservation_id).await?;
    let progress: Vec<LineProgress> = lines
        .iter()
        .map(|l| LineProgress {
            quantity: l.quantity,
            committed: l.committed,
            released: l.released,
        })
        .collect();
    let status = status_after(&progress);
    if status.as_str() != row.status {
        reservation::Entity::update_many()
            .col_expr(reservation::Column::Status, Expr::value(status.as_str()))
            .filter(reservation::Column::ReservationId.eq(row.reservation_id.clone()))
            .exec(conn)
            .await?;
        row.status = status.as_str().to_owned();
    }
    Ok(to_proto(&row, &lines))
}

/// A reservation and its lines as the API shows them.
pub fn to_proto(row: &reservation::Model, lines: &[reservation_line::Model]) -> pb::Reservation {
    let status = ReservationStatus::parse(&row.status).map_or(
        pb::ReservationStatus::Unspecified,
        ReservationStatus::to_proto,
    );
    pb::Reservation {
        reservation_id: row.reservation_id.clone(),
        order_id: row.order_id.clone(),
        status: status.into(),
        lines: lines
            .iter()
            .map(|l| pb::ReservationLineState {
                sku: l.sku.clone(),
                location_id: l.location_id.clone(),
                quantity: count(l.quantity),
                committed: count(l.committed),
                released: count(l.released),
            })
            .collect(),
        expires_at: row.expires_at.map(to_timestamp),
        created_at: Some(to_timestamp(row.created_at)),
    }
}

/// A level as the API shows it.
pub fn level_to_proto(level: &level::Model, change_seq: i64) -> pb::StockLevel {
    pb::StockLevel {
        sku: level.sku.clone(),
        location_id: level.location_id.clone(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: std::cmp::max(level.on_hand - level.reserved, 0),
        version: level.version,
        change_seq,
    }
}

/// `now + ttl` for reservation expiry.
pub fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::days(7))
}

fn count(value: i64) -> u32 {
    u32::try_from(std::cmp::max(value, 0)).unwrap_or(u32::MAX)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
