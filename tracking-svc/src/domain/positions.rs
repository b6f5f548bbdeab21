//! Which courier positions to accept: inside WGS84, not from the future, not too old, after
//! the device's previous fix, and not a jump no vehicle makes. A repeat of the previous fix is
//! a duplicate, not an error.

use chrono::{DateTime, Utc};
use oms_platform::{error::MAX_ID_LEN, geo::distance_km};
use oms_proto::{common::v1::GeoPoint, tracking::v1::PositionReport};

/// A position at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Where.
    pub point: GeoPoint,
    /// When the device recorded it.
    pub at: DateTime<Utc>,
}

/// The configured plausibility limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fastest believable movement between two fixes, metres per second.
    pub max_speed_mps: f64,
    /// How far a device clock may run ahead of ours.
    pub max_clock_skew: chrono::Duration,
    /// Fixes older than this are not kept (the retention period).
    pub max_age: chrono::Duration,
}

/// What to do with a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Keep it.
    Accept(Fix),
    /// The same fix again.
    Duplicate,
}

/// A device or shipment id as positions carry them.
pub fn is_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ID_LEN && oms_platform::bus::is_subject_token(value)
}

/// Checks `report` against the device's previous fix; the error is the reason for a human.
pub fn check(
    report: &PositionReport,
    previous: Option<&Fix>,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<Verdict, String> {
    if !is_id(&report.device_id) {
        return Err("device_id: required, at most 64 letters, digits, '-', '_' or ':'".into());
    }
    if !is_id(&report.shipment_id) {
        return Err("shipment_id: required, at most 64 letters, digits, '-', '_' or ':'".into());
    }
    let Some(point) = report.point else {
        return Err("point: required".into());
    };
    if !point.lat.is_finite()
        || !(-90.0..=90.0).contains(&point.lat)
        || !point.lng.is_finite()
        || !(-180.0..=180.0).contains(&point.lng)
    {
        return Err(format!(
            "point: ({}, {}) is outside lat [-90, 90] / lng [-180, 180]",
            point.lat, point.lng
        ));
    }
    if !report.accuracy_m.is_finite()
        || report.accuracy_m < 0.0
        || !report.speed_mps.is_finite()
        || report.speed_mps < 0.0
    {
        return Err("accuracy_m and speed_mps: non-negative numbers".into());
    }
    let at = report
        .recorded_at
        .as_ref()
        .and_then(oms_platform::events::from_timestamp)
        .ok_or_else(|| "recorded_at: required".to_owned())?;
    if at > now + limits.max_clock_skew {
        return Err(format!("recorded_at: {at} is in the future"));
    }
    if at < now - limits.max_age {
        return Err(format!(
            "recorded_at: {at} is older than the retention period"
        ));
    }
    let fix = Fix { point, at };
    let Some(previous) = previous else {
        return Ok(Verdict::Accept(fix));
    };
    if at == previous.at {
        return if point == previous.point {
            Ok(Verdict::Duplicate)
        } else {
            Err(format!(
                "recorded_at: the device already reported a different position at {at}"
            ))
        };
    }
    if at < previous.at {
        return Err(format!(
            "recorded_at: {at} is before the device's previous fix at {}",
            previous.at
        ));
    }
    let seconds = (at - previous.at).num_milliseconds() as f64 / 1000.0;
    let metres = distance_km(&previous.point, &point) * 1000.0;
    let speed = metres / seconds;
    if speed > limits.max_speed_mps {
        return Err(format!(
            "point: a jump of {:.1} km in {seconds:.0} s ({:.0} km/h) is not plausible",
            metres / 1000.0,
            speed * 3.6
        ));
    }
    Ok(Verdict::Accept(fix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_platform::events::to_timestamp;

    fn limits() -> Limits {
        Limits {
            max_speed_mps: 70.0,
            max_clock_skew: chrono::Duration::seconds(30),
            max_age: chrono::Duration::days(30),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn report(lat: f64, lng: f64, seconds_ago: i64) -> PositionReport {
        PositionReport {
            device_id: "van-7".into(),
            shipment_id: "s1".into(),
            point: Some(GeoPoint { lat, lng }),
            recorded_at: Some(to_timestamp(now() - chrono::Duration::seconds(seconds_ago))),
            accuracy_m: 5.0,
            speed_mps: 8.0,
        }
    }

    fn fix(lat: f64, lng: f64, seconds_ago: i64) -> Fix {
        Fix {
            point: GeoPoint { lat, lng },
            at: now() - chrono::Duration::seconds(seconds_ago),
        }
    }

    #[test]
    fn a_plausible_fix_is_accepted_and_a_repeat_is_a_duplicate() {
        let previous = fix(52.5000, 13.4000, 60);
        // ~560 m in 60 s.
        assert!(matches!(
            check(
                &report(52.5050, 13.4000, 0),
                Some(&previous),
                now(),
                &limits()
            ),
            Ok(Verdict::Accept(_))
        ));
        assert_eq!(
            check(
                &report(52.5000, 13.4000, 60),
                Some(&previous),
                now(),
                &limits()
            ),
            Ok(Verdict::Duplicate)
        );
        assert!(matches!(
            check(&report(52.5, 13.4, 0), None, now(), &limits()),
            Ok(Verdict::Accept(_))
        ));
    }

    #[test]
    fn invalid_positions_are_rejected_with_reasons() {
        let previous = fix(52.5, 13.4, 60);
        let cases = [
            (report(91.0, 13.4, 0), "outside lat"),
            (report(f64::NAN, 13.4, 0), "outside lat"),
            (report(52.5, 13.4, -120), "in the future"),
            (report(52.5, 13.4, 40 * 86_400), "older than the retention"),
            (report(52.5, 13.4, 120), "before the device's previous fix"),
            (report(48.14, 11.58, 0), "not plausible"),
            (report(52.6, 13.4, 60), "different position"),
        ];
        for (bad, reason) in cases {
            let error = check(&bad, Some(&previous), now(), &limits()).unwrap_err();
            assert!(error.contains(reason), "{error} should say {reason}");
        }
        let mut anonymous = report(52.5, 13.4, 0);
        anonymous.device_id.clear();
        assert!(
            check(&anonymous, None, now(), &limits())
                .unwrap_err()
                .starts_with("device_id")
        );
        let mut nowhere = report(52.5, 13.4, 0);
        nowhere.point = None;
        assert_eq!(
            check(&nowhere, None, now(), &limits()),
            Err("point: required".into())
        );
    }
}
