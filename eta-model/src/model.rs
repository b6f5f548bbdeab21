//! The learned model: gradient-boosted trees (forust-ml: pure Rust, stable toolchain, missing
//! values routed by the trees) on the logarithm of the duration — delivery times are skewed
//! and their spread grows with them — with the P90 from a calibrated, input-dependent spread:
//!
//! 1. the history is cut into five blocks of time; each block is predicted by a model fitted
//!    on the other four, so every row gets an honest residual (ln actual − ln predicted);
//! 2. the median of those residuals moves the P50; `spread` learns how far off a prediction
//!    tends to be (|residual|) for each kind of delivery, again block by block;
//! 3. the 90th percentile of residual / spread (both out of fold) gives the factor `k`: P90 =
//!    exp(center + k × spread) covers 90% of deliveries the model did not see (a
//!    cross-conformal calibration);
//! 4. `center` and `spread` are fitted on everything for serving.

use forust_ml::{GradientBooster, Matrix, objective::ObjectiveType};
use serde::{Deserialize, Serialize};

use crate::{EtaError, baseline::quantile, features, history::Delivery};

/// The file format's name and version.
const FORMAT: &str = "oms-eta-model/1";

/// Blocks of time for the out-of-fold residuals the spread and the calibration learn from.
const FOLDS: usize = 5;

/// The smallest spread used, so a near-zero prediction cannot blow up the factor.
const MIN_SPREAD: f64 = 0.01;

/// A prediction, minutes after dispatch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The median duration.
    pub p50_min: f64,
    /// 90% of deliveries take no longer (never below `p50_min`).
    pub p90_min: f64,
}

/// What a model was trained on, and its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Rows it learned from (fitting and calibration).
    pub trained_rows: usize,
    /// The features, in order.
    pub features: Vec<String>,
    /// Boosting rounds of each ensemble.
    pub iterations: usize,
    /// Added to ln(duration) for the median (the calibration's median residual).
    pub median_shift: f64,
    /// P90 = exp(center + median_shift + k × spread).
    pub p90_factor: f64,
}

/// P50 and P90 delivery duration from what is known at dispatch.
pub struct DeliveryModel {
    center: GradientBooster,
    spread: GradientBooster,
    /// What it was trained on.
    pub info: ModelInfo,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: String,
    info: ModelInfo,
    center: String,
    spread: String,
}

fn model_error(error: impl std::fmt::Display) -> EtaError {
    EtaError::Model(error.to_string())
}

fn booster(iterations: usize) -> GradientBooster {
    GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(iterations)
        .set_learning_rate(0.1)
        .set_max_depth(6)
        .set_min_leaf_weight(20.0)
        .set_parallel(true)
        .set_seed(7)
        .set_base_score(0.0)
        .set_initialize_base_score(true)
}

/// Predictions of one ensemble for `rows`.
fn predict(booster: &GradientBooster, rows: &[Delivery]) -> Vec<f64> {
    let data = features::columns(rows);
    let matrix = Matrix::new(&data, rows.len(), features::NAMES.len());
    booster.predict(&matrix, false)
}

/// Predictions of `targets` for every row by a model fitted on the other blocks of time only
/// (the rows are in time order, cut into [`FOLDS`] blocks).
fn out_of_fold(
    rows: &[Delivery],
    targets: &[f64],
    iterations: usize,
) -> Result<Vec<f64>, EtaError> {
    let block = rows.len().div_ceil(FOLDS);
    let mut predicted = Vec::with_capacity(rows.len());
    for fold in 0..FOLDS {
        let (from, to) = (fold * block, ((fold + 1) * block).min(rows.len()));
        let others: Vec<Delivery> = rows[..from].iter().chain(&rows[to..]).cloned().collect();
        let others_targets: Vec<f64> = targets[..from]
            .iter()
            .chain(&targets[to..])
            .copied()
            .collect();
        let model = fit(&others, &others_targets, iterations)?;
        predicted.extend(predict(&model, &rows[from..to]));
    }
    Ok(predicted)
}

fn fit(rows: &[Delivery], y: &[f64], iterations: usize) -> Result<GradientBooster, EtaError> {
    let data = features::columns(rows);
    let matrix = Matrix::new(&data, rows.len(), features::NAMES.len());
    let mut model = booster(iterations);
    model
        .fit(&matrix, y, &vec![1.0; y.len()], None)
        .map_err(model_error)?;
    Ok(model)
}

impl DeliveryModel {
    /// Trains on the rows with a known duration (`iterations` boosting rounds).
    pub fn train(rows: &[Delivery], iterations: usize) -> Result<Self, EtaError> {
        let mut delivered: Vec<Delivery> = rows
            .iter()
            .filter(|row| row.duration_min.is_some_and(|d| d > 0.0))
            .cloned()
            .collect();
        if delivered.len() < 100 {
            return Err(EtaError::TooFew(format!(
                "{} delivered rows; a model needs at least 100",
                delivered.len()
            )));
        }
        delivered.sort_by_key(|row| row.dispatched_at);
        let y: Vec<f64> = delivered
            .iter()
            .filter_map(|r| r.duration_min)
            .map(f64::ln)
            .collect();

        // Honest residuals: each block of time predicted by a model that never saw it.
        let residuals: Vec<f64> = y
            .iter()
            .zip(out_of_fold(&delivered, &y, iterations)?)
            .map(|(y, p)| y - p)
            .collect();
        let median_shift = quantile(&mut residuals.clone(), 0.5);
        let distance: Vec<f64> = residuals.iter().map(|r| (r - median_shift).abs()).collect();
        // The calibration must see the spread as serving will: predicted for rows its model
        // did not learn from (in-sample spreads hug the residuals, and the factor comes out
        // too small — the P90 then covers less than it says).
        let held_out_spreads = out_of_fold(&delivered, &distance, iterations)?;
        let spread = fit(&delivered, &distance, iterations)?;
        let mut normalized: Vec<f64> = residuals
            .iter()
            .zip(&held_out_spreads)
            .map(|(r, s)| (r - median_shift) / s.max(MIN_SPREAD))
            .collect();
        let p90_factor = quantile(&mut normalized, 0.9).max(0.0);
        let center = fit(&delivered, &y, iterations)?;

        Ok(Self {
            center,
            spread,
            info: ModelInfo {
                trained_rows: delivered.len(),
                features: features::NAMES.iter().map(|n| (*n).to_owned()).collect(),
                iterations,
                median_shift,
                p90_factor,
            },
        })
    }

    /// Predictions for many rows at once.
    pub fn predict_many(&self, rows: &[Delivery]) -> Vec<Prediction> {
        if rows.is_empty() {
            return Vec::new();
        }
        let centers = predict(&self.center, rows);
        let spreads = predict(&self.spread, rows);
        centers
            .into_iter()
            .zip(spreads)
            .map(|(center, spread)| self.combine(center, spread))
            .collect()
    }

    /// The prediction for one row: its features walked down each tree directly (no matrix,
    /// no allocation per tree — the serving path).
    pub fn predict(&self, row: &Delivery) -> Prediction {
        let features = features::vector(row);
        let walk = |booster: &GradientBooster| {
            let trees =
                &booster.trees[..booster.prediction_iteration.unwrap_or(booster.trees.len())];
            booster.base_score
                + trees
                    .iter()
                    .map(|tree| tree.predict_row_from_row_slice(&features, &booster.missing))
                    .sum::<f64>()
        };
        self.combine(walk(&self.center), walk(&self.spread))
    }

    /// P50 and P90 from the two ensembles' outputs.
    fn combine(&self, center: f64, spread: f64) -> Prediction {
        let middle = center + self.info.median_shift;
        let p50_min = middle.exp().max(1.0);
        let upper = middle + self.info.p90_factor * spread.max(MIN_SPREAD);
        Prediction {
            p50_min,
            p90_min: upper.exp().max(p50_min),
        }
    }

    /// The model as JSON (both ensembles, the calibration, what they were trained on).
    pub fn to_json(&self) -> Result<String, EtaError> {
        let file = ModelFile {
            format: FORMAT.into(),
            info: self.info.clone(),
            center: self.center.json_dump().map_err(model_error)?,
            spread: self.spread.json_dump().map_err(model_error)?,
        };
        serde_json::to_string(&file).map_err(model_error)
    }

    /// A model from its JSON.
    pub fn from_json(json: &str) -> Result<Self, EtaError> {
        let file: ModelFile =
            serde_json::from_str(json).map_err(|e| EtaError::ModelFile(e.to_string()))?;
        if file.format != FORMAT {
            return Err(EtaError::ModelFile(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        if file.info.features != features::NAMES {
            return Err(EtaError::ModelFile(
                "trained on other features than this build computes".into(),
            ));
        }
        let load = |json: &str| {
            GradientBooster::from_json(json).map_err(|e| EtaError::ModelFile(e.to_string()))
        };
        Ok(Self {
            center: load(&file.center)?,
            spread: load(&file.spread)?,
            info: file.info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate;

    #[test]
    fn a_saved_model_predicts_the_same() {
        let rows = simulate::year(2_000, 9);
        let model = DeliveryModel::train(&rows, 40).unwrap();
        let loaded = DeliveryModel::from_json(&model.to_json().unwrap()).unwrap();
        let some = &rows[..50];
        assert_eq!(model.predict_many(some), loaded.predict_many(some));
        for (row, many) in some.iter().zip(model.predict_many(some)) {
            let one = loaded.predict(row);
            assert!((one.p50_min - many.p50_min).abs() < 1e-6 * many.p50_min);
            assert!((one.p90_min - many.p90_min).abs() < 1e-6 * many.p90_min);
        }
        for p in model.predict_many(some) {
            assert!(p.p50_min >= 1.0 && p.p90_min >= p.p50_min, "{p:?}");
        }
        assert_eq!(loaded.info, model.info);
    }

    #[test]
    fn a_history_too_short_or_of_another_build_is_refused() {
        let rows = simulate::year(50, 9);
        assert!(matches!(
            DeliveryModel::train(&rows, 10),
            Err(EtaError::TooFew(_))
        ));
        assert!(matches!(
            DeliveryModel::from_json(r#"{"format":"other","info":{},"center":"","spread":""}"#),
            Err(EtaError::ModelFile(_))
        ));
    }
}
