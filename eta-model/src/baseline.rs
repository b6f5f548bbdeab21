//! The distance/speed formula a learned model must beat: duration = a + distance / speed,
//! `a` and `speed` fitted by least squares on the training rows; its P90 adds the training
//! residuals' 90th percentile.

use serde::{Deserialize, Serialize};

use crate::{EtaError, features::distance_km, history::Delivery};

/// A fitted formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Minutes whatever the distance (handling, waiting).
    pub fixed_min: f64,
    /// Minutes per km (1 / speed).
    pub min_per_km: f64,
    /// Added to reach the 90th percentile.
    pub p90_margin_min: f64,
}

/// The `q` quantile (0–1) of `values` (sorted in place; nearest rank).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

impl Baseline {
    /// Fits the formula to the rows with a known duration.
    pub fn fit(rows: &[Delivery]) -> Result<Self, EtaError> {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|row| row.duration_min.map(|d| (distance_km(row), d)))
            .collect();
        if points.len() < 2 {
            return Err(EtaError::TooFew(
                "the baseline needs at least two delivered rows".into(),
            ));
        }
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        // A slower speed than 1 km per hour or a negative one is no speed: distance then adds
        // nothing.
        let min_per_km = if sxx > 0.0 {
            (sxy / sxx).clamp(0.0, 60.0)
        } else {
            0.0
        };
        let fixed_min = mean_y - min_per_km * mean_x;
        let mut residuals: Vec<f64> = points
            .iter()
            .map(|(x, y)| y - (fixed_min + min_per_km * x))
            .collect();
        Ok(Self {
            fixed_min,
            min_per_km,
            p90_margin_min: quantile(&mut residuals, 0.9).max(0.0),
        })
    }

    /// (P50, P90) minutes for `row`.
    pub fn predict(&self, row: &Delivery) -> (f64, f64) {
        let p50 = (self.fixed_min + self.min_per_km * distance_km(row)).max(1.0);
        (p50, p50 + self.p90_margin_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Weather;
    use chrono::{TimeZone, Utc};

    fn row(dest_lng: f64, minutes: f64) -> Delivery {
        Delivery {
            dispatched_at: Utc.with_ymd_and_hms(2025, 1, 6, 8, 0, 0).unwrap(),
            origin: (50.0, 10.0),
            destination: (50.0, dest_lng),
            carrier: String::new(),
            method: String::new(),
            weather: Weather::default(),
            traffic_index: None,
            holiday: None,
            center_load: None,
            duration_min: Some(minutes),
        }
    }

    #[test]
    fn a_straight_line_is_found() {
        // 0.1° of longitude at 50° N is ~7.15 km; 60 min fixed + 1 min per km.
        let rows: Vec<_> = (1..20)
            .map(|i| {
                let r = row(10.0 + f64::from(i) * 0.1, 0.0);
                let km = distance_km(&r);
                row(10.0 + f64::from(i) * 0.1, 60.0 + km)
            })
            .collect();
        let fitted = Baseline::fit(&rows).unwrap();
        assert!((fitted.fixed_min - 60.0).abs() < 1e-6, "{fitted:?}");
        assert!((fitted.min_per_km - 1.0).abs() < 1e-9, "{fitted:?}");
        assert!(fitted.p90_margin_min.abs() < 1e-6);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&mut values, 0.9), 9.0);
        assert_eq!(quantile(&mut values, 0.5), 5.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }
}
