//! Promised windows from the learned delivery-time model, when one serves: tracking-svc trains
//! and promotes it on the recorded history; this follows the serving version and, for each
//! planned parcel, promises from dispatch + P50 to dispatch + P90 instead of the carrier
//! formula. The route is still chosen by the formula (and a requested window still bounds the
//! promise); without a model, or for a promise the model cannot fit in the requested window,
//! the formula's promise stands.

use std::{sync::Arc, time::Duration};

use oms_eta_model::{
    history::{Delivery, Weather},
    model::DeliveryModel,
};
use oms_proto::{
    common::v1::GeoPoint,
    tracking::v1::{GetServingEtaModelRequest, tracking_service_client::TrackingServiceClient},
};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::domain::{Center, MethodOffer, routing::Window, schedule::Promise};

/// Largest model file accepted from tracking-svc.
const MAX_MODEL_BYTES: usize = 256 << 20;

/// The serving model, if any, with its version.
#[derive(Default)]
pub struct LearnedTransit {
    serving: RwLock<Option<(i64, Arc<DeliveryModel>)>>,
}

impl LearnedTransit {
    /// The serving version (0 for none).
    pub async fn version(&self) -> i64 {
        self.serving.read().await.as_ref().map_or(0, |(v, _)| *v)
    }

    /// The promise for a parcel from `center` to `destination` by `offer`, given the formula's.
    pub async fn promise(
        &self,
        center: &Center,
        destination: GeoPoint,
        offer: &MethodOffer,
        formula: Promise,
        requested: Option<Window>,
    ) -> Promise {
        let Some((_, model)) = self.serving.read().await.clone() else {
            return formula;
        };
        let parcel = Delivery {
            dispatched_at: formula.dispatch_at,
            origin: (center.point.lat, center.point.lng),
            destination: (destination.lat, destination.lng),
            carrier: offer.carrier.to_lowercase(),
            method: offer
                .method
                .to_proto()
                .as_str_name()
                .trim_start_matches("SHIPPING_METHOD_")
                .to_lowercase(),
            weather: Weather::default(),
            traffic_index: None,
            holiday: None,
            center_load: None,
            duration_min: None,
        };
        let predicted = model.predict(&parcel);
        let minutes = |m: f64| chrono::Duration::seconds((m * 60.0).round() as i64);
        let mut learned = Promise {
            dispatch_at: formula.dispatch_at,
            earliest: formula.dispatch_at + minutes(predicted.p50_min),
            latest: formula.dispatch_at + minutes(predicted.p90_min),
        };
        if let Some(window) = requested {
            if learned.latest > window.end {
                return formula;
            }
            if learned.earliest < window.start {
                learned.earliest = window.start;
                learned.latest = learned.latest.max(window.start);
            }
        }
        learned
    }

    /// Asks tracking-svc which version serves; loads its file when it changed.
    async fn refresh(&self, tracking: &mut TrackingServiceClient<Channel>) -> Result<(), String> {
        let known = self.version().await;
        let answer = tracking
            .get_serving_eta_model(GetServingEtaModelRequest {
                known_version: known,
            })
            .await
            .map_err(|e| e.message().to_owned())?
            .into_inner();
        if answer.version == known {
            return Ok(());
        }
        let serving = if answer.version == 0 {
            None
        } else {
            let model = DeliveryModel::from_json(&answer.model_json).map_err(|e| e.to_string())?;
            Some((answer.version, Arc::new(model)))
        };
        tracing::info!(
            version = answer.version,
            "promised windows follow the delivery-time model"
        );
        *self.serving.write().await = serving;
        Ok(())
    }
}

/// Follows tracking-svc's serving model every `every`; while tracking cannot be reached the
/// last model (or the formula) keeps serving.
pub async fn follow(
    transit: Arc<LearnedTransit>,
    tracking: Channel,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut client =
        TrackingServiceClient::new(tracking).max_decoding_message_size(MAX_MODEL_BYTES);
    let mut warned = false;
    loop {
        match transit.refresh(&mut client).await {
            Ok(()) => warned = false,
            Err(reason) if !warned => {
                tracing::warn!(%reason, "cannot read the serving delivery-time model; keeping the current promises");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
