//! Operator operations: the catalog (SKUs, locations), receipts, adjustments and the restock
//! of returned goods. Each is one transaction with its ledger movements.

use chrono::Utc;
use oms_platform::idempotency::IdempotentCall;
use oms_proto::inventory::v1 as pb;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use crate::{
    domain::{InventoryError, MovementKind},
    store::{
        MovementNote, Store, ensure_level,
        entities::{location, sku},
        find_level, level_to_proto, move_stock, require_locations, require_skus,
    },
};

/// Creates or updates a SKU.
pub async fn upsert_sku(store: &Store, sku: &pb::Sku) -> Result<pb::Sku, InventoryError> {
    let row = sku::ActiveModel {
        sku: Set(sku.sku.clone()),
        name: Set(sku.name.clone()),
        weight_grams: Set(i32::try_from(sku.weight_grams).unwrap_or(i32::MAX)),
        hs_code: Set(sku.hs_code.clone()),
        origin_country: Set(sku.origin_country.clone()),
        low_stock_threshold: Set(i32::try_from(sku.low_stock_threshold).unwrap_or(i32::MAX)),
        available: Set(0),
        version: Set(0),
        change_seq: Set(0),
        updated_at: Set(Utc::now()),
    };
    sku::Entity::insert(row)
        .on_conflict(
            OnConflict::column(sku::Column::Sku)
                .update_columns([
                    sku::Column::Name,
                    sku::Column::WeightGrams,
                    sku::Column::HsCode,
                    sku::Column::OriginCountry,
                    sku::Column::LowStockThreshold,
                    sku::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&store.db)
        .await?;
    Ok(sku.clone())
}

/// Creates or updates a location.
pub async fn upsert_location<C: ConnectionTrait>(
    conn: &C,
    place: &pb::Location,
) -> Result<pb::Location, InventoryError> {
    let point = place.point.unwrap_or_default();
    let row = location::ActiveModel {
        location_id: Set(place.location_id.clone()),
        name: Set(place.name.clone()),
        lat: Set(point.lat),
        lng: Set(point.lng),
        country_code: Set(place.country_code.clone()),
    };
    location::Entity::insert(row)
        .on_conflict(
            OnConflict::column(location::Column::LocationId)
                .update_columns([
                    location::Column::Name,
                    location::Column::Lat,
                    location::Column::Lng,
                    location::Column::CountryCode,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(place.clone())
}

/// Changes on-hand stock of one level by `delta` (a receipt, or a signed adjustment).
pub async fn change_on_hand(
    store: &Store,
    sku: &str,
    location_id: &str,
    delta: i64,
    note: MovementNote<'_>,
    call: &IdempotentCall,
) -> Result<pb::StockLevel, InventoryError> {
    let txn = store.begin().await?;
    require_skus(&txn, [sku]).await?;
    require_locations(&txn, [location_id]).await?;
    ensure_level(&txn, sku, location_id).await?;
    if !move_stock(&txn, sku, location_id, delta, 0, note).await? {
        let current = find_level(&txn, sku, location_id).await?;
        txn.rollback().await?;
        let (on_hand, reserved) = current.map_or((0, 0), |l| (l.on_hand, l.reserved));
        return Err(InventoryError::BelowReserved {
            sku: sku.to_owned(),
            location_id: location_id.to_owned(),
            delta,
            on_hand_after: on_hand + delta,
            reserved,
        });
    }
    let level = find_level(&txn, sku, location_id)
        .await?
        .map(|l| level_to_proto(&l, 0))
        .unwrap_or_default();
    match note.kind {
        MovementKind::Receipt => {
            call.remember(
                &txn,
                &pb::ReceiveResponse {
                    level: Some(level.clone()),
                },
            )
            .await?
        }
        _ => {
            call.remember(
                &txn,
                &pb::AdjustResponse {
                    level: Some(level.clone()),
                },
            )
            .await?
        }
    }
    store.commit(txn).await?;
    Ok(level)
}

/// Returned goods arrive: sellable units go back on hand, damaged ones are written off (a
/// zero movement that records them).
pub async fn restock(
    store: &Store,
    request: &pb::RestockRequest,
    call: &IdempotentCall,
) -> Result<pb::RestockResponse, InventoryError> {
    let txn = store.begin().await?;
    require_skus(&txn, request.lines.iter().map(|l| l.sku.as_str())).await?;
    require_locations(&txn, request.lines.iter().map(|l| l.location_id.as_str())).await?;
    let reference = format!("return {} of order {}", request.return_id, request.order_id);
    let mut lines = request.lines.clone();
    lines.sort_by(|a, b| (&a.sku, &a.location_id).cmp(&(&b.sku, &b.location_id)));
    let mut written_off = 0;
    let mut levels = Vec::new();
    for line in &lines {
        let units = i64::from(line.quantity);
        let sellable = line.condition == pb::ItemCondition::Sellable as i32;
        let (kind, delta, reason) = if sellable {
            (
                MovementKind::ReturnRestock,
                units,
                "returned sellable".to_owned(),
            )
        } else {
            written_off += line.quantity;
            (
                MovementKind::WriteOff,
                0,
                format!("returned damaged: {units} written off"),
            )
        };
        ensure_level(&txn, &line.sku, &line.location_id).await?;
        let note = MovementNote {
            kind,
            reference: &reference,
            reason: &reason,
        };
        move_stock(&txn, &line.sku, &line.location_id, delta, 0, note).await?;
        if let Some(level) = find_level(&txn, &line.sku, &line.location_id).await? {
            levels.push(level_to_proto(&level, 0));
        }
    }
    let response = pb::RestockResponse {
        levels,
        written_off,
    };
    call.remember(&txn, &response).await?;
    store.commit(txn).await?;
    Ok(response)
}
