//! A reservation in as few round trips as the database allows, for the common case: no cart
//! hold to convert, every level there.
//!
//! * PostgreSQL: one statement (data-modifying CTEs) that locks the levels in (sku, location)
//!   order, checks that every line fits, and only then writes the reservation, its lines, the
//!   level updates, the ledger movements and the `reservation_changed` event — or nothing at
//!   all. Locking with `SELECT … ORDER BY sku, location_id FOR UPDATE` returns each level's
//!   latest committed figures (READ COMMITTED re-reads a row another transaction changed), so
//!   the all-or-nothing check runs on what the update will change, and concurrent multi-line
//!   reservations take their locks in one order and cannot deadlock.
//! * SQLite: one batch of statements inside a transaction (three round trips to SQLite's
//!   thread instead of a dozen): the checks, the guarded level updates with what they left,
//!   the rows; the transaction commits only when every level took its units.
//!
//! Either way it tells what stands in its way (a retry of a key already used, cart holds to
//! convert, missing levels, the shortfall), and the caller takes the general path
//! (`reservations::reserve`) for the rare cases.

use chrono::{DateTime, Utc};
use oms_proto::{events::v1::Envelope, inventory::v1 as pb};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};

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

/// Reserves, on whichever database `db` is.
pub async fn reserve(
    db: &DatabaseConnection,
    new: &NewReservation<'_>,
) -> Result<Outcome, InventoryError> {
    match db.get_database_backend() {
        DbBackend::Postgres => on_postgres(db, new).await,
        _ => on_sqlite(db, new).await,
    }
}

/// The one statement on PostgreSQL.
async fn on_postgres(
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
    if held {
        return Ok(Outcome::Elsewhere);
    }
    // Everything fits, yet nothing was written: a concurrent first attempt with this key.
    Ok(short(new.lines, &available))
}

/// The shortfall of `lines` given what each level has available; `Elsewhere` when a level is
/// missing (unknown SKU or location: the general path says which) or nothing falls short.
fn short(lines: &[LineRequest], available: &[(String, String, i64)]) -> Outcome {
    if available.len() < lines.len() {
        return Outcome::Elsewhere;
    }
    let shortfalls: Vec<Shortfall> = lines
        .iter()
        .filter_map(|line| {
            let (_, _, available) = available
                .iter()
                .find(|(sku, location, _)| *sku == line.sku && *location == line.location_id)?;
            (*available < line.quantity).then(|| Shortfall {
                sku: line.sku.clone(),
                location_id: line.location_id.clone(),
                requested: line.quantity,
                available: std::cmp::max(*available, 0),
            })
        })
        .collect();
    if shortfalls.is_empty() {
        Outcome::Elsewhere
    } else {
        Outcome::Short(shortfalls)
    }
}

/// The batch in a transaction on SQLite (one connection: nothing runs in between, so the
/// guarded updates need no locks).
async fn on_sqlite(
    db: &DatabaseConnection,
    new: &NewReservation<'_>,
) -> Result<Outcome, InventoryError> {
    let mut values: Vec<Value> = Vec::new();
    let mut param = |value: Value| {
        values.push(value);
        format!("${}", values.len())
    };
    let (hold, key, at) = (
        param(new.hold_id.into()),
        param(new.idempotency_key.into()),
        param(new.at.into()),
    );
    let id = param(new.reservation_id.into());
    let mut sql = format!(
        "SELECT EXISTS (SELECT 1 FROM reservations WHERE reservation_id = {hold} \
         AND status IN ('active', 'partial')) AS held, \
         (SELECT reservation_id FROM reservations WHERE idempotency_key = {key}) AS existing;"
    );
    let mut lines = Vec::new();
    let mut movements = Vec::new();
    for line in new.lines {
        let (sku, location, quantity) = (
            param(line.sku.clone().into()),
            param(line.location_id.clone().into()),
            param(line.quantity.into()),
        );
        sql.push_str(&format!(
            "UPDATE stock_levels SET reserved = reserved + {quantity}, version = version + 1, \
             updated_at = {at} WHERE sku = {sku} AND location_id = {location} \
             AND on_hand - reserved >= {quantity} \
             RETURNING sku, location_id, on_hand, reserved, version;"
        ));
        lines.push(format!("({id}, {sku}, {location}, {quantity}, 0, 0, '')"));
        movements.push(format!(
            "({sku}, {location}, 'reserve', 0, {quantity}, {id}, {reason}, {at})",
            reason = param(new.reason.into())
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO reservations (reservation_id, order_id, kind, user_id, status, expires_at, \
         created_at, updated_at, idempotency_key) \
         VALUES ({id}, {order}, 'order', {user}, 'active', {expires}, {at}, {at}, {key}); \
         INSERT INTO reservation_lines (reservation_id, sku, location_id, quantity, committed, \
         released, client_op_id) VALUES {lines}; \
         INSERT INTO movements (sku, location_id, kind, on_hand_delta, reserved_delta, \
         reference, reason, created_at) VALUES {movements}; \
         INSERT INTO outbox (event_id, subject, payload, created_at) \
         VALUES ({event_id}, {subject}, {payload}, {at});",
        order = param(new.order_id.into()),
        user = param(new.user_id.into()),
        expires = param(new.expires_at.into()),
        lines = lines.join(", "),
        movements = movements.join(", "),
        event_id = param(new.event.event_id.clone().into()),
        subject = param(new.event.subject.clone().into()),
        payload = param(new.event.encode_to_vec().into()),
    ));
    let txn = db.begin().await?;
    let rows = match txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await
    {
        Ok(rows) => rows,
        Err(error) => {
            txn.rollback().await?;
            return Err(error.into());
        }
    };
    let (mut held, mut existing) = (false, None);
    let mut levels = Vec::new();
    for row in &rows {
        if let Ok(was_held) = row.try_get::<bool>("", "held") {
            held = was_held;
            existing = row.try_get::<Option<String>>("", "existing")?;
            continue;
        }
        let (on_hand, reserved): (i64, i64) =
            (row.try_get("", "on_hand")?, row.try_get("", "reserved")?);
        levels.push(pb::StockLevel {
            sku: row.try_get("", "sku")?,
            location_id: row.try_get("", "location_id")?,
            on_hand,
            reserved,
            available: std::cmp::max(on_hand - reserved, 0),
            version: row.try_get("", "version")?,
            change_seq: 0,
        });
    }
    if held || existing.is_some() || levels.len() < new.lines.len() {
        txn.rollback().await?;
        if let Some(existing) = existing {
            return Ok(Outcome::Existing(existing));
        }
        if held {
            return Ok(Outcome::Elsewhere);
        }
        let available = levels_available(db, new.lines).await?;
        return Ok(short(new.lines, &available));
    }
    txn.commit().await?;
    Ok(Outcome::Reserved(levels))
}

/// What each line's level has available, for the levels that exist.
async fn levels_available(
    db: &DatabaseConnection,
    lines: &[LineRequest],
) -> Result<Vec<(String, String, i64)>, InventoryError> {
    let mut available = Vec::with_capacity(lines.len());
    for line in lines {
        if let Some(level) = super::find_level(db, &line.sku, &line.location_id).await? {
            available.push((level.sku, level.location_id, level.on_hand - level.reserved));
        }
    }
    Ok(available)
}
