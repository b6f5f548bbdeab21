//! Promised windows from the learned delivery-time model, when one serves: tracking-svc trains
//! and promotes it on the recorded history; this follows the serving version and, for each
//! planned parcel, promises from dispatch + P50 to dispatch + P90 instead of the carrier
//! formula. What is known at planning goes into the prediction: the center's load today and
//! whether the dispatch day is a public holiday at the destination (with `--holidays-file`);
//! the weather and traffic of a future hour are not, so the model treats them as unknown. The route is still chosen by the formula (and a requested window still bounds the
//! promise); without a model, or for a promise the model cannot fit in the requested window,
//! the formula's promise stands.

use std::{sync::Arc, time::Duration};

use oms_eta_model::{
    history::{Delivery, Weather},
    holidays::HolidayCalendar,
    model::DeliveryModel,
};
use oms_proto::tracking::v1::{
    GetServingEtaModelRequest, tracking_service_client::TrackingServiceClient,
};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::domain::{
    Center, MethodOffer, routing::Window, schedule::Promise, validate::Destination,
};

/// Largest model file accepted from tracking-svc.
const MAX_MODEL_BYTES: usize = 256 << 20;

/// The serving model, if any, with its version.
#[derive(Default)]
pub struct LearnedTransit {
    serving: RwLock<Option<(i64, Arc<DeliveryModel>)>>,
    holidays: Option<HolidayCalendar>,
}

impl LearnedTransit {
    /// No model yet; `holidays` tells the model which dispatch days are public holidays.
    pub fn new(holidays: Option<HolidayCalendar>) -> Self {
        Self {
            serving: RwLock::default(),
            holidays,
        }
    }

    /// The serving version (0 for none).
    pub async fn version(&self) -> i64 {
        self.serving.read().await.as_ref().map_or(0, |(v, _)| *v)
    }

    /// The promise for a parcel from `center` (at `load`: today's orders over its capacity) to
    /// `destination` by `offer`, given the formula's.
    pub async fn promise(
        &self,
        center: &Center,
        load: f64,
        destination: &Destination,
        offer: &MethodOffer,
        formula: Promise,
        requested: Option<Window>,
    ) -> Promise {
        let Some((_, model)) = self.serving.read().await.clone() else {
            return formula;
        };
        let point = destination.point;
        let parcel = Delivery {
            dispatched_at: formula.dispatch_at,
            origin: (center.point.lat, center.point.lng),
            destination: (point.lat, point.lng),
            carrier: offer.carrier.to_lowercase(),
            method: offer
                .method
                .to_proto()
                .as_str_name()
                .trim_start_matches("SHIPPING_METHOD_")
                .to_lowercase(),
            weather: Weather::default(),
            traffic_index: None,
            holiday: self.holidays.as_ref().and_then(|calendar| {
                calendar.holiday_at(&destination.country, point.lng, formula.dispatch_at)
            }),
            center_load: load.is_finite().then_some(load),
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
