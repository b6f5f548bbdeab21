//! Carrier status updates: a webhook payload in the carrier's own format is normalised by its
//! adapter, each report is applied once (carriers repeat themselves) and only ever moves a
//! shipment forward; every move is published as a shipment event.

use chrono::Utc;
use oms_platform::{events::to_timestamp, outbox};
use oms_proto::fulfillment::v1 as pb;

use crate::{
    domain::{
        FulfillmentError,
        carriers::{self, CarrierReport},
        shipment,
    },
    events,
    store::{Store, status_of},
};

/// Applies a carrier webhook payload; returns the shipment as it is now and whether anything
/// changed.
pub async fn report(
    store: &Store,
    carrier: &str,
    payload: &[u8],
) -> Result<(pb::Shipment, bool), FulfillmentError> {
    let reports = carriers::parse(carrier, payload)?;
    let mut last = None;
    let mut applied = false;
    for report in &reports {
        let (snapshot, changed) = apply_one(store, carrier, report).await?;
        applied |= changed;
        last = Some(snapshot);
    }
    last.map(|snapshot| (snapshot, applied))
        .ok_or_else(|| FulfillmentError::Corrupt("carrier payload without reports".into()))
}

async fn apply_one(
    store: &Store,
    carrier: &str,
    report: &CarrierReport,
) -> Result<(pb::Shipment, bool), FulfillmentError> {
    // A concurrent update of the same shipment makes the save lose its race; read and retry.
    for _ in 0..5 {
        let txn = store.begin().await?;
        let (mut snapshot, version) = store
            .shipment_by_tracking(&txn, carrier, &report.tracking_number)
            .await?;
        if !store
            .first_report(&txn, carrier, &report.event_id, &snapshot.shipment_id)
            .await?
        {
            txn.rollback().await?;
            return Ok((snapshot, false));
        }
        let previous = status_of(&snapshot);
        let next = shipment::next(previous, report.status);
        snapshot.events.push(pb::CarrierEvent {
            status: report.status.to_proto().into(),
            at: Some(to_timestamp(report.at)),
            description: if next.is_some() {
                report.description.clone()
            } else {
                format!("{} (out of order; status kept)", report.description)
            },
            point: report.point,
        });
        if let Some(next) = next {
            snapshot.status = next.to_proto().into();
        }
        if !store.save_shipment(&txn, &snapshot, version).await? {
            txn.rollback().await?;
            continue;
        }
        if next.is_some() {
            outbox::enqueue(
                &txn,
                &events::shipment_changed(snapshot.clone(), previous.to_proto())?,
            )
            .await?;
        }
        store.commit(txn).await?;
        tracing::debug!(shipment = %snapshot.shipment_id, status = ?report.status, received = %Utc::now(), "carrier report applied");
        return Ok((snapshot, next.is_some()));
    }
    Err(FulfillmentError::Conflict(format!(
        "shipment {} kept changing; report {} not applied, retry",
        report.tracking_number, report.event_id
    )))
}
