//! GPS ingest: a courier's call (a batch of fixes, or a chunk of its stream) is taken as a
//! whole. Each fix is checked against the device's previous fix; the accepted ones join their
//! shipments' breadcrumb tracks in one insert; each shipment's ETA moves once per call and is
//! announced once, with the newest position (the buyer's stream conflates positions anyway,
//! and the whole track stays readable). The first time a parcel enters the destination
//! geofence the buyer is told it is arriving.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Utc};
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

use crate::{
    consumers,
    domain::{
        TrackingError,
        effects::Happening,
        eta::{self, EtaInput, EtaModel},
        positions::{self, Fix, Limits, Verdict},
    },
    live::FeedHandoff,
    models::Registry,
    store::{NewFix, Store},
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
    /// The feed tail, given the alerts of each commit.
    pub feed: FeedHandoff,
    /// The serving delivery-time model, whose expected arrival at dispatch is the live ETA's
    /// prior.
    pub models: Arc<Registry>,
}

impl Ingest {
    /// Takes the reports of one call, numbered from `first_index` in the tally. With a
    /// `courier`, every report must be of a shipment assigned to that courier, or nothing is
    /// taken and the call fails as if the shipment did not exist.
    pub async fn take_all(
        &self,
        first_index: u32,
        reports: &[PositionReport],
        courier: Option<&str>,
        tally: &mut Tally,
    ) -> Result<(), TrackingError> {
        if reports.is_empty() {
            return Ok(());
        }
        let shipment_ids: BTreeSet<&str> = reports.iter().map(|r| r.shipment_id.as_str()).collect();
        let devices: BTreeSet<&str> = reports.iter().map(|r| r.device_id.as_str()).collect();
        let shipments = self
            .store
            .shipments_by_id(&self.store.db, &shipment_ids)
            .await?;
        if let Some(courier) = courier {
            for report in reports {
                let assigned = shipments
                    .get(&report.shipment_id)
                    .is_some_and(|shipment| shipment.courier_id == courier);
                if !assigned {
                    return Err(TrackingError::UnknownShipment(report.shipment_id.clone()));
                }
            }
        }
        let mut previous = self.store.last_fixes(&self.store.db, &devices).await?;
        let now = Utc::now();
        let mut accepted: Vec<NewFix> = Vec::with_capacity(reports.len());
        for (index, report) in (first_index..).zip(reports) {
            if !shipments.contains_key(&report.shipment_id) {
                tally.rejections.push(PositionRejection {
                    index,
                    reason: format!(
                        "shipment_id: {} is not a known shipment",
                        report.shipment_id
                    ),
                });
                continue;
            }
            match positions::check(report, previous.get(&report.device_id), now, &self.limits) {
                Ok(Verdict::Accept(fix)) => {
                    previous.insert(report.device_id.clone(), fix);
                    accepted.push(NewFix {
                        device_id: report.device_id.clone(),
                        shipment_id: report.shipment_id.clone(),
                        fix,
                    });
                }
                Ok(Verdict::Duplicate) => tally.duplicates += 1,
                Err(reason) => tally.rejections.push(PositionRejection { index, reason }),
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }

        let txn = self.store.db.begin().await?;
        let kept = self.store.insert_positions(&txn, &accepted).await?;
        let kept: Vec<&NewFix> = accepted
            .iter()
            .filter(|new| kept.contains(&(new.device_id.clone(), new.fix.at.timestamp_micros())))
            .collect();
        // A repeat of a fix another call kept meanwhile.
        tally.duplicates += u32::try_from(accepted.len() - kept.len()).unwrap_or(0);
        tally.accepted += u32::try_from(kept.len()).unwrap_or(u32::MAX);
        let mut newest: BTreeMap<&str, &Fix> = BTreeMap::new();
        for new in &kept {
            let entry = newest.entry(new.shipment_id.as_str()).or_insert(&new.fix);
            if new.fix.at > entry.at {
                *entry = &new.fix;
            }
        }
        let moved: BTreeSet<&str> = newest.keys().copied().collect();
        let was_arriving = self.store.arriving(&txn, &moved).await?;
        // With a model serving: each shipment's expected arrival at dispatch, and its length.
        let serving = self.models.serving().await;
        let priors: HashMap<String, (DateTime<Utc>, f64)> = match &serving {
            Some((_, model)) => self
                .store
                .deliveries_by_shipment(&txn, &moved)
                .await?
                .into_iter()
                .map(|(id, delivery)| {
                    let minutes = model.predict(&delivery).p50_min;
                    let arrival = delivery.dispatched_at
                        + chrono::Duration::seconds((minutes * 60.0).round() as i64);
                    (
                        id,
                        (arrival, oms_eta_model::features::distance_km(&delivery)),
                    )
                })
                .collect(),
            None => HashMap::new(),
        };
        let mut events = Vec::with_capacity(2 * newest.len());
        let mut etas = Vec::with_capacity(newest.len());
        let mut arriving = Vec::new();
        for (shipment_id, fix) in &newest {
            let Some(shipment) = shipments.get(*shipment_id) else {
                continue;
            };
            let user = shipment.user_id.as_str();
            events.push(envelope(
                Area::Tracking,
                shipment_id,
                "position_recorded",
                user,
                Payload::PositionRecorded(PositionRecorded {
                    shipment_id: shipment.shipment_id.clone(),
                    order_id: shipment.order_id.clone(),
                    point: Some(fix.point),
                    recorded_at: Some(to_timestamp(fix.at)),
                }),
            )?);
            let track = self
                .store
                .recent_fixes(&txn, shipment_id, TRACK_WINDOW)
                .await?;
            let input = EtaInput {
                track: &track,
                destination: GeoPoint {
                    lat: shipment.dest_lat,
                    lng: shipment.dest_lng,
                },
                window: shipment.window_start.zip(shipment.window_end),
                now,
            };
            let Some(mut estimate) = self.model.estimate(&input) else {
                continue;
            };
            let mut model_name = self.model.name().to_owned();
            if let (Some((version, _)), Some((prior, total_km))) =
                (&serving, priors.get(*shipment_id))
            {
                estimate = eta::with_prior(estimate, *prior, *total_km, now);
                model_name = format!("{model_name}+delivery-time-v{version}");
            }
            let before = was_arriving.contains(*shipment_id);
            let eta = Eta {
                shipment_id: shipment.shipment_id.clone(),
                order_id: shipment.order_id.clone(),
                estimated_arrival: Some(to_timestamp(estimate.arrival)),
                remaining_km: estimate.remaining_km,
                speed_kmh: estimate.speed_kmh,
                arriving: estimate.arriving || before,
                computed_at: Some(to_timestamp(now)),
                model: model_name,
            };
            events.push(envelope(
                Area::Tracking,
                shipment_id,
                "eta_updated",
                user,
                Payload::EtaUpdated(EtaUpdated {
                    eta: Some(eta.clone()),
                }),
            )?);
            if estimate.arriving && !before {
                arriving.push(Happening::Alert {
                    key: format!("arriving-{}", shipment.shipment_id),
                    user_id: user.to_owned(),
                    order_id: shipment.order_id.clone(),
                    title: "Your parcel is arriving".into(),
                    body: "The courier is almost at your door.".into(),
                    status: None,
                });
            }
            etas.push(eta);
        }
        self.store.save_etas(&txn, &etas).await?;
        outbox::enqueue_all(&txn, &events).await?;
        let alerts = consumers::record(&self.store, &txn, arriving).await?.feed;
        txn.commit().await?;
        self.outbox.wake();
        if !alerts.is_empty() {
            // The tail is gone only at shutdown; its replacement reads the feed table.
            let _ = self.feed.send(alerts);
        }
        Ok(())
    }
}
