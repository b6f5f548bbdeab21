//! Carrier payloads: one adapter per carrier's webhook format turns its reports into
//! [`CarrierReport`]s with our statuses. Adding a carrier is adding an adapter.
//!
//! * `swiftship` — one JSON event per call: `{"event_id", "tracking_number", "status",
//!   "occurred_at" (RFC 3339), "location": {"lat", "lon"}?, "message"?}` with statuses
//!   `PICKED_UP`, `IN_TRANSIT`, `OUT_FOR_DELIVERY`, `DELIVERED`, `DELIVERY_FAILED`.
//! * `parcelnet` — a batch of scans per airway bill: `{"awb", "scans": [{"id", "code", "ts"
//!   (Unix seconds), "geo": "lat,lng"?, "remark"?}]}` with scan codes `PU` (picked up), `AR`/`DP`
//!   (arrived at / departed a hub), `OD` (out for delivery), `DL` (delivered), `NA`/`EX`
//!   (not delivered / exception).

use chrono::{DateTime, Utc};
use oms_proto::common::v1::GeoPoint;
use serde::Deserialize;

use super::shipment::Status;

/// One normalised carrier report.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierReport {
    /// The carrier's id of the report (for de-duplication).
    pub event_id: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// Our status.
    pub status: Status,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The carrier's words.
    pub description: String,
    /// Where, when the carrier says.
    pub point: Option<GeoPoint>,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// No adapter for this carrier.
    #[error("unknown carrier {0:?} (known: swiftship, parcelnet)")]
    UnknownCarrier(String),
    /// Not the carrier's format.
    #[error("{carrier} payload: {reason}")]
    Malformed {
        /// The carrier.
        carrier: &'static str,
        /// What is wrong, precisely.
        reason: String,
    },
}

/// The carriers with an adapter.
pub const CARRIERS: [&str; 2] = ["swiftship", "parcelnet"];

/// Reads `payload` in `carrier`'s format.
pub fn parse(carrier: &str, payload: &[u8]) -> Result<Vec<CarrierReport>, CarrierError> {
    match carrier {
        "swiftship" => swiftship(payload).map(|report| vec![report]),
        "parcelnet" => parcelnet(payload),
        other => Err(CarrierError::UnknownCarrier(other.to_owned())),
    }
}

/// The tracking number a carrier assigns when a shipment is booked. The carriers here are
/// simulated (no network): numbers derive from the shipment id, so re-booking is idempotent.
pub fn tracking_number(carrier: &str, shipment_id: &str) -> String {
    // FNV-1a: stable across runs and platforms.
    let hash = shipment_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    match carrier {
        "swiftship" => format!("SS{:010}", hash % 10_000_000_000),
        "parcelnet" => format!("PN-{:09}", hash % 1_000_000_000),
        other => format!(
            "{}-{:012}",
            other.to_ascii_uppercase(),
            hash % 1_000_000_000_000
        ),
    }
}

fn malformed(carrier: &'static str, reason: impl Into<String>) -> CarrierError {
    CarrierError::Malformed {
        carrier,
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
struct SwiftShipEvent {
    event_id: String,
    tracking_number: String,
    status: String,
    occurred_at: String,
    location: Option<SwiftShipLocation>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct SwiftShipLocation {
    lat: f64,
    lon: f64,
}

fn swiftship(payload: &[u8]) -> Result<CarrierReport, CarrierError> {
    const NAME: &str = "swiftship";
    let event: SwiftShipEvent =
        serde_json::from_slice(payload).map_err(|e| malformed(NAME, e.to_string()))?;
    let status = match event.status.as_str() {
        "PICKED_UP" => Status::PickedUp,
        "IN_TRANSIT" => Status::InTransit,
        "OUT_FOR_DELIVERY" => Status::OutForDelivery,
        "DELIVERED" => Status::Delivered,
        "DELIVERY_FAILED" => Status::Exception,
        other => return Err(malformed(NAME, format!("status: unknown value {other:?}"))),
    };
    let at = DateTime::parse_from_rfc3339(&event.occurred_at)
        .map_err(|e| malformed(NAME, format!("occurred_at: {e}")))?
        .with_timezone(&Utc);
    require(NAME, "event_id", &event.event_id)?;
    require(NAME, "tracking_number", &event.tracking_number)?;
    let point = event
        .location
        .map(|l| point(NAME, l.lat, l.lon))
        .transpose()?;
    Ok(CarrierReport {
        event_id: event.event_id,
        tracking_number: event.tracking_number,
        status,
        at,
        description: event.message.unwrap_or_default(),
        point,
    })
}

#[derive(Deserialize)]
struct ParcelNetBatch {
    awb: String,
    scans: Vec<ParcelNetScan>,
}

#[derive(Deserialize)]
struct ParcelNetScan {
    id: String,
    code: String,
    ts: i64,
    geo: Option<String>,
    remark: Option<String>,
}

fn parcelnet(payload: &[u8]) -> Result<Vec<CarrierReport>, CarrierError> {
    const NAME: &str = "parcelnet";
    let batch: ParcelNetBatch =
        serde_json::from_slice(payload).map_err(|e| malformed(NAME, e.to_string()))?;
    require(NAME, "awb", &batch.awb)?;
    if batch.scans.is_empty() || batch.scans.len() > 100 {
        return Err(malformed(NAME, "scans: between 1 and 100 expected"));
    }
    batch
        .scans
        .into_iter()
        .enumerate()
        .map(|(i, scan)| {
            let status = match scan.code.as_str() {
                "PU" => Status::PickedUp,
                "AR" | "DP" => Status::InTransit,
                "OD" => Status::OutForDelivery,
                "DL" => Status::Delivered,
                "NA" | "EX" => Status::Exception,
                other => {
                    return Err(malformed(
                        NAME,
                        format!("scans[{i}].code: unknown value {other:?}"),
                    ));
                }
            };
            require(NAME, &format!("scans[{i}].id"), &scan.id)?;
            let at = DateTime::from_timestamp(scan.ts, 0)
                .ok_or_else(|| malformed(NAME, format!("scans[{i}].ts: out of range")))?;
            let point = match scan.geo.as_deref() {
                None | Some("") => None,
                Some(text) => {
                    let (lat, lng) = text
                        .split_once(',')
                        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                        .ok_or_else(|| {
                            malformed(NAME, format!("scans[{i}].geo: expected \"lat,lng\""))
                        })?;
                    Some(point(NAME, lat, lng)?)
                }
            };
            Ok(CarrierReport {
                event_id: scan.id,
                tracking_number: batch.awb.clone(),
                status,
                at,
                description: scan.remark.unwrap_or_default(),
                point,
            })
        })
        .collect()
}

fn require(carrier: &'static str, field: &str, value: &str) -> Result<(), CarrierError> {
    if value.trim().is_empty() || value.len() > 128 {
        Err(malformed(
            carrier,
            format!("{field}: required, at most 128 characters"),
        ))
    } else {
        Ok(())
    }
}

fn point(carrier: &'static str, lat: f64, lng: f64) -> Result<GeoPoint, CarrierError> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) {
        Ok(GeoPoint { lat, lng })
    } else {
        Err(malformed(
            carrier,
            format!("location {lat},{lng} is out of range"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swiftship_events_normalise() {
        let payload = br#"{"event_id":"evt-1","tracking_number":"SS0000000001","status":"OUT_FOR_DELIVERY",
            "occurred_at":"2026-11-26T08:12:00Z","location":{"lat":52.5,"lon":13.4},"message":"With courier"}"#;
        let reports = parse("swiftship", payload).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].status, Status::OutForDelivery);
        assert_eq!(
            reports[0].point,
            Some(GeoPoint {
                lat: 52.5,
                lng: 13.4
            })
        );
        assert_eq!(reports[0].at.to_rfc3339(), "2026-11-26T08:12:00+00:00");
    }

    #[test]
    fn parcelnet_batches_normalise_every_scan() {
        let payload = br#"{"awb":"PN-000000042","scans":[
            {"id":"s1","code":"PU","ts":1764057600,"geo":"52.52,13.40","remark":"Collected"},
            {"id":"s2","code":"AR","ts":1764061200},
            {"id":"s3","code":"DL","ts":1764100800,"remark":"Front door"}]}"#;
        let reports = parse("parcelnet", payload).unwrap();
        let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [Status::PickedUp, Status::InTransit, Status::Delivered]
        );
        assert!(reports.iter().all(|r| r.tracking_number == "PN-000000042"));
        assert_eq!(reports[2].description, "Front door");
    }

    #[test]
    fn malformed_payloads_say_precisely_what_is_wrong() {
        let table: [(&str, &[u8], &str); 7] = [
            ("swiftship", b"not json", "swiftship payload"),
            ("swiftship", br#"{"event_id":"e","tracking_number":"t","status":"TELEPORTED","occurred_at":"2026-11-26T08:12:00Z"}"#, "status: unknown value \"TELEPORTED\""),
            ("swiftship", br#"{"event_id":"e","tracking_number":"t","status":"DELIVERED","occurred_at":"yesterday"}"#, "occurred_at"),
            ("swiftship", br#"{"event_id":"e","tracking_number":"t","status":"DELIVERED","occurred_at":"2026-11-26T08:12:00Z","location":{"lat":91,"lon":0}}"#, "out of range"),
            ("parcelnet", br#"{"awb":"PN-1","scans":[]}"#, "scans: between 1 and 100"),
            ("parcelnet", br#"{"awb":"PN-1","scans":[{"id":"s","code":"ZZ","ts":1}]}"#, "scans[0].code: unknown value \"ZZ\""),
            ("parcelnet", br#"{"awb":"PN-1","scans":[{"id":"s","code":"PU","ts":1,"geo":"north"}]}"#, "scans[0].geo"),
        ];
        for (carrier, payload, expected) in table {
            let error = parse(carrier, payload).unwrap_err().to_string();
            assert!(error.contains(expected), "{carrier}: {error}");
        }
        assert_eq!(
            parse("pigeon", b"{}").unwrap_err(),
            CarrierError::UnknownCarrier("pigeon".into())
        );
    }

    #[test]
    fn tracking_numbers_are_stable_per_shipment() {
        assert_eq!(
            tracking_number("swiftship", "shp-1"),
            tracking_number("swiftship", "shp-1")
        );
        assert_ne!(
            tracking_number("swiftship", "shp-1"),
            tracking_number("swiftship", "shp-2")
        );
        assert!(tracking_number("parcelnet", "shp-1").starts_with("PN-"));
        assert_eq!(tracking_number("swiftship", "shp-1").len(), 12);
    }
}
