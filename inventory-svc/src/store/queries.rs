//! Read-only queries: availability, the sync feed, the audit sums, the ledger.

use std::collections::BTreeMap;

use oms_platform::{events::to_timestamp, geo::distance_km};
use oms_proto::{common::v1::GeoPoint, inventory::v1 as pb};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
    sea_query::{Alias, Expr, ExprTrait, JoinType, Query},
};

use super::entities::{level, location, movement, reservation, reservation_line, sku};
use crate::domain::{InventoryError, MovementKind, ReservationStatus, audit::LevelSums};

/// One row of the availability query: a SKU, one of its levels (if any) with its location
/// and what the asking user's cart hold keeps of it.
#[derive(Debug, FromQueryResult)]
struct AvailabilityRow {
    sku: String,
    name: String,
    weight_grams: i32,
    hs_code: String,
    origin_country: String,
    low_stock_threshold: i32,
    available_total: i64,
    version_total: i64,
    change_seq: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
    location_id: Option<String>,
    on_hand: Option<i64>,
    reserved: Option<i64>,
    level_version: Option<i64>,
    lat: Option<f64>,
    lng: Option<f64>,
    country_code: Option<String>,
    held: Option<i64>,
}

/// Availability of `skus`, per location (nearest first when `near` is given) and in total —
/// the SKUs, their levels and locations and the units `hold` (the asking user's cart hold)
/// keeps, which count as available to that user, in one query. Unknown SKUs are refused.
pub async fn availability<C: ConnectionTrait>(
    conn: &C,
    skus: &[String],
    near: Option<&GeoPoint>,
    location_ids: &[String],
    hold: Option<&str>,
) -> Result<Vec<pb::SkuAvailability>, InventoryError> {
    let (s, l, p, h, r) = (
        Alias::new("s"),
        Alias::new("l"),
        Alias::new("p"),
        Alias::new("h"),
        Alias::new("r"),
    );
    let mut level_join =
        Expr::col((l.clone(), level::Column::Sku)).equals((s.clone(), sku::Column::Sku));
    if !location_ids.is_empty() {
        level_join = level_join.and(
            Expr::col((l.clone(), level::Column::LocationId)).is_in(location_ids.iter().cloned()),
        );
    }
    let active = [
        ReservationStatus::Active.as_str(),
        ReservationStatus::Partial.as_str(),
    ];
    let remaining = Expr::col((h.clone(), reservation_line::Column::Quantity))
        .sub(Expr::col((h.clone(), reservation_line::Column::Committed)))
        .sub(Expr::col((h.clone(), reservation_line::Column::Released)));
    let held = Expr::case(
        Expr::col((r.clone(), reservation::Column::ReservationId)).is_not_null(),
        remaining,
    )
    .finally(0);
    let mut query = Query::select();
    query
        .columns([
            (s.clone(), sku::Column::Sku),
            (s.clone(), sku::Column::Name),
            (s.clone(), sku::Column::WeightGrams),
            (s.clone(), sku::Column::HsCode),
            (s.clone(), sku::Column::OriginCountry),
            (s.clone(), sku::Column::LowStockThreshold),
            (s.clone(), sku::Column::ChangeSeq),
            (s.clone(), sku::Column::UpdatedAt),
        ])
        .expr_as(
            Expr::col((s.clone(), sku::Column::Available)),
            Alias::new("available_total"),
        )
        .expr_as(
            Expr::col((s.clone(), sku::Column::Version)),
            Alias::new("version_total"),
        )
        .columns([
            (l.clone(), level::Column::LocationId),
            (l.clone(), level::Column::OnHand),
            (l.clone(), level::Column::Reserved),
        ])
        .expr_as(
            Expr::col((l.clone(), level::Column::Version)),
            Alias::new("level_version"),
        )
        .columns([
            (p.clone(), location::Column::Lat),
            (p.clone(), location::Column::Lng),
            (p.clone(), location::Column::CountryCode),
        ])
        .expr_as(held, Alias::new("held"))
        .from_as(sku::Entity, s.clone())
        .join_as(JoinType::LeftJoin, level::Entity, l.clone(), level_join)
        .join_as(
            JoinType::LeftJoin,
            location::Entity,
            p.clone(),
            Expr::col((p.clone(), location::Column::LocationId))
                .equals((l.clone(), level::Column::LocationId)),
        )
        .join_as(
            JoinType::LeftJoin,
            reservation_line::Entity,
            h.clone(),
            Expr::col((h.clone(), reservation_line::Column::ReservationId))
                .eq(hold.unwrap_or_default())
                .and(
                    Expr::col((h.clone(), reservation_line::Column::Sku))
                        .equals((l.clone(), level::Column::Sku)),
                )
                .and(
                    Expr::col((h.clone(), reservation_line::Column::LocationId))
                        .equals((l.clone(), level::Column::LocationId)),
                ),
        )
        .join_as(
            JoinType::LeftJoin,
            reservation::Entity,
            r.clone(),
            Expr::col((r.clone(), reservation::Column::ReservationId))
                .equals((h.clone(), reservation_line::Column::ReservationId))
                .and(Expr::col((r.clone(), reservation::Column::Status)).is_in(active)),
        )
        .and_where(Expr::col((s.clone(), sku::Column::Sku)).is_in(skus.iter().cloned()));
    let backend = conn.get_database_backend();
    let rows = AvailabilityRow::find_by_statement(backend.build(&query))
        .all(conn)
        .await?;
    let mut by_sku: BTreeMap<String, (sku::Model, Vec<pb::LocationAvailability>)> = BTreeMap::new();
    for row in rows {
        let entry = by_sku.entry(row.sku.clone()).or_insert_with(|| {
            let catalog = sku::Model {
                sku: row.sku.clone(),
                name: row.name.clone(),
                weight_grams: row.weight_grams,
                hs_code: row.hs_code.clone(),
                origin_country: row.origin_country.clone(),
                low_stock_threshold: row.low_stock_threshold,
                available: row.available_total,
                version: row.version_total,
                change_seq: row.change_seq,
                updated_at: row.updated_at,
            };
            (catalog, Vec::new())
        });
        // A level at a location that is not registered (yet) is not offered.
        let (Some(location_id), Some(on_hand), Some(reserved), Some(lat), Some(lng)) =
            (row.location_id, row.on_hand, row.reserved, row.lat, row.lng)
        else {
            continue;
        };
        let own = std::cmp::max(row.held.unwrap_or(0), 0);
        let point = GeoPoint { lat, lng };
        entry.1.push(pb::LocationAvailability {
            location_id,
            on_hand,
            reserved: reserved - own,
            available: on_hand - reserved + own,
            version: row.level_version.unwrap_or(0),
            distance_km: near.map_or(0.0, |near| distance_km(near, &point)),
            point: Some(point),
            country_code: row.country_code.unwrap_or_default(),
        });
    }
    if let Some(missing) = skus.iter().find(|s| !by_sku.contains_key(*s)) {
        return Err(InventoryError::UnknownSku(missing.clone()));
    }
    Ok(skus
        .iter()
        .filter_map(|wanted| by_sku.remove(wanted))
        .map(|(catalog, mut locations)| {
            locations.sort_by(|a, b| {
                a.distance_km
                    .total_cmp(&b.distance_km)
                    .then_with(|| a.location_id.cmp(&b.location_id))
            });
            pb::SkuAvailability {
                total_available: locations.iter().map(|l| l.available).sum(),
                sku: Some(sku_to_proto(&catalog)),
                locations,
            }
        })
        .collect())
}

/// A catalog row as the API shows it.
pub fn sku_to_proto(sku: &sku::Model) -> pb::Sku {
    pb::Sku {
        sku: sku.sku.clone(),
        name: sku.name.clone(),
        weight_grams: u32::try_from(sku.weight_grams).unwrap_or(0),
        hs_code: sku.hs_code.clone(),
        origin_country: sku.origin_country.clone(),
        low_stock_threshold: u32::try_from(sku.low_stock_threshold).unwrap_or(0),
    }
}

/// The SKUs changed after `since`, latest state each, in change order, at most `limit + 1`
/// (one more than asked tells the caller there is more).
pub async fn changes_since<C: ConnectionTrait>(
    conn: &C,
    since: i64,
    skus: &[String],
    limit: u64,
) -> Result<Vec<sku::Model>, InventoryError> {
    let mut query = sku::Entity::find().filter(sku::Column::ChangeSeq.gt(since));
    if !skus.is_empty() {
        query = query.filter(sku::Column::Sku.is_in(skus.to_vec()));
    }
    Ok(query
        .order_by_asc(sku::Column::ChangeSeq)
        .order_by_asc(sku::Column::Sku)
        .limit(limit + 1)
        .all(conn)
        .await?)
}

/// Every SKU of one sequencer batch.
pub async fn batch<C: ConnectionTrait>(
    conn: &C,
    seq: i64,
    skus: &[String],
) -> Result<Vec<sku::Model>, InventoryError> {
    let mut query = sku::Entity::find().filter(sku::Column::ChangeSeq.eq(seq));
    if !skus.is_empty() {
        query = query.filter(sku::Column::Sku.is_in(skus.to_vec()));
    }
    Ok(query.order_by_asc(sku::Column::Sku).all(conn).await?)
}

/// The three sums the audit compares: stored levels, the ledger, the active reservations.
pub async fn audit_sums<C: ConnectionTrait>(
    conn: &C,
    skus: &[String],
) -> Result<(LevelSums, LevelSums, LevelSums), InventoryError> {
    let filter = |column: &str| {
        if skus.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = skus
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "''")))
                .collect();
            format!(" WHERE {column} IN ({})", quoted.join(", "))
        }
    };
    let stored = sums(
        conn,
        &format!(
            "SELECT sku, location_id, on_hand, reserved FROM stock_levels{}",
            filter("sku")
        ),
    )
    .await?;
    let ledger = sums(
        conn,
        &format!(
            "SELECT sku, location_id, CAST(SUM(on_hand_delta) AS BIGINT), CAST(SUM(reserved_delta) AS BIGINT) \
             FROM movements{} GROUP BY sku, location_id",
            filter("sku")
        ),
    )
    .await?;
    let active = sums(
        conn,
        &format!(
            "SELECT l.sku, l.location_id, CAST(SUM(l.quantity - l.committed - l.released) AS BIGINT), CAST(0 AS BIGINT) \
             FROM reservation_lines l JOIN reservations r ON r.reservation_id = l.reservation_id \
             WHERE r.status IN ('active', 'partial'){} GROUP BY l.sku, l.location_id",
            if skus.is_empty() { String::new() } else { filter("l.sku").replacen(" WHERE ", " AND ", 1) }
        ),
    )
    .await?;
    Ok((stored, ledger, active))
}

async fn sums<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<LevelSums, InventoryError> {
    let backend: DbBackend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await?;
    let mut out = LevelSums::new();
    for row in rows {
        let sku: String = row.try_get_by_index(0)?;
        let location: String = row.try_get_by_index(1)?;
        let a: i64 = row.try_get_by_index(2)?;
        let b: i64 = row.try_get_by_index(3)?;
        out.insert((sku, location), (a, b));
    }
    Ok(out)
}

/// A page of a level's ledger, oldest first, after movement id `after`.
pub async fn movements<C: ConnectionTrait>(
    conn: &C,
    sku: &str,
    location_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<pb::Movement>, InventoryError> {
    let mut query = movement::Entity::find()
        .filter(movement::Column::Sku.eq(sku))
        .filter(movement::Column::Id.gt(after));
    if !location_id.is_empty() {
        query = query.filter(movement::Column::LocationId.eq(location_id));
    }
    Ok(query
        .order_by_asc(movement::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| pb::Movement {
            movement_id: m.id,
            kind: MovementKind::parse(&m.kind)
                .map_or(pb::MovementKind::Unspecified, MovementKind::to_proto)
                .into(),
            sku: m.sku,
            location_id: m.location_id,
            on_hand_delta: m.on_hand_delta,
            reserved_delta: m.reserved_delta,
            reference: m.reference,
            reason: m.reason,
            at: Some(to_timestamp(m.created_at)),
        })
        .collect())
}
