//! Reading back what tracking knows of one order: its shipments, their breadcrumb tracks and
//! their latest ETAs, one query each however many shipments there are.

use std::collections::BTreeMap;

use oms_platform::events::to_timestamp;
use oms_proto::{
    common::v1::{GeoPoint, TimeWindow},
    tracking::v1::{Eta, ShipmentTracking, TrackPoint},
};
use prost::Message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    Store, corrupt,
    entities::{eta, position, shipment},
};
use crate::domain::TrackingError;

impl Store {
    /// The shipments of `order_id`, oldest first, each with its track and latest ETA, and
    /// whose order it is ("" when tracking has seen no shipment of it).
    pub async fn order_shipments(
        &self,
        order_id: &str,
    ) -> Result<(String, Vec<ShipmentTracking>), TrackingError> {
        let shipments = shipment::Entity::find()
            .filter(shipment::Column::OrderId.eq(order_id))
            .order_by_asc(shipment::Column::ShipmentId)
            .all(&self.db)
            .await?;
        let owner = shipments
            .first()
            .map(|s| s.user_id.clone())
            .unwrap_or_default();
        if shipments.is_empty() {
            return Ok((owner, Vec::new()));
        }
        let ids: Vec<String> = shipments.iter().map(|s| s.shipment_id.clone()).collect();
        let mut tracks: BTreeMap<String, Vec<TrackPoint>> = BTreeMap::new();
        for fix in position::Entity::find()
            .filter(position::Column::ShipmentId.is_in(ids.clone()))
            .order_by_asc(position::Column::RecordedAt)
            .all(&self.db)
            .await?
        {
            tracks.entry(fix.shipment_id).or_default().push(TrackPoint {
                point: Some(GeoPoint {
                    lat: fix.lat,
                    lng: fix.lng,
                }),
                recorded_at: Some(to_timestamp(fix.recorded_at)),
            });
        }
        let mut etas = BTreeMap::new();
        for row in eta::Entity::find()
            .filter(eta::Column::ShipmentId.is_in(ids))
            .all(&self.db)
            .await?
        {
            etas.insert(
                row.shipment_id,
                Eta::decode(row.eta.as_slice()).map_err(corrupt)?,
            );
        }
        let shipments = shipments
            .into_iter()
            .map(|s| ShipmentTracking {
                track: tracks.remove(&s.shipment_id).unwrap_or_default(),
                eta: etas.remove(&s.shipment_id),
                status: s.status,
                promised_window: (s.window_start.is_some() || s.window_end.is_some()).then(|| {
                    TimeWindow {
                        start: s.window_start.map(to_timestamp),
                        end: s.window_end.map(to_timestamp),
                    }
                }),
                shipment_id: s.shipment_id,
            })
            .collect();
        Ok((owner, shipments))
    }
}
