//! When a newly trained delivery-time model replaces the serving one: only when it is better
//! where it matters to the buyer — a lower median error — without a worse-calibrated P90.

/// How a model scored on a held-out slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Mean absolute error of the P50, minutes.
    pub mae_min: f64,
    /// Share of deliveries within the P90.
    pub p90_coverage: f64,
}

/// The P90 coverage a promoted model must keep, at least.
pub const MIN_COVERAGE: f64 = 0.8;

/// Whether `candidate` should serve instead of `serving` (scored on the same rows); the
/// answer says why.
pub fn should_promote(candidate: Scored, serving: Option<Scored>) -> (bool, String) {
    if candidate.p90_coverage < MIN_COVERAGE {
        return (
            false,
            format!(
                "P90 coverage {:.1}% is below {:.0}%",
                100.0 * candidate.p90_coverage,
                100.0 * MIN_COVERAGE
            ),
        );
    }
    match serving {
        None => (true, "no model was serving".into()),
        Some(serving) if candidate.mae_min < serving.mae_min => (
            true,
            format!(
                "MAE {:.1} min beats the serving model's {:.1} min",
                candidate.mae_min, serving.mae_min
            ),
        ),
        Some(serving) => (
            false,
            format!(
                "MAE {:.1} min does not beat the serving model's {:.1} min",
                candidate.mae_min, serving.mae_min
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(mae_min: f64, p90_coverage: f64) -> Scored {
        Scored {
            mae_min,
            p90_coverage,
        }
    }

    #[test]
    fn only_a_better_and_calibrated_model_is_promoted() {
        assert!(should_promote(scored(300.0, 0.9), None).0);
        assert!(should_promote(scored(250.0, 0.9), Some(scored(300.0, 0.9))).0);
        assert!(!should_promote(scored(300.0, 0.9), Some(scored(300.0, 0.9))).0);
        assert!(!should_promote(scored(350.0, 0.9), Some(scored(300.0, 0.9))).0);
        let (promoted, why) = should_promote(scored(100.0, 0.5), None);
        assert!(!promoted && why.contains("coverage"));
    }
}
