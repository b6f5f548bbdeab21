//! The delivery history: a row per outbound shipment handed to its carrier, completed when it
//! is delivered, and the centers parcels leave from. Read back as the CSV models learn from.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use oms_eta_model::history::{Delivery, Weather};
use oms_proto::fulfillment::v1 as ful;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
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
        /// Parcels it can ship per day (0: unknown).
        pub daily_capacity: i32,
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
        /// ISO 3166-1 alpha-2 of the buyer's address ("" when unknown).
        pub dest_country: String,
        /// A nationwide public holiday at the destination on the day of dispatch.
        pub holiday: Option<bool>,
        /// The center's dispatches in the 24 hours before this one over its daily capacity.
        pub center_load: Option<f64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What was true at a dispatch besides the shipment itself; `None`: unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Conditions {
    /// At the origin, in the hour of dispatch.
    pub weather: Weather,
    /// Around the origin, in the hour of dispatch.
    pub traffic_index: Option<f64>,
    /// A nationwide public holiday at the destination that day.
    pub holiday: Option<bool>,
    /// The center's load (see [`delivery::Model::center_load`]).
    pub center_load: Option<f64>,
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
        holiday: row.holiday,
        center_load: row.center_load,
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
                    daily_capacity: Set(i32::try_from(c.daily_capacity).unwrap_or(i32::MAX)),
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
                        center::Column::DailyCapacity,
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
                .map(|at| (at - d.dispatched_at).num_milliseconds() as f64 / 60_000.0)),
            precip_mm: Set(None),
            snow_cm: Set(None),
            temp_c: Set(None),
            wind_kmh: Set(None),
            visibility_km: Set(None),
            traffic_index: Set(None),
            enriched: Set(false),
            dest_country: Set(d.dest_country.clone()),
            holiday: Set(None),
            center_load: Set(None),
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

    /// Delivered shipments (that took some time) dispatched at or after `since` (all without
    /// it), oldest first, at most `limit`, as the models' history rows (those whose center is
    /// unknown are left out).
    pub async fn delivery_history(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u64,
    ) -> Result<Vec<Delivery>, TrackingError> {
        let mut rows = delivery::Entity::find().filter(delivery::Column::DurationMin.gt(0.0));
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

    /// Rows whose conditions have not been filled in yet, oldest first, with their center
    /// (rows of unknown centers wait for their center).
    pub async fn unenriched(
        &self,
        limit: u64,
    ) -> Result<Vec<(delivery::Model, center::Model)>, TrackingError> {
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
                let center = centers.get(&row.center_id)?.clone();
                Some((row, center))
            })
            .collect())
    }

    /// When each of `centers` handed parcels to carriers in `[from, to)`, oldest first.
    pub async fn dispatch_times(
        &self,
        centers: &BTreeSet<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<String, Vec<DateTime<Utc>>>, TrackingError> {
        let rows: Vec<(String, DateTime<Utc>)> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::CenterId)
            .column(delivery::Column::DispatchedAt)
            .filter(delivery::Column::CenterId.is_in(centers.iter().map(|c| (*c).to_owned())))
            .filter(delivery::Column::DispatchedAt.gte(from))
            .filter(delivery::Column::DispatchedAt.lt(to))
            .order_by_asc(delivery::Column::DispatchedAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut times: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
        for (center, at) in rows {
            times.entry(center).or_default().push(at);
        }
        Ok(times)
    }

    /// Stores the rows' conditions at dispatch (unknowns stay empty) and marks them done, in
    /// one statement (what else the consumer changed meanwhile is kept).
    pub async fn save_conditions(
        &self,
        done: Vec<(delivery::Model, Conditions)>,
    ) -> Result<(), TrackingError> {
        if done.is_empty() {
            return Ok(());
        }
        let rows = done.into_iter().map(|(row, conditions)| {
            let Conditions {
                weather,
                traffic_index,
                holiday,
                center_load,
            } = conditions;
            let mut row: delivery::ActiveModel = row.into();
            row.precip_mm = Set(weather.precip_mm);
            row.snow_cm = Set(weather.snow_cm);
            row.temp_c = Set(weather.temp_c);
            row.wind_kmh = Set(weather.wind_kmh);
            row.visibility_km = Set(weather.visibility_km);
            row.traffic_index = Set(traffic_index);
            row.holiday = Set(holiday);
            row.center_load = Set(center_load);
            row.enriched = Set(true);
            row
        });
        delivery::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(delivery::Column::ShipmentId)
                    .update_columns([
                        delivery::Column::PrecipMm,
                        delivery::Column::SnowCm,
                        delivery::Column::TempC,
                        delivery::Column::WindKmh,
                        delivery::Column::VisibilityKm,
                        delivery::Column::TrafficIndex,
                        delivery::Column::Holiday,
                        delivery::Column::CenterLoad,
                        delivery::Column::Enriched,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }
}
