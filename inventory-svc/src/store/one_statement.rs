//! A reservation in one round trip on PostgreSQL: one statement (data-modifying CTEs) that
//! locks the levels in (sku, location) order, checks that every line fits, and only then
//! writes the reservation, its lines, the level updates, the ledger movements and the
//! `reservation_changed` event — or nothing at all. It also tells what stands in its way
//! (a retry of a key already used, cart holds to convert, missing levels, the shortfall), and
//! the caller takes the general path (`reservations::reserve`) for the rare cases.
//!
//! Locking with `SELECT … ORDER BY sku, location_id FOR UPDATE` returns each level's latest
//! committed figures (READ COMMITTED re-reads a row another transaction changed), so the
//! all-or-nothing check runs on what the update will change, and concurrent multi-line
//! reservations take their locks in one order and cannot deadlock.

use chrono::{DateTime, Utc};
use oms_proto::{events::v1::Envelope, inventory::v1 as pb};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::domain::{InventoryError, LineRequest, Shortfall};

/// What to reserve.
pub struct NewReservation<'a> {
    /// The new reservation's id.
    pub reservation_id: &'a str,
    /// The order it belongs to.
    pub order_id: &'a str,
    /// The buyer ("" for none).
    pub user_id: &'a str,
    /// The caller's idempotency key.
    pub idempotency_key: &'a str,
    /// The buyer's cart hold, whose presence sends the reservation down the general path.
    pub hold_id: &'a str,
    /// Lines in lock order, one per level.
    pub lines: &'a [LineRequest],
    /// `None`: until released.
    pub expires_at: Option<DateTime<Utc>>,
    /// The ledger's reason.
    pub reason: &'a str,
    /// The `reservation_changed` event, written only if the reservation is.
    pub event: &'a Envelope,
    /// Now.
    pub at: DateTime<Utc>,
}

/// How the statement went.
#[derive(Debug)]
pub enum Outcome {
    /// Reserved; the levels as they are now.
    Reserved(Vec<pb::StockLevel>),
    /// The key was used before for this reservation.
    Existing(String),
    /// Some line does not fit; nothing was written.
    Short(Vec<Shortfall>),
    /// Not for this path (cart holds to convert, a level that does not exist, a concurrent
    /// retry of the key): nothing was written.
    Elsewhere,
}

/// Whether the one-statement path is available on `db`.
pub fn available(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// Runs the reservation statement.
pub async fn reserve(
    db: &DatabaseConnection,
    new: &NewReservation<'_>,
) -> Result<Outcome, InventoryError> {
    let mut values: Vec<Value> = Vec::with_capacity(new.lines.len() * 3 + 12);
    let mut param = |value: Value| {
        values.push(value);
        format!("${}", values.len())
    };
    let wanted: Vec<String> = new
        .lines
        .iter()
        .map(|line| {
            format!(
                "({}, {}, {}::bigint)",
                param(line.sku.clone().into()),
                param(line.location_id.clone().into()),
                param(line.quantity.into())
            )
        })
        .collect();
    let lines = new.lines.len() as i64;
    let sql = format!(
        "WITH wanted (sku, location_id, quantity) AS (VALUES {wanted}),
         existing AS (
             SELECT reservation_id FROM reservations WHERE idempotency_key = {key}
         ),
         held AS (
             SELECT 1 FROM reservations
             WHERE reservation_id = {hold} AND status IN ('active', 'partial')
         ),
         locked AS (
             SELECT l.sku, l.location_id, l.on_hand - l.reserved AS available
             FROM stock_levels l JOIN wanted w ON l.sku = w.sku AND l.location_id = w.location_id
             ORDER BY l.sku, l.location_id
             FOR UPDATE OF l
         ),
         verdict AS (
             SELECT COUNT(*) = {lines} AND COALESCE(BOOL_AND(k.available >= w.quantity), FALSE) AS fits
             FROM locked k JOIN wanted w ON k.sku = w.sku AND k.location_id = w.location_id
         ),
         reservation AS (
             INSERT INTO reservations (reservation_id, order_id, kind, user_id, status, expires_at,
                                       created_at, updated_at, idempotency_key)
             SELECT {id}, {order}, 'order', {user}, 'active', {expires}, {at}, {at}, {key}
             FROM verdict
             WHERE verdict.fits
               AND NOT EXISTS (SELECT 1 FROM existing)
               AND NOT EXISTS (SELECT 1 FROM held)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING reservation_id
         ),
         new_lines AS (
             INSERT INTO reservation_lines (reservation_id, sku, location_id, quantity, committed,
                                            released, client_op_id)
             SELECT r.reservation_id, w.sku, w.location_id, w.quantity, 0, 0, ''
             FROM reservation r CROSS JOIN wanted w
         ),
         levels AS (
             UPDATE stock_levels l
             SET reserved = l.reserved + w.quantity, version = l.version + 1, updated_at = {at}
             FROM wanted w CROSS JOIN reservation r
             WHERE l.sku = w.sku AND l.location_id = w.location_id
             RETURNING l.sku, l.location_id, l.on_hand, l.reserved, l.version
         ),
         new_movements AS (
             INSERT INTO movements (sku, location_id, kind, on_hand_delta, reserved_delta,
                                    reference, reason, created_at)
             SELECT w.sku, w.location_id, 'reserve', 0, w.quantity, r.reservation_id, {reason}, {at}
             FROM reservation r CROSS JOIN wanted w
         ),
         announced AS (
             INSERT INTO outbox (event_id, subject, payload, created_at)
             SELECT {event_id}, {subject}, {payload}, {at} FROM reservation
         )
         SELECT (SELECT reservation_id FROM reservation) AS created,
                (SELECT reservation_id FROM existing) AS existing,
                EXISTS (SELECT 1 FROM held) AS held,
                k.sku, k.location_id, k.available,
                v.on_hand, v.reserved, v.version
         FROM (SELECT 1) AS one
         LEFT JOIN locked k ON TRUE
         LEFT JOIN levels v ON v.sku = k.sku AND v.location_id = k.location_id",
        wanted = wanted.join(", "),
        key = param(new.idempotency_key.into()),
        hold = param(new.hold_id.into()),
        id = param(new.reservation_id.into()),
        order = param(new.order_id.into()),
        user = param(new.user_id.into()),
        expires = param(new.expires_at.into()),
        at = param(new.at.into()),
        reason = param(new.reason.into()),
        event_id = param(new.event.event_id.clone().into()),
        subject = param(new.event.subject.clone().into()),
        payload = param(new.event.encode_to_vec().into()),
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    let mut created = None;
    let mut existing = None;
    let mut held = false;
    let mut levels = Vec::new();
    let mut available = Vec::new();
    for row in &rows {
        created = row.try_get::<Option<String>>("", "created")?;
        existing = row.try_get::<Option<String>>("", "existing")?;
        held = row.try_get::<bool>("", "held")?;
        let Some(sku) = row.try_get::<Option<String>>("", "sku")? else {
            continue;
        };
        let location_id: String = row.try_get("", "location_id")?;
        available.push((
            sku.clone(),
            location_id.clone(),
            row.try_get::<i64>("", "available")?,
        ));
        if let Some(on_hand) = row.try_get::<Option<i64>>("", "on_hand")? {
            let reserved: i64 = row.try_get("", "reserved")?;
            levels.push(pb::StockLevel {
                sku,
                location_id,
                on_hand,
                reserved,
                available: (on_hand - reserved).max(0),
                version: row.try_get("", "version")?,
                change_seq: 0,
            });
        }
    }
    if created.is_some() {
        return Ok(Outcome::Reserved(levels));
    }
    if let Some(existing) = existing {
        return Ok(Outcome::Existing(existing));
    }
    // Held units convert, so a shortfall without them says nothing.
    if held || available.len() < new.lines.len() {
        return Ok(Outcome::Elsewhere);
    }
    let shortfalls: Vec<Shortfall> = new
        .lines
        .iter()
        .filter_map(|line| {
            let (_, _, available) = available
                .iter()
                .find(|(sku, location, _)| *sku == line.sku && *location == line.location_id)?;
            (*available < line.quantity).then(|| Shortfall {
                sku: line.sku.clone(),
                location_id: line.location_id.clone(),
                requested: line.quantity,
                available: (*available).max(0),
            })
        })
        .collect();
    if shortfalls.is_empty() {
        // Everything fits, yet nothing was written: a concurrent first attempt with this key.
        Ok(Outcome::Elsewhere)
    } else {
        Ok(Outcome::Short(shortfalls))
    }
}
