//! A year of deliveries in the sample world (five German centers, buyers around fifteen
//! cities), generated with effects a distance formula cannot see: the evening line-haul
//! cut-off, no deliveries on Sundays and public holidays, rush hours by region, rain and snow
//! slowing the vans, a busy center (promotion days, the November–December peak) handling
//! slower, and the odd exception. It has its own seed
//! and lives apart from the model: the model learns these effects from the rows, never from
//! this code.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    features::distance_km,
    history::{Delivery, Weather},
};

/// A center of the sample world: where, and how congested its region's roads get.
struct Center {
    point: (f64, f64),
    congestion: f64,
}

const CENTERS: [Center; 5] = [
    Center {
        point: (52.52, 13.40),
        congestion: 0.9,
    }, // Berlin
    Center {
        point: (48.14, 11.58),
        congestion: 0.8,
    }, // Munich
    Center {
        point: (53.55, 9.99),
        congestion: 0.7,
    }, // Hamburg
    Center {
        point: (50.94, 6.96),
        congestion: 0.75,
    }, // Cologne
    Center {
        point: (50.11, 8.68),
        congestion: 0.7,
    }, // Frankfurt
];

const CITIES: [(f64, f64); 15] = [
    (52.52, 13.40),
    (48.14, 11.58),
    (53.55, 9.99),
    (50.94, 6.96),
    (50.11, 8.68),
    (48.78, 9.18),
    (51.23, 6.78),
    (51.34, 12.37),
    (51.05, 13.74),
    (52.37, 9.73),
    (49.45, 11.08),
    (53.08, 8.80),
    (51.51, 7.47),
    (54.32, 10.12),
    (47.99, 7.85),
];

/// Germany's nationwide public holidays in the simulated year.
const HOLIDAYS_2025: [(u32, u32); 9] = [
    (1, 1),
    (4, 18),
    (4, 21),
    (5, 1),
    (5, 29),
    (6, 9),
    (10, 3),
    (12, 25),
    (12, 26),
];

fn is_holiday(date: NaiveDate) -> bool {
    HOLIDAYS_2025.contains(&(date.month(), date.day()))
}

/// Legal time in Germany: CET, CEST from the last Sunday of March to the last of October.
fn local(at: DateTime<Utc>) -> DateTime<Utc> {
    let summer = {
        let start = Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).single();
        let end = Utc.with_ymd_and_hms(2025, 10, 26, 1, 0, 0).single();
        matches!((start, end), (Some(s), Some(e)) if at >= s && at < e)
    };
    at + Duration::hours(if summer { 2 } else { 1 })
}

/// Couriers deliver 08:00–20:00 local, Monday to Saturday, not on holidays.
fn next_delivery_slot(arrival: DateTime<Utc>) -> DateTime<Utc> {
    let mut at = arrival;
    for _ in 0..14 * 24 {
        let here = local(at);
        let open = here.weekday() != Weekday::Sun
            && !is_holiday(here.date_naive())
            && (8..20).contains(&here.hour());
        if open {
            return at;
        }
        // To the next full hour.
        at += Duration::minutes(60 - i64::from(here.minute()));
    }
    at
}

/// The origin region's congestion (1 = free flow) at a local time.
fn traffic(center: &Center, at: DateTime<Utc>) -> f64 {
    let here = local(at);
    let weekday = here.weekday().num_days_from_monday() < 5;
    let rush = match here.hour() {
        7..=9 | 16..=18 if weekday => 1.0,
        10..=15 if weekday => 0.35,
        8..=19 => 0.2,
        _ => 0.0,
    };
    1.0 + center.congestion * rush
}

/// Standard normal (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The day's weather at a center: seasonal temperature, rain, snow in the cold, wind, and
/// visibility that drops in snow and heavy rain.
fn weather(rng: &mut StdRng, at: DateTime<Utc>) -> Weather {
    let day = f64::from(at.ordinal());
    let season = (std::f64::consts::TAU * (day - 200.0) / 365.0).cos(); // 1 in July
    let temp_c = 9.0 + 10.0 * season + 4.0 * normal(rng);
    let raining = rng.random_bool(0.3);
    let precip_mm = if raining {
        (rng.random::<f64>().powi(2) * 8.0 * 10.0).round() / 10.0
    } else {
        0.0
    };
    let snow_cm = if raining && temp_c < 1.0 {
        (precip_mm * 0.8 * 10.0).round() / 10.0
    } else {
        0.0
    };
    let wind_kmh = (12.0 + 10.0 * normal(rng).abs() + if raining { 8.0 } else { 0.0 }).round();
    let visibility_km = (20.0 - 3.0 * precip_mm - 6.0 * snow_cm).clamp(0.5, 20.0);
    Weather {
        precip_mm: Some(precip_mm),
        snow_cm: Some(snow_cm),
        temp_c: Some((temp_c * 10.0).round() / 10.0),
        wind_kmh: Some(wind_kmh),
        visibility_km: Some((visibility_km * 10.0).round() / 10.0),
    }
}

/// `rows` deliveries dispatched over 2025, in dispatch order; the same seed gives the same
/// year.
pub fn year(rows: usize, seed: u64) -> Vec<Delivery> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Promotions load the centers on some twenty days across the year, as the November and
    // December peak does for weeks.
    let promotions: Vec<u32> = (0..20).map(|_| rng.random_range(1..=334)).collect();
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut deliveries: Vec<Delivery> = (0..rows)
        .map(|_| {
            let day = rng.random_range(0..365);
            // Most parcels leave in working hours; some at any hour.
            let hour = if rng.random_bool(0.8) {
                rng.random_range(5..19)
            } else {
                rng.random_range(0..24)
            };
            let dispatched_at = start
                + Duration::days(day)
                + Duration::hours(hour - 1)
                + Duration::minutes(rng.random_range(0..60));
            let promotion = promotions.contains(&local(dispatched_at).ordinal());
            delivery(&mut rng, dispatched_at, promotion)
        })
        .collect();
    deliveries.sort_by_key(|d| d.dispatched_at);
    deliveries
}

fn delivery(rng: &mut StdRng, dispatched_at: DateTime<Utc>, promotion: bool) -> Delivery {
    let center = &CENTERS[rng.random_range(0..CENTERS.len())];
    let city = CITIES[rng.random_range(0..CITIES.len())];
    let destination = (city.0 + 0.25 * normal(rng), city.1 + 0.35 * normal(rng));
    let express = rng.random_bool(0.25);
    let carrier = if rng.random_bool(0.7) {
        "parcelnet"
    } else {
        "swiftship"
    };
    let weather = weather(rng, dispatched_at);
    let month = dispatched_at.month();
    let peak = if month >= 11 || promotion { 0.35 } else { 0.0 };
    let center_load = (0.35 + peak + 0.12 * normal(rng)).clamp(0.05, 1.0);
    let traffic_index = traffic(center, dispatched_at);
    let holiday = is_holiday(local(dispatched_at).date_naive());
    let mut row = Delivery {
        dispatched_at,
        origin: center.point,
        destination,
        carrier: carrier.into(),
        method: if express { "express" } else { "standard" }.into(),
        weather,
        traffic_index: Some((traffic_index * 100.0).round() / 100.0),
        holiday: Some(holiday),
        center_load: Some((center_load * 100.0).round() / 100.0),
        duration_min: None,
    };

    let precip = weather.precip_mm.unwrap_or(0.0);
    let snow = weather.snow_cm.unwrap_or(0.0);
    let slowdown = 1.0 + 0.03 * precip + 0.12 * snow;
    let jitter = (0.08 * normal(rng)).exp();
    // Out of the city to the hub, in the region's traffic; a busy center handles slower.
    let handling = 45.0 + 240.0 * center_load.powi(2) + 30.0 * traffic_index;
    let ready = dispatched_at + Duration::minutes(handling as i64);
    // Standard parcels leave on the night line-haul at 20:00; express ones within the hour.
    let departure = if express {
        ready + Duration::minutes(40)
    } else {
        let here = local(ready);
        let evening = here.date_naive().and_hms_opt(20, 0, 0).map(|t| t.and_utc());
        let offset = here - ready;
        match evening {
            Some(evening) if here < evening => evening - offset,
            Some(evening) => evening - offset + Duration::days(1),
            None => ready,
        }
    };
    let speed = if express { 85.0 } else { 70.0 };
    let road_km = distance_km(&row) * 1.3;
    let haul = 60.0 * road_km / speed * slowdown * jitter;
    let at_depot = departure + Duration::minutes(haul as i64 + 30);
    // The last mile: a delivery slot, then the van's round in that hour's traffic.
    let slot = next_delivery_slot(at_depot);
    let round = 50.0 + 70.0 * rng.random::<f64>() * (traffic(center, slot) - 0.2) * slowdown;
    let mut delivered = slot + Duration::minutes(round as i64);
    // The odd exception: a failed attempt, delivered the next delivery day.
    if rng.random_bool(0.03) {
        delivered = next_delivery_slot(delivered + Duration::hours(20));
    }
    row.duration_min = Some(((delivered - dispatched_at).num_seconds() as f64 / 60.0).round());
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_year() {
        assert_eq!(year(200, 3), year(200, 3));
        assert_ne!(year(200, 3), year(200, 4));
    }

    #[test]
    fn deliveries_are_plausible_and_in_dispatch_order() {
        let rows = year(2_000, 1);
        assert!(
            rows.windows(2)
                .all(|w| w[0].dispatched_at <= w[1].dispatched_at)
        );
        for row in &rows {
            let minutes = row.duration_min.unwrap();
            assert!((60.0..=10.0 * 24.0 * 60.0).contains(&minutes), "{minutes}");
        }
        let express: Vec<f64> = rows
            .iter()
            .filter(|r| r.method == "express")
            .filter_map(|r| r.duration_min)
            .collect();
        let standard: Vec<f64> = rows
            .iter()
            .filter(|r| r.method == "standard")
            .filter_map(|r| r.duration_min)
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean(&express) < mean(&standard));
    }

    #[test]
    fn nothing_is_delivered_on_a_sunday() {
        let slot = next_delivery_slot(Utc.with_ymd_and_hms(2025, 3, 8, 19, 30, 0).unwrap());
        // Saturday 20:30 local → Monday 08:00 local (07:00 UTC).
        assert_eq!(slot, Utc.with_ymd_and_hms(2025, 3, 10, 7, 0, 0).unwrap());
    }
}
