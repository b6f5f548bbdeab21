//! Expected arrival. The model sits behind [`EtaModel`] so a learned one can replace it; the
//! first model divides the remaining great-circle distance by a smoothed recent speed.

use chrono::{DateTime, Utc};
use oms_platform::geo::distance_km;
use oms_proto::common::v1::GeoPoint;

use super::positions::Fix;

/// What a model sees.
#[derive(Debug, Clone)]
pub struct EtaInput<'a> {
    /// Recent fixes of the shipment, oldest first (at least one).
    pub track: &'a [Fix],
    /// Where the parcel goes.
    pub destination: GeoPoint,
    /// The carrier's promised window, if known.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The time of the estimate.
    pub now: DateTime<Utc>,
}

/// What a model says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaEstimate {
    /// Expected arrival.
    pub arrival: DateTime<Utc>,
    /// Great-circle kilometres left.
    pub remaining_km: f64,
    /// The speed the estimate assumes, km/h.
    pub speed_kmh: f64,
    /// Inside the destination geofence.
    pub arriving: bool,
}

/// An ETA model.
pub trait EtaModel: Send + Sync + 'static {
    /// Its name, reported with every ETA.
    fn name(&self) -> &'static str;
    /// The estimate for `input`; `None` without a fix.
    fn estimate(&self, input: &EtaInput<'_>) -> Option<EtaEstimate>;
}

/// Remaining distance over an exponentially smoothed speed of the recent segments, bounded by
/// the promised window; "arriving" inside the geofence.
#[derive(Debug, Clone, Copy)]
pub struct SmoothedSpeed {
    /// Weight of the newest segment (0..1).
    pub alpha: f64,
    /// Radius of the destination geofence, km.
    pub geofence_km: f64,
    /// Speed assumed before two fixes exist, km/h (urban delivery traffic).
    pub default_kmh: f64,
    /// Slowest speed assumed, so a parked van does not push the ETA to infinity, km/h.
    pub floor_kmh: f64,
}

impl Default for SmoothedSpeed {
    fn default() -> Self {
        Self {
            alpha: 0.3,
            geofence_km: 0.3,
            default_kmh: 25.0,
            floor_kmh: 5.0,
        }
    }
}

impl EtaModel for SmoothedSpeed {
    fn name(&self) -> &'static str {
        "smoothed-speed-v1"
    }

    fn estimate(&self, input: &EtaInput<'_>) -> Option<EtaEstimate> {
        let latest = input.track.last()?;
        let remaining_km = distance_km(&latest.point, &input.destination);
        let mut smoothed: Option<f64> = None;
        for pair in input.track.windows(2) {
            let [from, to] = pair else { continue };
            let hours = (to.at - from.at).num_milliseconds() as f64 / 3_600_000.0;
            if hours <= 0.0 {
                continue;
            }
            let speed = distance_km(&from.point, &to.point) / hours;
            smoothed =
                Some(smoothed.map_or(speed, |s| self.alpha * speed + (1.0 - self.alpha) * s));
        }
        let speed_kmh = smoothed.unwrap_or(self.default_kmh).max(self.floor_kmh);
        let arriving = remaining_km <= self.geofence_km;
        let travel =
            chrono::Duration::milliseconds((remaining_km / speed_kmh * 3_600_000.0) as i64);
        let mut arrival = if arriving {
            input.now
        } else {
            input.now + travel
        };
        if let Some((start, end)) = input.window
            && !arriving
        {
            // The carrier's promise bounds the estimate: not before the window opens, not after
            // it closes (while it is still ahead).
            arrival = arrival.max(start);
            if end > input.now {
                arrival = arrival.min(end);
            }
        }
        Some(EtaEstimate {
            arrival,
            remaining_km,
            speed_kmh,
            arriving,
        })
    }
}

/// The GPS estimate combined with a learned prior (the delivery-time model's expected arrival
/// at dispatch): far from the door the prior counts most, near it the courier's progress.
/// `total_km` is the trip's great-circle length; a prior already past is ignored.
pub fn with_prior(
    estimate: EtaEstimate,
    prior: DateTime<Utc>,
    total_km: f64,
    now: DateTime<Utc>,
) -> EtaEstimate {
    if prior <= now || estimate.arriving || total_km.is_nan() || total_km <= 0.0 {
        return estimate;
    }
    let progress = (1.0 - estimate.remaining_km / total_km).clamp(0.0, 1.0);
    let gps_ms = (estimate.arrival - now).num_milliseconds() as f64;
    let prior_ms = (prior - now).num_milliseconds() as f64;
    let blended = progress * gps_ms + (1.0 - progress) * prior_ms;
    EtaEstimate {
        arrival: now + chrono::Duration::milliseconds(blended.round() as i64),
        ..estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
    }

    fn fix(lat: f64, minute: i64) -> Fix {
        Fix {
            point: GeoPoint { lat, lng: 13.4 },
            at: at(minute),
        }
    }

    const HOME: GeoPoint = GeoPoint {
        lat: 52.60,
        lng: 13.4,
    };

    #[test]
    fn a_position_feed_moves_the_eta_and_fires_arriving() {
        let model = SmoothedSpeed::default();
        // 0.01° of latitude ≈ 1.11 km per 2 minutes ≈ 33 km/h.
        let mut track = vec![fix(52.50, 0)];
        let first = model
            .estimate(&EtaInput {
                track: &track,
                destination: HOME,
                window: None,
                now: at(0),
            })
            .unwrap();
        assert!(
            (first.speed_kmh - 25.0).abs() < 1e-9,
            "the default before two fixes"
        );
        track.push(fix(52.51, 2));
        track.push(fix(52.52, 4));
        let moving = model
            .estimate(&EtaInput {
                track: &track,
                destination: HOME,
                window: None,
                now: at(4),
            })
            .unwrap();
        assert!(
            (moving.speed_kmh - 33.4).abs() < 0.5,
            "{}",
            moving.speed_kmh
        );
        assert!((moving.remaining_km - 8.9).abs() < 0.1);
        assert!(
            moving.arrival > at(4) + chrono::Duration::minutes(15)
                && moving.arrival < at(4) + chrono::Duration::minutes(17)
        );
        assert!(!moving.arriving);
        track.push(fix(52.598, 20));
        let close = model
            .estimate(&EtaInput {
                track: &track,
                destination: HOME,
                window: None,
                now: at(20),
            })
            .unwrap();
        assert!(close.arriving);
        assert_eq!(close.arrival, at(20));
    }

    #[test]
    fn the_promised_window_bounds_the_estimate() {
        let model = SmoothedSpeed::default();
        let track = [fix(52.50, 0), fix(52.501, 10)];
        let slow = model
            .estimate(&EtaInput {
                track: &track,
                destination: HOME,
                window: None,
                now: at(10),
            })
            .unwrap();
        assert!(
            (slow.speed_kmh - 5.0).abs() < 1e-9,
            "a crawling van is floored"
        );
        let window = Some((at(30), at(60)));
        let bounded = model
            .estimate(&EtaInput {
                track: &track,
                destination: HOME,
                window,
                now: at(10),
            })
            .unwrap();
        assert_eq!(bounded.arrival, at(60));
        let fast = [fix(52.59, 0), fix(52.595, 1)];
        let early = model
            .estimate(&EtaInput {
                track: &fast,
                destination: HOME,
                window,
                now: at(1),
            })
            .unwrap();
        assert_eq!(early.arrival, at(30), "not before the window opens");
        assert!(
            model
                .estimate(&EtaInput {
                    track: &[],
                    destination: HOME,
                    window,
                    now: at(1)
                })
                .is_none()
        );
    }

    #[test]
    fn the_prior_counts_most_far_from_the_door_and_least_near_it() {
        let now = Utc::now();
        let gps = |remaining_km: f64| EtaEstimate {
            arrival: now + chrono::Duration::hours(1),
            remaining_km,
            speed_kmh: 30.0,
            arriving: false,
        };
        let prior = now + chrono::Duration::hours(5);
        let start = with_prior(gps(100.0), prior, 100.0, now);
        assert_eq!(start.arrival, prior, "no progress yet: the prior");
        let half = with_prior(gps(50.0), prior, 100.0, now);
        assert_eq!(half.arrival, now + chrono::Duration::hours(3));
        let near = with_prior(gps(0.0), prior, 100.0, now);
        assert_eq!(near.arrival, now + chrono::Duration::hours(1));
        let late = with_prior(gps(50.0), now - chrono::Duration::hours(1), 100.0, now);
        assert_eq!(
            late.arrival,
            gps(50.0).arrival,
            "a prior in the past is ignored"
        );
    }
}
