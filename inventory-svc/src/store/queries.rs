//! Read-only queries: availability, the sync feed, the audit sums, the ledger.

use std::collections::BTreeMap;

use oms_platform::{events::to_timestamp, geo::distance_km};
use oms_proto::{common::v1::GeoPoint, inventory::v1 as pb};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::entities::{level, location, movement, sku};
use crate::domain::{InventoryError, MovementKind, audit::LevelSums};

/// Availability of `skus`, per location (nearest first when `near` is given) and in total;
/// `holds` are the asking user's own held units per (sku, location), counted as available.
pub async fn availability<C: ConnectionTrait>(
    conn: &C,
    catalog: &BTreeMap<String, sku::Model>,
    near: Option<&GeoPoint>,
    location_ids: &[String],
    holds: &BTreeMap<(String, String), i64>,
) -> Result<Vec<pb::SkuAvailability>, InventoryError> {
    let mut query = level::Entity::find().filter(level::Column::Sku.is_in(catalog.keys().cloned()));
    if !location_ids.is_empty() {
        query = query.filter(level::Column::LocationId.is_in(location_ids.to_vec()));
    }
    let levels = query.all(conn).await?;
    let places: BTreeMap<String, location::Model> = location::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(|l| (l.location_id.clone(), l))
        .collect();
    let mut by_sku: BTreeMap<&str, Vec<pb::LocationAvailability>> = BTreeMap::new();
    for level in &levels {
        let Some(place) = places.get(&level.location_id) else {
            continue;
        };
        let point = GeoPoint {
            lat: place.lat,
            lng: place.lng,
        };
        let own = holds
            .get(&(level.sku.clone(), level.location_id.clone()))
            .copied()
            .unwrap_or(0);
        by_sku
            .entry(level.sku.as_str())
            .or_default()
            .push(pb::LocationAvailability {
                location_id: level.location_id.clone(),
                on_hand: level.on_hand,
                reserved: level.reserved - own,
                available: level.on_hand - level.reserved + own,
                version: level.version,
                distance_km: near.map_or(0.0, |near| distance_km(near, &point)),
                point: Some(point),
                country_code: place.country_code.clone(),
            });
    }
    Ok(catalog
        .values()
        .map(|sku| {
            let mut locations = by_sku.remove(sku.sku.as_str()).unwrap_or_default();
            locations.sort_by(|a, b| {
                a.distance_km
                    .total_cmp(&b.distance_km)
                    .then_with(|| a.location_id.cmp(&b.location_id))
            });
            pb::SkuAvailability {
                total_available: locations.iter().map(|l| l.available).sum(),
                sku: Some(sku_to_proto(sku)),
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
