//! The delivery history: a row per outbound shipment handed to its carrier, completed when it
//! is delivered, and the centers parcels leave from. Read back as the CSV models learn from.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use oms_eta_model::history::{Delivery, Weather};
use oms_proto::fulfillment::v1 as ful;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use super::Store;
use crate::domain::{TrackingError, history::Dispatch};

/// Where parcels leave from.
pub mod center {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "centers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub center_id: String,
        pub lat: f64,
        pub lng: f64,
        pub country_code: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One outbound shipment of the history.
pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "delivery_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub shipment_id: String,
        pub center_id: String,
        pub dispatched_at: DateTimeUtc,
        pub dest_lat: f64,
        pub dest_lng: f64,
        pub carrier: String,
        pub method: String,
        pub delivered_at: Option<DateTimeUtc>,
        pub duration_min: Option<f64>,
        pub precip_mm: Option<f64>,
        pub snow_cm: Option<f64>,
        pub temp_c: Option<f64>,
        pub wind_kmh: Option<f64>,
        pub visibility_km: Option<f64>,
        pub traffic_index: Option<f64>,
        /// The sources were asked (whatever they answered).
        pub enriched: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A history row as the models read it; `None` while its center is unknown.
fn as_delivery(row: delivery::Model, centers: &HashMap<String, center::Model>) -> Option<Delivery> {
    let origin = centers.get(&row.center_id)?;
    Some(Delivery {
        dispatched_at: row.dispatched_at,
        origin: (origin.lat, origin.lng),
        destination: (row.dest_lat, row.dest_lng),
        carrier: row.carrier,
        method: row.method,
        weather: Weather {
            precip_mm: row.precip_mm,
            snow_cm: row.snow_cm,
            temp_c: row.temp_c,
            wind_kmh: row.wind_kmh,
            visibility_km: row.visibility_km,
        },
        traffic_index: row.traffic_index,
        holiday: None,
        center_load: None,
        duration_min: row.duration_min,
    })
}

/// The centers `rows` leave from, by id (one query).
async fn centers_of<C: ConnectionTrait>(
    conn: &C,
    rows: &[delivery::Model],
) -> Result<HashMap<String, center::Model>, TrackingError> {
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.center_id.as_str()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(center::Entity::find()
        .filter(center::Column::CenterId.is_in(ids.into_iter().map(str::to_owned)))
        .all(conn)
        .await?
        .into_iter()
        .map(|c| (c.center_id.clone(), c))
        .collect())
}

impl Store {
    /// Records or updates centers (each at most once per call).
    pub async fn upsert_centers<'a, C: ConnectionTrait>(
        &self,
        conn: &C,
        centers: impl IntoIterator<Item = &'a ful::FulfillmentCenter>,
    ) -> Result<(), TrackingError> {
        let rows: Vec<center::ActiveModel> = centers
            .into_iter()
            .map(|c| {
                let point = c.point.unwrap_or_default();
                center::ActiveModel {
                    center_id: Set(c.center_id.clone()),
                    lat: Set(point.lat),
                    lng: Set(point.lng),
                    country_code: Set(c.country_code.clone()),
                }
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        center::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(center::Column::CenterId)
                    .update_columns([
                        center::Column::Lat,
                        center::Column::Lng,
                        center::Column::CountryCode,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Records dispatched shipments, and the delivery of those that arrived (one statement).
    pub async fn record_dispatches<C: ConnectionTrait>(
        &self,
        conn: &C,
        dispatches: &[Dispatch],
    ) -> Result<(), TrackingError> {
        if dispatches.is_empty() {
            return Ok(());
        }
        let rows = dispatches.iter().map(|d| delivery::ActiveModel {
            shipment_id: Set(d.shipment_id.clone()),
            center_id: Set(d.center_id.clone()),
            dispatched_at: Set(d.dispatched_at),
            dest_lat: Set(d.destination.0),
            dest_lng: Set(d.destination.1),
            carrier: Set(d.carrier.clone()),
            method: Set(d.method.clone()),
            delivered_at: Set(d.delivered_at),
            duration_min: Set(d
                .delivered_at
                .map(|at| (at - d.dispatched_at).num_seconds() as f64 / 60.0)),
            precip_mm: Set(None),
            snow_cm: Set(None),
            temp_c: Set(None),
            wind_kmh: Set(None),
            visibility_km: Set(None),
            traffic_index: Set(None),
            enriched: Set(false),
        });
        delivery::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(delivery::Column::ShipmentId)
                    .update_columns([delivery::Column::DeliveredAt, delivery::Column::DurationMin])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Delivered shipments dispatched at or after `since` (all without it), oldest first, at
    /// most `limit`, as the models' history rows (those whose center is unknown are left out).
    pub async fn delivery_history(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u64,
    ) -> Result<Vec<Delivery>, TrackingError> {
        let mut rows = delivery::Entity::find().filter(delivery::Column::DurationMin.is_not_null());
        if let Some(since) = since {
            rows = rows.filter(delivery::Column::DispatchedAt.gte(since));
        }
        let rows = rows
            .order_by_asc(delivery::Column::DispatchedAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let centers = centers_of(&self.db, &rows).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| as_delivery(row, &centers))
            .collect())
    }

    /// The history rows of some shipments (those recorded, whose center is known), by id.
    pub async fn deliveries_by_shipment<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &BTreeSet<&str>,
    ) -> Result<HashMap<String, Delivery>, TrackingError> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::ShipmentId.is_in(ids.iter().map(|id| (*id).to_owned())))
            .all(conn)
            .await?;
        let centers = centers_of(conn, &rows).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let id = row.shipment_id.clone();
                as_delivery(row, &centers).map(|d| (id, d))
            })
            .collect())
    }

    /// Rows whose conditions the sources have not been asked for yet, oldest first, with
    /// their origin point (rows of unknown centers wait for their center).
    pub async fn unenriched(
        &self,
        limit: u64,
    ) -> Result<Vec<(delivery::Model, (f64, f64))>, TrackingError> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::Enriched.eq(false))
            .order_by_asc(delivery::Column::DispatchedAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let centers = centers_of(&self.db, &rows).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let origin = centers.get(&row.center_id).map(|c| (c.lat, c.lng))?;
                Some((row, origin))
            })
            .collect())
    }

    /// Stores what the sources said of a row (unknowns stay empty) and marks it asked.
    pub async fn save_conditions(
        &self,
        shipment_id: &str,
        weather: Weather,
        traffic_index: Option<f64>,
    ) -> Result<(), TrackingError> {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::PrecipMm, Expr::value(weather.precip_mm))
            .col_expr(delivery::Column::SnowCm, Expr::value(weather.snow_cm))
            .col_expr(delivery::Column::TempC, Expr::value(weather.temp_c))
            .col_expr(delivery::Column::WindKmh, Expr::value(weather.wind_kmh))
            .col_expr(
                delivery::Column::VisibilityKm,
                Expr::value(weather.visibility_km),
            )
            .col_expr(delivery::Column::TrafficIndex, Expr::value(traffic_index))
            .col_expr(delivery::Column::Enriched, Expr::value(true))
            .filter(delivery::Column::ShipmentId.eq(shipment_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
