//! SyncCart: the app's cart becomes short-lived holds (soft reservations), so what a user sees
//! in the cart during peak traffic is really there at checkout.
//!
//! One hold reservation per user (`hold:<user>`), one line per (sku, location), refreshed on
//! every sync and expired by the sweeper when the app stops syncing. The plan comes from
//! `domain::holds`; under contention a take may get less than planned, and the answer says
//! what was really held.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use oms_platform::{geo::distance_km, outbox};
use oms_proto::{common::v1::GeoPoint, inventory::v1 as pb};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::{
    domain::{
        InventoryError, MovementKind, ReservationStatus,
        holds::{self, Candidate, HoldLine},
        validate::CartLine,
    },
    events,
    reservations::hold_id,
    store::{
        MovementNote, Store,
        entities::{level, location, reservation, reservation_line},
        expiry, find_level, move_stock, refresh_status, require_skus, reservation_lines,
    },
};

/// Limits of cart holds.
#[derive(Debug, Clone, Copy)]
pub struct HoldPolicy {
    /// How long holds last without a sync.
    pub ttl: Duration,
    /// Most units one user may hold across the cart.
    pub max_units_per_user: i64,
}

/// Applies the cart and answers with what is held and what the app's cache got wrong.
pub async fn sync_cart(
    store: &Store,
    user_id: &str,
    cart: &[CartLine],
    near: Option<&GeoPoint>,
    policy: HoldPolicy,
) -> Result<pb::SyncCartResponse, InventoryError> {
    let hold = hold_id(user_id);
    let txn = store.begin().await?;
    let catalog = require_skus(&txn, cart.iter().map(|l| l.sku.as_str())).await?;
    let expires_at = expiry(policy.ttl);
    open_hold(&txn, &hold, user_id, expires_at).await?;

    let current: Vec<HoldLine> = reservation_lines(&txn, &hold)
        .await?
        .into_iter()
        .map(|l| HoldLine {
            remaining: l.remaining(),
            sku: l.sku,
            location_id: l.location_id,
            client_op_id: l.client_op_id,
        })
        .collect();
    let candidates = candidates(&txn, cart, near).await?;
    let plan = holds::plan(&current, cart, &candidates, policy.max_units_per_user);

    for change in &plan.changes {
        let applied = if change.delta > 0 {
            take(&txn, &hold, &change.sku, &change.location_id, change.delta).await?
        } else {
            let units = -change.delta;
            let note = MovementNote {
                kind: MovementKind::Release,
                reference: &hold,
                reason: "cart hold reduced",
            };
            if move_stock(&txn, &change.sku, &change.location_id, 0, -units, note).await? {
                crate::store::settle_line(
                    &txn,
                    &hold,
                    &change.sku,
                    &change.location_id,
                    units,
                    false,
                )
                .await?;
            }
            0
        };
        if applied > 0 {
            add_to_line(&txn, &hold, &change.sku, &change.location_id, applied).await?;
        }
    }
    for line in cart.iter().filter(|l| !l.client_op_id.is_empty()) {
        reservation_line::Entity::update_many()
            .col_expr(
                reservation_line::Column::ClientOpId,
                Expr::value(line.client_op_id.clone()),
            )
            .filter(reservation_line::Column::ReservationId.eq(hold.clone()))
            .filter(reservation_line::Column::Sku.eq(line.sku.clone()))
            .exec(&txn)
            .await?;
    }

    let after = reservation_lines(&txn, &hold).await?;
    let mut lines = Vec::with_capacity(cart.len());
    for line in cart {
        let held: i64 = after
            .iter()
            .filter(|l| l.sku == line.sku)
            .map(|l| l.remaining())
            .sum();
        let free: i64 = candidates_available(&txn, &line.sku).await?;
        let version = catalog.get(&line.sku).map_or(0, |s| s.version);
        let target = plan
            .targets
            .get(&line.sku)
            .cloned()
            .unwrap_or(holds::LineTarget {
                requested: line.quantity,
                allowed: line.quantity,
                capped: false,
            });
        lines.push(pb::CartLineResult {
            sku: line.sku.clone(),
            requested: u32::try_from(line.quantity).unwrap_or(u32::MAX),
            held_quantity: u32::try_from(held).unwrap_or(u32::MAX),
            available: free + held,
            version,
            stale: line.seen_version > 0 && line.seen_version < version,
            status: holds::line_status(&target, held).into(),
        });
    }

    let row = reservation::Entity::find_by_id(hold.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| InventoryError::UnknownReservation(hold.clone()))?;
    let snapshot = refresh_status(&txn, row).await?;
    if !plan.changes.is_empty() {
        outbox::enqueue(&txn, &events::reservation_changed(snapshot, user_id)?).await?;
    }
    store.commit(txn).await?;
    Ok(pb::SyncCartResponse {
        lines,
        holds_expire_at: Some(oms_platform::events::to_timestamp(expires_at)),
    })
}

/// Creates the user's hold or reopens and extends it, taking its row lock.
async fn open_hold<C: ConnectionTrait>(
    conn: &C,
    hold: &str,
    user_id: &str,
    expires_at: chrono::DateTime<Utc>,
) -> Result<(), InventoryError> {
    let now = Utc::now();
    let row = reservation::ActiveModel {
        reservation_id: Set(hold.to_owned()),
        order_id: Set(String::new()),
        kind: Set("hold".into()),
        user_id: Set(user_id.to_owned()),
        status: Set(ReservationStatus::Active.as_str().into()),
        expires_at: Set(Some(expires_at)),
        created_at: Set(now),
        updated_at: Set(now),
        idempotency_key: Set(None),
    };
    reservation::Entity::insert(row)
        .on_conflict(
            OnConflict::column(reservation::Column::ReservationId)
                .update_columns([
                    reservation::Column::ExpiresAt,
                    reservation::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    // An expired or emptied hold comes back to life: its lines hold nothing any more.
    reservation::Entity::update_many()
        .col_expr(
            reservation::Column::Status,
            Expr::value(ReservationStatus::Active.as_str()),
        )
        .filter(reservation::Column::ReservationId.eq(hold))
        .filter(reservation::Column::Status.is_not_in([
            ReservationStatus::Active.as_str(),
            ReservationStatus::Partial.as_str(),
        ]))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes up to `units` at a level for the hold; returns how many it got.
async fn take<C: ConnectionTrait>(
    conn: &C,
    hold: &str,
    sku: &str,
    location_id: &str,
    units: i64,
) -> Result<i64, InventoryError> {
    let mut want = units;
    // A concurrent buyer may have taken some since the plan was made: settle for what is left.
    for _ in 0..3 {
        let note = MovementNote {
            kind: MovementKind::Reserve,
            reference: hold,
            reason: "cart hold",
        };
        if move_stock(conn, sku, location_id, 0, want, note).await? {
            return Ok(want);
        }
        let left = find_level(conn, sku, location_id)
            .await?
            .map_or(0, |l| l.on_hand - l.reserved);
        want = std::cmp::min(want, left);
        if want <= 0 {
            return Ok(0);
        }
    }
    Ok(0)
}

async fn add_to_line<C: ConnectionTrait>(
    conn: &C,
    hold: &str,
    sku: &str,
    location_id: &str,
    units: i64,
) -> Result<(), InventoryError> {
    let row = reservation_line::ActiveModel {
        reservation_id: Set(hold.to_owned()),
        sku: Set(sku.to_owned()),
        location_id: Set(location_id.to_owned()),
        quantity: Set(units),
        committed: Set(0),
        released: Set(0),
        client_op_id: Set(String::new()),
    };
    reservation_line::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                reservation_line::Column::ReservationId,
                reservation_line::Column::Sku,
                reservation_line::Column::LocationId,
            ])
            .value(
                reservation_line::Column::Quantity,
                Expr::col((reservation_line::Entity, reservation_line::Column::Quantity))
                    .add(units),
            )
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Where each cart SKU could be held, with availability and distance from the buyer.
async fn candidates<C: ConnectionTrait>(
    conn: &C,
    cart: &[CartLine],
    near: Option<&GeoPoint>,
) -> Result<BTreeMap<String, Vec<Candidate>>, InventoryError> {
    let skus: Vec<String> = cart.iter().map(|l| l.sku.clone()).collect();
    let levels = level::Entity::find()
        .filter(level::Column::Sku.is_in(skus))
        .all(conn)
        .await?;
    let places: BTreeMap<String, location::Model> = location::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(|l| (l.location_id.clone(), l))
        .collect();
    let mut by_sku: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for level in levels {
        let distance = match (near, places.get(&level.location_id)) {
            (Some(near), Some(place)) => distance_km(
                near,
                &GeoPoint {
                    lat: place.lat,
                    lng: place.lng,
                },
            ),
            _ => 0.0,
        };
        by_sku
            .entry(level.sku.clone())
            .or_default()
            .push(Candidate {
                location_id: level.location_id.clone(),
                available: level.on_hand - level.reserved,
                distance_km: distance,
            });
    }
    Ok(by_sku)
}

async fn candidates_available<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
) -> Result<i64, InventoryError> {
    Ok(level::Entity::find()
        .filter(level::Column::Sku.eq(sku))
        .all(conn)
        .await?
        .iter()
        .map(|l| l.on_hand - l.reserved)
        .sum())
}
