//! What the model sees of a delivery: distance, where, when (local hour of the week at the
//! origin), who and how, weather, traffic, holiday, load. Unknown values are NaN, which the
//! trees route on their own.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use geo::{Distance, Haversine, Point};

use crate::history::Delivery;

/// The features, in the order of [`vector`].
pub const NAMES: [&str; 16] = [
    "distance_km",
    "origin_lat",
    "origin_lng",
    "dest_lat",
    "dest_lng",
    "local_hour_of_week",
    "carrier",
    "method",
    "precip_mm",
    "snow_cm",
    "temp_c",
    "wind_kmh",
    "visibility_km",
    "traffic_index",
    "holiday",
    "center_load",
];

/// Great-circle distance between center and buyer, km.
pub fn distance_km(delivery: &Delivery) -> f64 {
    let (a_lat, a_lng) = delivery.origin;
    let (b_lat, b_lng) = delivery.destination;
    Haversine.distance(Point::new(a_lng, a_lat), Point::new(b_lng, b_lat)) / 1000.0
}

/// Hour of the week (0 = Monday 00:00) in the origin's solar time: UTC shifted by the
/// longitude's hours. Close to the legal local time wherever a history comes from, without a
/// time-zone database (the trees learn the rest from the coordinates).
pub fn local_hour_of_week(delivery: &Delivery) -> u32 {
    local_hour_of_week_at(delivery.origin.1, delivery.dispatched_at)
}

/// Hour of the week (0 = Monday 00:00) in the solar time of longitude `lng` at `at`.
pub fn local_hour_of_week_at(lng: f64, at: DateTime<Utc>) -> u32 {
    let local = at + Duration::hours((lng / 15.0).round() as i64);
    local.weekday().num_days_from_monday() * 24 + local.hour()
}

/// A stable number for a category ("parcelnet", "express"): the same text always gives the
/// same value, whatever else is in the history (NaN when unknown).
fn category(text: &str) -> f64 {
    if text.is_empty() {
        return f64::NAN;
    }
    // FNV-1a, folded to 20 bits so the value is exact in f32 bins.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % (1 << 20)) as f64
}

fn known(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

/// The feature values of `delivery`, in [`NAMES`] order.
pub fn vector(delivery: &Delivery) -> [f64; NAMES.len()] {
    let weather = &delivery.weather;
    [
        distance_km(delivery),
        delivery.origin.0,
        delivery.origin.1,
        delivery.destination.0,
        delivery.destination.1,
        f64::from(local_hour_of_week(delivery)),
        category(&delivery.carrier),
        category(&delivery.method),
        known(weather.precip_mm),
        known(weather.snow_cm),
        known(weather.temp_c),
        known(weather.wind_kmh),
        known(weather.visibility_km),
        known(delivery.traffic_index),
        delivery
            .holiday
            .map_or(f64::NAN, |h| f64::from(u8::from(h))),
        known(delivery.center_load),
    ]
}

/// The feature matrix of `deliveries`, column after column (what the trees read).
pub fn columns(deliveries: &[Delivery]) -> Vec<f64> {
    let rows: Vec<_> = deliveries.iter().map(vector).collect();
    let mut data = Vec::with_capacity(rows.len() * NAMES.len());
    for column in 0..NAMES.len() {
        data.extend(rows.iter().map(|row| row[column]));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Weather;
    use chrono::{TimeZone, Utc};

    fn berlin_to_potsdam() -> Delivery {
        Delivery {
            // Monday 2025-03-03 07:30 UTC = 08:30 at 13.4° E.
            dispatched_at: Utc.with_ymd_and_hms(2025, 3, 3, 7, 30, 0).unwrap(),
            origin: (52.52, 13.40),
            destination: (52.39, 13.06),
            carrier: "parcelnet".into(),
            method: String::new(),
            weather: Weather::default(),
            traffic_index: Some(1.4),
            holiday: None,
            center_load: Some(0.5),
            duration_min: Some(600.0),
        }
    }

    #[test]
    fn distance_and_local_time_come_from_the_row() {
        let row = berlin_to_potsdam();
        assert!(
            (distance_km(&row) - 27.0).abs() < 1.5,
            "{}",
            distance_km(&row)
        );
        assert_eq!(local_hour_of_week(&row), 8);
    }

    #[test]
    fn unknowns_are_nan_and_categories_are_stable() {
        let features = vector(&berlin_to_potsdam());
        assert!(features[7].is_nan(), "no method");
        assert!(features[8].is_nan(), "no weather");
        assert!(features[14].is_nan(), "holiday unknown");
        assert_eq!(features[6], vector(&berlin_to_potsdam())[6]);
        assert_ne!(category("parcelnet"), category("swiftship"));
    }
}
