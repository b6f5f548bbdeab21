//! GPS ingest: each accepted fix joins its shipment's breadcrumb track, moves the ETA, and is
//! announced on the bus (positions and ETAs reach the buyer's stream from there); the first
//! time a parcel enters the destination geofence the buyer is told it is arriving.

use std::sync::Arc;

use chrono::Utc;
use oms_platform::{
    bus::Area,
    events::{envelope, to_timestamp},
    outbox::{self, Outbox},
};
use oms_proto::{
    common::v1::GeoPoint,
    events::v1::{EtaUpdated, PositionRecorded, envelope::Payload},
    tracking::v1::{Eta, PositionRejection, PositionReport},
};
use sea_orm::TransactionTrait;
use tokio::sync::Notify;

use crate::{
    consumers,
    domain::{
        TrackingError,
        effects::Happening,
        eta::{EtaInput, EtaModel},
        positions::{self, Limits, Verdict},
    },
    store::Store,
};

/// Fixes the ETA model looks back on.
const TRACK_WINDOW: u64 = 10;

/// What a batch came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// Kept.
    pub accepted: u32,
    /// Repeats of a kept fix.
    pub duplicates: u32,
    /// Refused, with reasons.
    pub rejections: Vec<PositionRejection>,
}

/// Everything ingest needs.
pub struct Ingest {
    /// Tracks, ETAs, the feed.
    pub store: Store,
    /// The ETA model.
    pub model: Arc<dyn EtaModel>,
    /// Plausibility limits.
    pub limits: Limits,
    /// Wakes the relay after commits.
    pub outbox: Outbox,
    /// Wakes the feed tail after commits that wrote alerts.
    pub written: Arc<Notify>,
}

impl Ingest {
    /// Takes one report (`index` names it in the tally).
    pub async fn take(
        &self,
        index: u32,
        report: &PositionReport,
        tally: &mut Tally,
    ) -> Result<(), TrackingError> {
        match self.apply(report).await? {
            Ok(true) => tally.accepted += 1,
            Ok(false) => tally.duplicates += 1,
            Err(reason) => tally.rejections.push(PositionRejection { index, reason }),
        }
        Ok(())
    }

    /// `Ok(Ok(true))` kept, `Ok(Ok(false))` duplicate, `Ok(Err(reason))` refused.
    async fn apply(&self, report: &PositionReport) -> Result<Result<bool, String>, TrackingError> {
        let shipment = match self
            .store
            .shipment(&self.store.db, &report.shipment_id)
            .await
        {
            Ok(shipment) => shipment,
            Err(TrackingError::UnknownShipment(id)) => {
                return Ok(Err(format!("shipment_id: {id} is not a known shipment")));
            }
            Err(error) => return Err(error),
        };
        let previous = self
            .store
            .last_fix(&self.store.db, &report.device_id)
            .await?;
        let fix = match positions::check(report, previous.as_ref(), Utc::now(), &self.limits) {
            Ok(Verdict::Accept(fix)) => fix,
            Ok(Verdict::Duplicate) => return Ok(Ok(false)),
            Err(reason) => return Ok(Err(reason)),
        };
        let txn = self.store.db.begin().await?;
        if !self
            .store
            .insert_position(&txn, &report.device_id, &report.shipment_id, &fix)
            .await?
        {
            return Ok(Ok(false));
        }
        let track = self
            .store
            .recent_fixes(&txn, &report.shipment_id, TRACK_WINDOW)
            .await?;
        let destination = GeoPoint {
            lat: shipment.dest_lat,
            lng: shipment.dest_lng,
        };
        let window = shipment.window_start.zip(shipment.window_end);
        let now = Utc::now();
        let user = shipment.user_id.as_str();
        let recorded = envelope(
            Area::Tracking,
            &shipment.shipment_id,
            "position_recorded",
            user,
            Payload::PositionRecorded(PositionRecorded {
                shipment_id: shipment.shipment_id.clone(),
                order_id: shipment.order_id.clone(),
                point: Some(fix.point),
                recorded_at: Some(to_timestamp(fix.at)),
            }),
        )?;
        outbox::enqueue(&txn, &recorded).await?;
        if let Some(estimate) = self.model.estimate(&EtaInput {
            track: &track,
            destination,
            window,
            now,
        }) {
            let eta = Eta {
                shipment_id: shipment.shipment_id.clone(),
                order_id: shipment.order_id.clone(),
                estimated_arrival: Some(to_timestamp(estimate.arrival)),
                remaining_km: estimate.remaining_km,
                speed_kmh: estimate.speed_kmh,
                arriving: estimate.arriving,
                computed_at: Some(to_timestamp(now)),
                model: self.model.name().to_owned(),
            };
            let was_arriving = self.store.save_eta(&txn, &eta).await?;
            let updated = envelope(
                Area::Tracking,
                &shipment.shipment_id,
                "eta_updated",
                user,
                Payload::EtaUpdated(EtaUpdated { eta: Some(eta) }),
            )?;
            outbox::enqueue(&txn, &updated).await?;
            if estimate.arriving && !was_arriving {
                let arriving = Happening::Alert {
                    key: format!("arriving-{}", shipment.shipment_id),
                    user_id: user.to_owned(),
                    order_id: shipment.order_id.clone(),
                    title: "Your parcel is arriving".into(),
                    body: "The courier is almost at your door.".into(),
                    status: None,
                };
                consumers::record(&self.store, &txn, vec![arriving]).await?;
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        self.written.notify_one();
        Ok(Ok(true))
    }
}
