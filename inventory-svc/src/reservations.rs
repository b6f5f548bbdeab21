//! Reservations: reserve (all-or-nothing, converting the buyer's cart holds), confirm,
//! commit (shipped), release (cancelled) and expire (the sweeper). Each is one transaction;
//! each level change is a guarded [`move_stock`], so `0 <= reserved <= on_hand` holds whatever
//! runs concurrently.

use std::{collections::BTreeSet, time::Duration};

use chrono::Utc;
use oms_platform::{
    error::ApiError,
    idempotency::{self, IdempotentCall},
    outbox,
};
use oms_proto::{events::v1::Envelope, inventory::v1 as pb};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    domain::{
        HeldUnits, InventoryError, LineRequest, MovementKind, ReservationStatus, Shortfall,
        reservation_deltas, validate::ReserveCommand,
    },
    events,
    store::{
        MovementNote, Store,
        entities::{reservation, reservation_line},
        expiry, find_level, guarded_update, level_to_proto, lock_active_reservation, move_stock,
        quick_reserve::{self, NewReservation, Outcome},
        record_movement, refresh_status, require_locations, require_skus, reservation_lines,
        settle_line, to_proto,
    },
};

/// The id of a user's cart hold.
pub fn hold_id(user_id: &str) -> String {
    format!("hold:{user_id}")
}

/// A reservation made, and the levels it changed as they are now (none on a replay).
#[derive(Debug)]
pub struct Reserved {
    /// The reservation.
    pub reservation: pb::Reservation,
    /// Its levels after it.
    pub levels: Vec<pb::StockLevel>,
}

/// Reserves every line or nothing; the buyer's holds on the ordered SKUs convert. A retry with
/// the same key returns the first reservation.
///
/// The common case takes one statement on PostgreSQL, one batch on SQLite ([`quick_reserve`]);
/// cart holds to convert and levels that do not exist take the transaction below.
pub async fn reserve(
    store: &Store,
    command: &ReserveCommand,
    default_ttl: Duration,
) -> Result<Reserved, InventoryError> {
    let reservation_id = format!("res-{}", uuid::Uuid::now_v7().simple());
    let now = Utc::now();
    let row = reservation::Model {
        reservation_id: reservation_id.clone(),
        order_id: command.order_id.clone(),
        kind: "order".into(),
        user_id: command.user_id.clone().unwrap_or_default(),
        status: ReservationStatus::Active.as_str().into(),
        expires_at: (!command.until_released).then(|| expiry(command.ttl.unwrap_or(default_ttl))),
        created_at: now,
        updated_at: now,
        idempotency_key: Some(command.idempotency_key.clone()),
    };
    let lines: Vec<reservation_line::Model> = command
        .lines
        .iter()
        .map(|l| reservation_line::Model {
            reservation_id: reservation_id.clone(),
            sku: l.sku.clone(),
            location_id: l.location_id.clone(),
            quantity: l.quantity,
            committed: 0,
            released: 0,
            client_op_id: String::new(),
        })
        .collect();
    let created = to_proto(&row, &lines);
    let event = events::reservation_changed(created.clone(), &row.user_id)?;
    let reason = format!("order {}", command.order_id);
    let hold = command.user_id.as_deref().map(hold_id).unwrap_or_default();
    let new = NewReservation {
        reservation_id: &reservation_id,
        order_id: &command.order_id,
        user_id: &row.user_id,
        idempotency_key: &command.idempotency_key,
        hold_id: &hold,
        lines: &command.lines,
        expires_at: row.expires_at,
        reason: &reason,
        event: &event,
        at: now,
    };
    let quick = match quick_reserve::reserve(&store.db, &new).await {
        Ok(Outcome::Reserved(levels)) => {
            store.stock_moved.notify_one();
            store.outbox.wake();
            return Ok(Reserved {
                reservation: created,
                levels,
            });
        }
        Ok(Outcome::Existing(id)) => return replay(store, command, &id).await,
        Ok(Outcome::Short(shortfalls)) => return Err(InventoryError::OutOfStock(shortfalls)),
        Ok(Outcome::Elsewhere) => Ok(()),
        Err(error) => Err(error),
    };
    let general = match quick {
        Ok(()) => reserve_in_transaction(store, command, &row, &lines, &event, &reason).await,
        Err(error) => Err(error),
    };
    match general {
        // The key was taken, by an earlier or a concurrent attempt: its reservation answers.
        Err(InventoryError::Db(error)) if idempotency::is_conflict(&error) => {
            let id = by_key(store, &command.idempotency_key)
                .await?
                .ok_or(InventoryError::Db(error))?;
            replay(store, command, &id).await
        }
        Ok(()) => Ok(Reserved {
            levels: levels_of(&store.db, &command.lines).await?,
            reservation: created,
        }),
        Err(error) => Err(error),
    }
}

/// The reservation made with `key`, if any.
async fn by_key(store: &Store, key: &str) -> Result<Option<String>, InventoryError> {
    Ok(reservation::Entity::find()
        .filter(reservation::Column::IdempotencyKey.eq(key))
        .one(&store.db)
        .await?
        .map(|row| row.reservation_id))
}

/// What a retry gets: the reservation as it is now — unless the key was used for another.
async fn replay(
    store: &Store,
    command: &ReserveCommand,
    reservation_id: &str,
) -> Result<Reserved, InventoryError> {
    let reservation = to_proto_by_id(&store.db, reservation_id).await?;
    let mut asked: Vec<(&str, &str, i64)> = command
        .lines
        .iter()
        .map(|l| (l.sku.as_str(), l.location_id.as_str(), l.quantity))
        .collect();
    let mut made: Vec<(&str, &str, i64)> = reservation
        .lines
        .iter()
        .map(|l| {
            (
                l.sku.as_str(),
                l.location_id.as_str(),
                i64::from(l.quantity),
            )
        })
        .collect();
    asked.sort_unstable();
    made.sort_unstable();
    if reservation.order_id != command.order_id || asked != made {
        return Err(InventoryError::Invalid(ApiError::FailedPrecondition {
            message: format!(
                "idempotency key {:?} was already used for a different request",
                command.idempotency_key
            ),
            violations: Vec::new(),
        }));
    }
    Ok(Reserved {
        reservation,
        levels: Vec::new(),
    })
}

/// The levels of `lines` as they are now.
async fn levels_of<C: ConnectionTrait>(
    conn: &C,
    lines: &[LineRequest],
) -> Result<Vec<pb::StockLevel>, InventoryError> {
    let mut levels = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(level) = find_level(conn, &line.sku, &line.location_id).await? {
            levels.push(level_to_proto(&level, 0));
        }
    }
    Ok(levels)
}

/// The general path: one transaction that also converts the buyer's holds.
///
/// The reservation's own rows are written first and the levels last, so a hot level's row lock
/// is held only for the level update, its movement and the commit.
async fn reserve_in_transaction(
    store: &Store,
    command: &ReserveCommand,
    row: &reservation::Model,
    lines: &[reservation_line::Model],
    event: &Envelope,
    reason: &str,
) -> Result<(), InventoryError> {
    let reservation_id = &row.reservation_id;
    let txn = store.begin().await?;
    let holds = match &command.user_id {
        Some(user) => held_units(&txn, &hold_id(user)).await?,
        None => Vec::new(),
    };
    let deltas = reservation_deltas(&command.lines, &holds);
    // The reservation (and its key) first: a retry conflicts here and replays.
    reservation::Entity::insert(reservation::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    reservation_line::Entity::insert_many(
        lines
            .iter()
            .cloned()
            .map(reservation_line::ActiveModel::from),
    )
    .exec_without_returning(&txn)
    .await?;
    outbox::enqueue(&txn, event).await?;
    if let Some(user) = &command.user_id
        && !deltas.hold_releases.is_empty()
    {
        let hold = hold_id(user);
        for ((sku, location_id), units) in &deltas.hold_releases {
            settle_line(&txn, &hold, sku, location_id, *units, false).await?;
        }
        if let Ok(hold_row) = lock_active_reservation(&txn, &hold).await {
            let changed = refresh_status(&txn, hold_row).await?;
            outbox::enqueue(&txn, &events::reservation_changed(changed, user)?).await?;
        }
    }

    let mut shortfalls = Vec::new();
    for (key, net) in &deltas.net {
        let (sku, location_id) = key;
        let ordered: i64 = command
            .lines
            .iter()
            .filter(|l| &l.sku == sku && &l.location_id == location_id)
            .map(|l| l.quantity)
            .sum();
        let converted = deltas.hold_releases.get(key).copied().unwrap_or(0);
        // One movement per level with the level's net change: the ledger stays append-only
        // and sums to the level, and the reason tells how much came from the buyer's hold.
        let reason = match converted {
            0 => reason.to_owned(),
            _ => format!(
                "{reason}: {ordered} reserved, {converted} converted from the buyer's cart hold"
            ),
        };
        let kind = if ordered > 0 {
            MovementKind::Reserve
        } else {
            MovementKind::Release
        };
        let note = MovementNote {
            kind,
            reference: reservation_id,
            reason: &reason,
        };
        // Movement first, level last: a hot level's lock is then held only for its update
        // and the commit. A shortfall rolls the whole transaction back, movement included.
        record_movement(&txn, sku, location_id, 0, *net, note).await?;
        if !guarded_update(&txn, sku, location_id, 0, *net).await? {
            let available = find_level(&txn, sku, location_id)
                .await?
                .map_or(0, |l| l.on_hand - l.reserved);
            shortfalls.push(Shortfall {
                sku: sku.clone(),
                location_id: location_id.clone(),
                requested: ordered,
                available: available + converted,
            });
        }
    }
    if !shortfalls.is_empty() {
        txn.rollback().await?;
        // Only now tell an unknown SKU or location from one that is out of stock.
        require_skus(&store.db, command.lines.iter().map(|l| l.sku.as_str())).await?;
        require_locations(
            &store.db,
            command.lines.iter().map(|l| l.location_id.as_str()),
        )
        .await?;
        return Err(InventoryError::OutOfStock(shortfalls));
    }
    store.commit(txn).await
}

/// The units a hold still has, per level.
pub async fn held_units<C: ConnectionTrait>(
    conn: &C,
    hold: &str,
) -> Result<Vec<HeldUnits>, InventoryError> {
    let status = reservation::Entity::find_by_id(hold.to_owned())
        .one(conn)
        .await?;
    if !status
        .and_then(|row| ReservationStatus::parse(&row.status))
        .is_some_and(ReservationStatus::holds_stock)
    {
        return Ok(Vec::new());
    }
    Ok(reservation_lines(conn, hold)
        .await?
        .into_iter()
        .filter(|l| l.remaining() > 0)
        .map(|l| HeldUnits {
            remaining: l.remaining(),
            sku: l.sku,
            location_id: l.location_id,
        })
        .collect())
}

/// The reservation of `order_id` that still holds stock, if any.
pub async fn open_of_order(
    store: &Store,
    order_id: &str,
) -> Result<Option<String>, InventoryError> {
    let open = reservation::Entity::find()
        .filter(reservation::Column::OrderId.eq(order_id))
        .filter(reservation::Column::Status.is_in([
            ReservationStatus::Active.as_str(),
            ReservationStatus::Partial.as_str(),
        ]))
        .one(&store.db)
        .await?;
    Ok(open.map(|row| row.reservation_id))
}

/// The order is confirmed: the reservation no longer expires.
pub async fn confirm(
    store: &Store,
    reservation_id: &str,
    call: &IdempotentCall,
) -> Result<pb::Reservation, InventoryError> {
    let txn = store.begin().await?;
    let row = lock_active_reservation(&txn, reservation_id).await?;
    reservation::Entity::update_many()
        .col_expr(
            reservation::Column::ExpiresAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(reservation::Column::ReservationId.eq(reservation_id))
        .exec(&txn)
        .await?;
    let confirmed = to_proto(
        &reservation::Model {
            expires_at: None,
            ..row
        },
        &reservation_lines(&txn, reservation_id).await?,
    );
    call.remember(
        &txn,
        &pb::ConfirmReservationResponse {
            reservation: Some(confirmed.clone()),
        },
    )
    .await?;
    store.commit(txn).await?;
    Ok(confirmed)
}

/// Commits (shipped) or releases (cancelled) `lines` of a reservation, or all it still holds.
pub async fn settle(
    store: &Store,
    reservation_id: &str,
    lines: &[LineRequest],
    commit: bool,
    reason: &str,
    call: &IdempotentCall,
) -> Result<pb::Reservation, InventoryError> {
    let txn = store.begin().await?;
    let row = lock_active_reservation(&txn, reservation_id).await?;
    let held = reservation_lines(&txn, reservation_id).await?;
    let targets: Vec<LineRequest> = if lines.is_empty() {
        held.iter()
            .filter(|l| l.remaining() > 0)
            .map(|l| LineRequest {
                sku: l.sku.clone(),
                location_id: l.location_id.clone(),
                quantity: l.remaining(),
            })
            .collect()
    } else {
        lines.to_vec()
    };
    let (kind, on_hand_factor) = if commit {
        (MovementKind::Commit, -1)
    } else {
        (MovementKind::Release, 0)
    };
    for target in &targets {
        let remaining = held
            .iter()
            .find(|l| l.sku == target.sku && l.location_id == target.location_id)
            .map_or(0, reservation_line::Model::remaining);
        let exceeds = || InventoryError::ExceedsHeld {
            reservation: reservation_id.to_owned(),
            sku: target.sku.clone(),
            location_id: target.location_id.clone(),
            requested: target.quantity,
            remaining,
        };
        if !settle_line(
            &txn,
            reservation_id,
            &target.sku,
            &target.location_id,
            target.quantity,
            commit,
        )
        .await?
        {
            txn.rollback().await?;
            return Err(exceeds());
        }
        let note = MovementNote {
            kind,
            reference: reservation_id,
            reason,
        };
        let moved = move_stock(
            &txn,
            &target.sku,
            &target.location_id,
            on_hand_factor * target.quantity,
            -target.quantity,
            note,
        )
        .await?;
        if !moved {
            // The line held the units, so the level must have them reserved: a broken invariant.
            txn.rollback().await?;
            return Err(InventoryError::Db(sea_orm::DbErr::Custom(format!(
                "level {} at {} does not hold the units reservation {reservation_id} holds",
                target.sku, target.location_id
            ))));
        }
    }
    let user = row.user_id.clone();
    let settled = refresh_status(&txn, row).await?;
    outbox::enqueue(&txn, &events::reservation_changed(settled.clone(), &user)?).await?;
    if commit {
        call.remember(
            &txn,
            &pb::CommitResponse {
                reservation: Some(settled.clone()),
            },
        )
        .await?;
    } else {
        call.remember(
            &txn,
            &pb::ReleaseResponse {
                reservation: Some(settled.clone()),
            },
        )
        .await?;
    }
    store.commit(txn).await?;
    Ok(settled)
}

/// Gives back what an expired reservation (or hold) still holds; false when it was no longer
/// due (committed, released or confirmed meanwhile).
pub async fn expire(store: &Store, reservation_id: &str) -> Result<bool, InventoryError> {
    let txn = store.begin().await?;
    let now = Utc::now();
    let expired = reservation::Entity::update_many()
        .col_expr(
            reservation::Column::Status,
            Expr::value(ReservationStatus::Expired.as_str()),
        )
        .col_expr(reservation::Column::UpdatedAt, Expr::value(now))
        .filter(reservation::Column::ReservationId.eq(reservation_id))
        .filter(reservation::Column::Status.is_in([
            ReservationStatus::Active.as_str(),
            ReservationStatus::Partial.as_str(),
        ]))
        .filter(reservation::Column::ExpiresAt.lt(now))
        .exec(&txn)
        .await?;
    if expired.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    let lines = reservation_lines(&txn, reservation_id).await?;
    let mut touched = BTreeSet::new();
    for line in lines.iter().filter(|l| l.remaining() > 0) {
        let units = line.remaining();
        settle_line(
            &txn,
            reservation_id,
            &line.sku,
            &line.location_id,
            units,
            false,
        )
        .await?;
        let note = MovementNote {
            kind: MovementKind::Expire,
            reference: reservation_id,
            reason: "ttl elapsed",
        };
        move_stock(&txn, &line.sku, &line.location_id, 0, -units, note).await?;
        touched.insert(line.sku.clone());
    }
    let row = reservation::Entity::find_by_id(reservation_id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| InventoryError::UnknownReservation(reservation_id.to_owned()))?;
    let user = row.user_id.clone();
    let snapshot = to_proto(&row, &reservation_lines(&txn, reservation_id).await?);
    outbox::enqueue(&txn, &events::reservation_changed(snapshot, &user)?).await?;
    store.commit(txn).await?;
    tracing::debug!(reservation_id, skus = touched.len(), "reservation expired");
    Ok(true)
}

/// Reservations past their expiry that still hold stock, oldest first.
pub async fn due_for_expiry(store: &Store, limit: u64) -> Result<Vec<String>, InventoryError> {
    use sea_orm::{QueryOrder, QuerySelect};
    Ok(reservation::Entity::find()
        .select_only()
        .column(reservation::Column::ReservationId)
        .filter(reservation::Column::Status.is_in([
            ReservationStatus::Active.as_str(),
            ReservationStatus::Partial.as_str(),
        ]))
        .filter(reservation::Column::ExpiresAt.lt(Utc::now()))
        .order_by_asc(reservation::Column::ExpiresAt)
        .limit(limit)
        .into_tuple::<String>()
        .all(&store.db)
        .await?)
}

/// One reservation as the API shows it.
pub async fn to_proto_by_id<C: ConnectionTrait>(
    conn: &C,
    reservation_id: &str,
) -> Result<pb::Reservation, InventoryError> {
    let row = reservation::Entity::find_by_id(reservation_id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| InventoryError::UnknownReservation(reservation_id.to_owned()))?;
    Ok(to_proto(
        &row,
        &reservation_lines(conn, reservation_id).await?,
    ))
}
