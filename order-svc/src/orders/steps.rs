//! How long each step of a placement took: a histogram per step on /metrics
//! (`oms_placement_step_seconds{step}`), and a warning that names the steps of a placement
//! slower than [`SLOW`], so a slow order can be explained from the log.

use std::time::{Duration, Instant};

/// A placement slower than this is logged with its steps.
pub const SLOW: Duration = Duration::from_millis(100);

/// The steps of one placement so far.
pub struct Steps {
    started: Instant,
    last: Instant,
    taken: Vec<(&'static str, Duration)>,
}

impl Steps {
    /// Starts timing now.
    pub fn start() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            taken: Vec::with_capacity(8),
        }
    }

    /// `step` ended now (it took the time since the previous step ended).
    pub fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        let took = now - self.last;
        self.last = now;
        metrics::histogram!("oms_placement_step_seconds", "step" => step)
            .record(took.as_secs_f64());
        self.taken.push((step, took));
    }

    /// The placement ended; a slow one is logged with what its time went into.
    pub fn finish(self, order_id: &str) {
        let total = self.started.elapsed();
        if total < SLOW {
            return;
        }
        let steps = self
            .taken
            .iter()
            .map(|(step, took)| format!("{step} {:.1} ms", took.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::warn!(
            order_id,
            total_ms = total.as_secs_f64() * 1000.0,
            %steps,
            "slow placement"
        );
    }
}
