//! Promised delivery windows: when a parcel leaves a center and when it arrives.
//!
//! A center hands parcels to carriers once a day at its cut-off; an order ships at the first
//! cut-off after its handling time. The carrier's transit time grows with distance. The
//! promised window starts at the earliest arrival and is as wide as the method's promise.

use chrono::{DateTime, Duration, Utc};

use super::Method;

/// The promise of one method from one center: the window the parcel arrives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    /// When the carrier collects it.
    pub dispatch_at: DateTime<Utc>,
    /// Earliest arrival.
    pub earliest: DateTime<Utc>,
    /// Latest arrival: what the buyer is promised.
    pub latest: DateTime<Utc>,
}

/// How wide the promised window of a method is.
pub fn window_width(method: Method) -> Duration {
    match method {
        Method::SameDay => Duration::hours(4),
        Method::Express => Duration::hours(12),
        Method::Standard => Duration::hours(48),
    }
}

/// The first cut-off at or after `now + handling_hours` (cut-off in minutes after midnight UTC).
pub fn dispatch_at(
    now: DateTime<Utc>,
    handling_hours: u32,
    cutoff_minute_utc: u32,
) -> DateTime<Utc> {
    let ready = now + Duration::hours(i64::from(handling_hours));
    let midnight = ready
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(ready);
    let cutoff = midnight + Duration::minutes(i64::from(cutoff_minute_utc.min(24 * 60 - 1)));
    if cutoff >= ready {
        cutoff
    } else {
        cutoff + Duration::days(1)
    }
}

/// Transit hours over `distance_km`: a base plus time per 100 km, rounded up to whole minutes.
pub fn transit(base_hours: u32, per_100km_hours: f64, distance_km: f64) -> Duration {
    let hours = f64::from(base_hours) + per_100km_hours.max(0.0) * distance_km.max(0.0) / 100.0;
    Duration::minutes((hours * 60.0).ceil() as i64)
}

/// The promise of shipping by `method` from a center `distance_km` away.
pub fn promise(
    now: DateTime<Utc>,
    handling_hours: u32,
    cutoff_minute_utc: u32,
    method: Method,
    base_hours: u32,
    per_100km_hours: f64,
    distance_km: f64,
) -> Promise {
    let dispatch_at = dispatch_at(now, handling_hours, cutoff_minute_utc);
    let earliest = dispatch_at + transit(base_hours, per_100km_hours, distance_km);
    Promise {
        dispatch_at,
        earliest,
        latest: earliest + window_width(method),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn orders_before_the_cutoff_ship_the_same_day() {
        // Cut-off 16:00 UTC, 2 h handling: ready at 11:00 -> leaves at 16:00 today.
        assert_eq!(
            dispatch_at(at("2026-11-25T09:00:00Z"), 2, 16 * 60),
            at("2026-11-25T16:00:00Z")
        );
        // Ready at 17:00, after the cut-off -> tomorrow 16:00.
        assert_eq!(
            dispatch_at(at("2026-11-25T15:00:00Z"), 2, 16 * 60),
            at("2026-11-26T16:00:00Z")
        );
        // Ready exactly at the cut-off still makes it.
        assert_eq!(
            dispatch_at(at("2026-11-25T14:00:00Z"), 2, 16 * 60),
            at("2026-11-25T16:00:00Z")
        );
        // Handling past midnight rolls to that day's cut-off.
        assert_eq!(
            dispatch_at(at("2026-11-25T23:00:00Z"), 3, 8 * 60),
            at("2026-11-26T08:00:00Z")
        );
    }

    #[test]
    fn transit_grows_with_distance() {
        assert_eq!(transit(24, 6.0, 0.0), Duration::hours(24));
        assert_eq!(transit(24, 6.0, 500.0), Duration::hours(54));
        assert_eq!(transit(2, 0.5, 10.0), Duration::minutes(123));
    }

    #[test]
    fn promises_are_as_wide_as_the_method_promises() {
        let p = promise(
            at("2026-11-25T09:00:00Z"),
            2,
            16 * 60,
            Method::Express,
            12,
            1.0,
            100.0,
        );
        assert_eq!(p.dispatch_at, at("2026-11-25T16:00:00Z"));
        assert_eq!(p.earliest, at("2026-11-26T05:00:00Z"));
        assert_eq!(p.latest, at("2026-11-26T17:00:00Z"));
    }
}
