//! How good a model is, honestly: the history is split by time (the last 20% of dispatches
//! held out, nothing shuffled across time), both the model and the distance/speed baseline
//! learn from the first 80%, and both are scored on the rest.

use serde::Serialize;

use crate::{
    EtaError,
    baseline::{Baseline, quantile},
    features::local_hour_of_week,
    history::Delivery,
    model::DeliveryModel,
};

/// Share of the history held out, the latest dispatches.
pub const HELD_OUT: f64 = 0.2;

/// Scores of one predictor on the held-out rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Mean absolute error of the P50, minutes.
    pub mae_min: f64,
    /// 90th percentile of the P50's absolute error, minutes.
    pub p90_abs_err_min: f64,
    /// Share of deliveries that took no longer than the P90.
    pub p90_coverage: f64,
}

/// One held-out delivery: when it left, how long it took, what each predictor said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    /// Local hour of the week at the origin (0 = Monday 00:00).
    pub hour_of_week: u32,
    /// Actual duration, minutes.
    pub actual_min: f64,
    /// The model's (P50, P90).
    pub model: (f64, f64),
    /// The baseline's (P50, P90).
    pub baseline: (f64, f64),
}

/// The evaluation: sizes and both predictors' scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Delivered rows in the history.
    pub rows: usize,
    /// Of which held out.
    pub held_out: usize,
    /// The learned model.
    pub model: Scores,
    /// duration = a + distance / speed.
    pub baseline: Scores,
    /// Every held-out delivery, for plots.
    #[serde(skip)]
    pub details: Vec<HeldOut>,
}

impl Evaluation {
    /// How much lower the model's MAE is than the baseline's (0.3 = 30% lower).
    pub fn mae_reduction(&self) -> f64 {
        1.0 - self.model.mae_min / self.baseline.mae_min
    }
}

/// Delivered rows in dispatch order, split into (training, held out).
pub fn split_by_time(rows: &[Delivery]) -> (Vec<Delivery>, Vec<Delivery>) {
    let mut delivered: Vec<Delivery> = rows
        .iter()
        .filter(|row| row.duration_min.is_some())
        .cloned()
        .collect();
    delivered.sort_by_key(|row| row.dispatched_at);
    let cut = ((1.0 - HELD_OUT) * delivered.len() as f64).round() as usize;
    let held_out = delivered.split_off(cut.min(delivered.len()));
    (delivered, held_out)
}

fn score(actual: &[f64], predicted: &[(f64, f64)]) -> Scores {
    let mut errors: Vec<f64> = actual
        .iter()
        .zip(predicted)
        .map(|(y, (p50, _))| (y - p50).abs())
        .collect();
    let n = actual.len().max(1) as f64;
    let covered = actual
        .iter()
        .zip(predicted)
        .filter(|(y, (_, p90))| *y <= p90)
        .count();
    Scores {
        mae_min: errors.iter().sum::<f64>() / n,
        p90_abs_err_min: quantile(&mut errors, 0.9),
        p90_coverage: covered as f64 / n,
    }
}

/// Scores `model` (trained on the first 80% with `iterations` rounds when none is given) and
/// the baseline on the last 20% of `rows` by time.
pub fn evaluate(
    rows: &[Delivery],
    model: Option<&DeliveryModel>,
    iterations: usize,
) -> Result<Evaluation, EtaError> {
    let (training, held_out) = split_by_time(rows);
    if held_out.is_empty() {
        return Err(EtaError::TooFew("nothing to hold out".into()));
    }
    let trained;
    let model = match model {
        Some(model) => model,
        None => {
            trained = DeliveryModel::train(&training, iterations)?;
            &trained
        }
    };
    let baseline = Baseline::fit(&training)?;
    let actual: Vec<f64> = held_out.iter().filter_map(|r| r.duration_min).collect();
    let learned: Vec<(f64, f64)> = model
        .predict_many(&held_out)
        .into_iter()
        .map(|p| (p.p50_min, p.p90_min))
        .collect();
    let formula: Vec<(f64, f64)> = held_out.iter().map(|r| baseline.predict(r)).collect();
    let details = held_out
        .iter()
        .zip(&actual)
        .zip(learned.iter().zip(&formula))
        .map(|((row, actual_min), (model, baseline))| HeldOut {
            hour_of_week: local_hour_of_week(row),
            actual_min: *actual_min,
            model: *model,
            baseline: *baseline,
        })
        .collect();
    Ok(Evaluation {
        rows: training.len() + held_out.len(),
        held_out: held_out.len(),
        model: score(&actual, &learned),
        baseline: score(&actual, &formula),
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate;

    #[test]
    fn the_latest_fifth_is_held_out() {
        let mut rows = simulate::year(1_000, 5);
        rows.reverse();
        let (training, held_out) = split_by_time(&rows);
        assert_eq!((training.len(), held_out.len()), (800, 200));
        let last_trained = training.iter().map(|r| r.dispatched_at).max().unwrap();
        assert!(held_out.iter().all(|r| r.dispatched_at >= last_trained));
    }

    #[test]
    fn the_model_beats_the_formula_and_its_p90_covers_about_nine_in_ten() {
        let rows = simulate::year(8_000, 11);
        let figures = evaluate(&rows, None, 120).unwrap();
        assert_eq!(figures.held_out, 1_600);
        assert!(figures.mae_reduction() > 0.2, "{figures:?}");
        assert!(
            (0.8..=0.97).contains(&figures.model.p90_coverage),
            "{figures:?}"
        );
    }
}
