//! The delivery history as CSV: one row per delivered shipment. Columns (a header row names
//! them; extra columns are ignored; an empty cell is a missing value):
//!
//! | column | meaning |
//! | --- | --- |
//! | `dispatched_at` | RFC 3339, UTC |
//! | `origin_lat`, `origin_lng` | the shipping center |
//! | `dest_lat`, `dest_lng` | the buyer |
//! | `carrier`, `method` | who carried it, how ("standard", "express") |
//! | `precip_mm`, `snow_cm`, `temp_c`, `wind_kmh`, `visibility_km` | weather at dispatch |
//! | `traffic_index` | congestion of the origin region at that hour (1 = free flow) |
//! | `holiday` | 0/1: a public holiday at the destination |
//! | `center_load` | 0–1: the center's share of its daily capacity in use |
//! | `duration_min` | dispatch to delivery, minutes (the target) |

use std::{io, path::Path};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EtaError;

/// One delivered shipment.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// When it left the center.
    pub dispatched_at: DateTime<Utc>,
    /// Where from.
    pub origin: (f64, f64),
    /// Where to.
    pub destination: (f64, f64),
    /// The carrier ("" unknown).
    pub carrier: String,
    /// The shipping method ("" unknown).
    pub method: String,
    /// Weather at dispatch.
    pub weather: Weather,
    /// Congestion index of the origin region at that hour.
    pub traffic_index: Option<f64>,
    /// A public holiday at the destination.
    pub holiday: Option<bool>,
    /// Share of the center's daily capacity in use.
    pub center_load: Option<f64>,
    /// Dispatch to delivery, minutes; `None` for a shipment still under way (to predict).
    pub duration_min: Option<f64>,
}

/// Weather at a place and hour; every figure may be unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Weather {
    /// Precipitation, mm in the hour.
    pub precip_mm: Option<f64>,
    /// Snowfall, cm in the hour.
    pub snow_cm: Option<f64>,
    /// Air temperature, °C.
    pub temp_c: Option<f64>,
    /// Wind speed, km/h.
    pub wind_kmh: Option<f64>,
    /// Visibility, km.
    pub visibility_km: Option<f64>,
}

/// A row as it is in the file.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    dispatched_at: String,
    origin_lat: f64,
    origin_lng: f64,
    dest_lat: f64,
    dest_lng: f64,
    #[serde(default)]
    carrier: String,
    #[serde(default)]
    method: String,
    precip_mm: Option<f64>,
    snow_cm: Option<f64>,
    temp_c: Option<f64>,
    wind_kmh: Option<f64>,
    visibility_km: Option<f64>,
    traffic_index: Option<f64>,
    holiday: Option<u8>,
    center_load: Option<f64>,
    duration_min: Option<f64>,
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

impl Row {
    fn into_delivery(self) -> Result<Delivery, String> {
        let dispatched_at = DateTime::parse_from_rfc3339(self.dispatched_at.trim())
            .map_err(|e| format!("dispatched_at {:?}: {e}", self.dispatched_at))?
            .with_timezone(&Utc);
        for (name, value, limit) in [
            ("origin_lat", self.origin_lat, 90.0),
            ("dest_lat", self.dest_lat, 90.0),
            ("origin_lng", self.origin_lng, 180.0),
            ("dest_lng", self.dest_lng, 180.0),
        ] {
            if !value.is_finite() || value.abs() > limit {
                return Err(format!("{name} {value}: out of range"));
            }
        }
        if let Some(duration) = self.duration_min
            && !(duration.is_finite() && duration > 0.0)
        {
            return Err(format!("duration_min {duration}: must be positive"));
        }
        Ok(Delivery {
            dispatched_at,
            origin: (self.origin_lat, self.origin_lng),
            destination: (self.dest_lat, self.dest_lng),
            carrier: self.carrier.trim().to_lowercase(),
            method: self.method.trim().to_lowercase(),
            weather: Weather {
                precip_mm: finite(self.precip_mm),
                snow_cm: finite(self.snow_cm),
                temp_c: finite(self.temp_c),
                wind_kmh: finite(self.wind_kmh),
                visibility_km: finite(self.visibility_km),
            },
            traffic_index: finite(self.traffic_index),
            holiday: self.holiday.map(|h| h != 0),
            center_load: finite(self.center_load),
            duration_min: self.duration_min,
        })
    }

    fn from_delivery(delivery: &Delivery) -> Self {
        Row {
            dispatched_at: delivery
                .dispatched_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            origin_lat: delivery.origin.0,
            origin_lng: delivery.origin.1,
            dest_lat: delivery.destination.0,
            dest_lng: delivery.destination.1,
            carrier: delivery.carrier.clone(),
            method: delivery.method.clone(),
            precip_mm: delivery.weather.precip_mm,
            snow_cm: delivery.weather.snow_cm,
            temp_c: delivery.weather.temp_c,
            wind_kmh: delivery.weather.wind_kmh,
            visibility_km: delivery.weather.visibility_km,
            traffic_index: delivery.traffic_index,
            holiday: delivery.holiday.map(u8::from),
            center_load: delivery.center_load,
            duration_min: delivery.duration_min,
        }
    }
}

/// Reads a history; a row that does not fit the schema is an error naming its line.
pub fn read(input: impl io::Read) -> Result<Vec<Delivery>, EtaError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut deliveries = Vec::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|e| EtaError::Row {
            line,
            message: e.to_string(),
        })?;
        deliveries.push(
            row.into_delivery()
                .map_err(|message| EtaError::Row { line, message })?,
        );
    }
    Ok(deliveries)
}

/// Reads a history file.
pub fn read_file(path: &Path) -> Result<Vec<Delivery>, EtaError> {
    read(std::fs::File::open(path)?)
}

/// Writes a history (with its header).
pub fn write(output: impl io::Write, deliveries: &[Delivery]) -> Result<(), EtaError> {
    let mut writer = csv::Writer::from_writer(output);
    for delivery in deliveries {
        writer
            .serialize(Row::from_delivery(delivery))
            .map_err(|e| EtaError::Io(io::Error::other(e)))?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
dispatched_at,origin_lat,origin_lng,dest_lat,dest_lng,carrier,method,precip_mm,snow_cm,temp_c,wind_kmh,visibility_km,traffic_index,holiday,center_load,duration_min,note
2025-03-04T08:15:00Z,52.52,13.40,52.40,13.05,parcelnet,standard,0.4,,7.5,12,10,1.3,0,0.42,1320,first
2025-03-04T09:00:00+01:00,48.14,11.58,48.37,10.90,SwiftShip,Express,,,,,,,,,300,
";

    #[test]
    fn rows_read_with_missing_cells_and_extra_columns() {
        let rows = read(SAMPLE.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].weather.precip_mm, Some(0.4));
        assert_eq!(rows[0].weather.snow_cm, None);
        assert_eq!(rows[0].holiday, Some(false));
        assert_eq!(rows[1].carrier, "swiftship");
        assert_eq!(rows[1].method, "express");
        assert_eq!(
            rows[1].dispatched_at.to_rfc3339(),
            "2025-03-04T08:00:00+00:00"
        );
        assert_eq!(rows[1].traffic_index, None);
        assert_eq!(rows[1].duration_min, Some(300.0));
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let bad = SAMPLE.replace("52.40,13.05", "152.40,13.05");
        let error = read(bad.as_bytes()).unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("dest_lat"),
            "{error}"
        );
        let bad = SAMPLE.replace(",300,", ",-3,");
        assert!(
            read(bad.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("line 3")
        );
    }

    #[test]
    fn written_histories_read_back_the_same() {
        let rows = read(SAMPLE.as_bytes()).unwrap();
        let mut out = Vec::new();
        write(&mut out, &rows).unwrap();
        assert_eq!(read(out.as_slice()).unwrap(), rows);
    }
}
