//! The delivery-time model registry: trains on tracking's own recorded history (on a schedule
//! and on demand), scores each candidate and the serving model on the latest 20% by dispatch
//! time, promotes a candidate only when it is better, keeps every version for rollback, and
//! holds the serving model in memory.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use oms_eta_model::{
    evaluate::{self, Scores},
    model::DeliveryModel,
};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        TrackingError,
        models::{Scored, should_promote},
    },
    store::{Store, models::Version},
};

/// Most history rows a training reads.
const MAX_ROWS: u64 = 200_000;
/// Fewest delivered rows worth training on.
const MIN_ROWS: usize = 200;

/// The serving model, with its version.
pub type Serving = Option<(i64, Arc<DeliveryModel>)>;

/// Trains, scores, promotes, serves.
pub struct Registry {
    store: Store,
    iterations: usize,
    serving: RwLock<Serving>,
}

fn scored(scores: Scores) -> Scored {
    Scored {
        mae_min: scores.mae_min,
        p90_coverage: scores.p90_coverage,
    }
}

fn model_error(error: oms_eta_model::EtaError) -> TrackingError {
    TrackingError::Corrupt(format!("delivery-time model: {error}"))
}

impl Registry {
    /// The registry, serving the version the database says serves.
    pub async fn load(store: Store, iterations: usize) -> Result<Self, TrackingError> {
        let serving = match store.serving_eta_model().await? {
            Some((version, json)) => Some((
                version.version,
                Arc::new(DeliveryModel::from_json(&json).map_err(model_error)?),
            )),
            None => None,
        };
        Ok(Self {
            store,
            iterations,
            serving: RwLock::new(serving),
        })
    }

    /// The serving model, if any.
    pub async fn serving(&self) -> Serving {
        self.serving.read().await.clone()
    }

    /// Trains a candidate on the history, scores it and the serving model on the latest 20%,
    /// keeps it as a new version and serves it if it is better. `None` when the history is too
    /// short to learn from.
    pub async fn retrain(&self) -> Result<Option<(Version, bool)>, TrackingError> {
        let history = self.store.delivery_history(None, MAX_ROWS).await?;
        if history.len() < MIN_ROWS {
            return Ok(None);
        }
        let serving = self.serving().await;
        let iterations = self.iterations;
        // Training takes seconds of CPU: off the async workers.
        let trained = tokio::task::spawn_blocking(move || {
            let (training, _) = evaluate::split_by_time(&history);
            let candidate = DeliveryModel::train(&training, iterations)?;
            let candidate_scores = evaluate::evaluate(&history, Some(&candidate), iterations)?;
            let serving_scores = serving
                .as_ref()
                .map(|(_, model)| evaluate::evaluate(&history, Some(model), iterations))
                .transpose()?;
            Ok::<_, oms_eta_model::EtaError>((candidate, candidate_scores, serving_scores))
        })
        .await
        .map_err(|e| TrackingError::Corrupt(format!("training stopped: {e}")))?
        .map_err(model_error)?;
        let (candidate, figures, serving_figures) = trained;
        let (promote, note) = should_promote(
            scored(figures.model),
            serving_figures.map(|f| scored(f.model)),
        );
        let json = candidate.to_json().map_err(model_error)?;
        let version = Version {
            version: 0,
            trained_at: Utc::now(),
            trained_rows: i32::try_from(candidate.info.trained_rows).unwrap_or(i32::MAX),
            held_out: i32::try_from(figures.held_out).unwrap_or(i32::MAX),
            mae_min: figures.model.mae_min,
            p90_abs_err_min: figures.model.p90_abs_err_min,
            p90_coverage: figures.model.p90_coverage,
            baseline_mae_min: figures.baseline.mae_min,
            serving: promote,
            note,
        };
        let number = self
            .store
            .add_eta_model(version.clone(), json, promote)
            .await?;
        if promote {
            *self.serving.write().await = Some((number, Arc::new(candidate)));
        }
        tracing::info!(version = number, promoted = promote, note = %version.note, "delivery-time model trained");
        Ok(Some((
            Version {
                version: number,
                ..version
            },
            promote,
        )))
    }

    /// Serves `version` (a rollback or a manual promotion).
    pub async fn promote(&self, version: i64) -> Result<Option<Version>, TrackingError> {
        let Some((version, json)) = self.store.serve_eta_model(version).await? else {
            return Ok(None);
        };
        let model = DeliveryModel::from_json(&json).map_err(model_error)?;
        *self.serving.write().await = Some((version.version, Arc::new(model)));
        Ok(Some(version))
    }

    /// Every version, newest first.
    pub async fn versions(&self) -> Result<Vec<Version>, TrackingError> {
        self.store.eta_models().await
    }

    /// Serves what the database says serves, if another replica promoted something else.
    pub async fn refresh(&self) -> Result<(), TrackingError> {
        let current = self.serving.read().await.as_ref().map(|(v, _)| *v);
        let stored = self.store.serving_eta_version().await?;
        if stored == current {
            return Ok(());
        }
        let serving = match self.store.serving_eta_model().await? {
            Some((version, json)) => Some((
                version.version,
                Arc::new(DeliveryModel::from_json(&json).map_err(model_error)?),
            )),
            None => None,
        };
        *self.serving.write().await = serving;
        Ok(())
    }
}

/// How often a replica checks which version serves (another may have promoted one).
const REFRESH: Duration = Duration::from_secs(60);

/// Retrains every `interval` (zero: never on a schedule) and follows promotions made by other
/// replicas.
pub async fn run(registry: Arc<Registry>, interval: Duration, shutdown: CancellationToken) {
    let mut next_training = (!interval.is_zero()).then(|| tokio::time::Instant::now() + interval);
    loop {
        let refresh_at = tokio::time::Instant::now() + REFRESH;
        let wake = next_training.map_or(refresh_at, |at| at.min(refresh_at));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
        if next_training.is_some_and(|at| at <= tokio::time::Instant::now()) {
            next_training = Some(tokio::time::Instant::now() + interval);
            if let Err(error) = registry.retrain().await {
                tracing::warn!(%error, "scheduled delivery-time model training failed");
            }
        } else if let Err(error) = registry.refresh().await {
            tracing::warn!(%error, "reading the serving delivery-time model failed");
        }
    }
}
