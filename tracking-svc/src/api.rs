//! gRPC handlers of `oms.tracking.v1`: decode, check, call, map errors.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use oms_platform::error::{ApiError, Violations};
use oms_platform::events::from_timestamp;
use oms_proto::tracking::v1::{self as pb, tracking_service_server::TrackingService};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{TrackingError, notify, positions},
    hub::Hub,
    ingest::{Ingest, Tally},
    live,
    models::Registry,
    store::{Device, Store, models::Version},
};

fn version_proto(version: &Version) -> pb::EtaModelVersion {
    pb::EtaModelVersion {
        version: version.version,
        trained_at: Some(oms_platform::events::to_timestamp(version.trained_at)),
        trained_rows: u32::try_from(version.trained_rows).unwrap_or(0),
        held_out: u32::try_from(version.held_out).unwrap_or(0),
        mae_min: version.mae_min,
        p90_abs_err_min: version.p90_abs_err_min,
        p90_coverage: version.p90_coverage,
        baseline_mae_min: version.baseline_mae_min,
        serving: version.serving,
        note: version.note.clone(),
    }
}

/// A BCP 47 tag in the shape apps send ("de", "de-DE", "zh-Hant-TW"): letters and digits in
/// parts of 1 to 8, the first all letters.
fn is_language_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').enumerate().all(|(i, part)| {
            (1..=8).contains(&part.len())
                && if i == 0 {
                    part.chars().all(|c| c.is_ascii_alphabetic())
                } else {
                    part.chars().all(|c| c.is_ascii_alphanumeric())
                }
        })
}

/// The response stream of `Subscribe`.
type LiveStream =
    Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send + 'static>>;

/// Most positions in one batch call.
const MAX_BATCH: usize = 1_000;
/// Most SKUs one stream watches.
const MAX_WATCHED: usize = 100;
/// Most delivery history rows one export returns.
const MAX_EXPORT: u32 = 200_000;

/// The service's gRPC API.
pub struct TrackingApi {
    /// Delivery-time models.
    pub models: Arc<Registry>,
    /// Positions and ETAs.
    pub ingest: Arc<Ingest>,
    /// The streams of this process.
    pub hub: Arc<Hub>,
    /// Heartbeat interval of idle streams.
    pub heartbeat: Duration,
    /// Ends the streams at shutdown.
    pub shutdown: CancellationToken,
}

impl TrackingApi {
    fn store(&self) -> &Store {
        &self.ingest.store
    }

    /// The shipment, if the caller may see it (`user_id` empty: services and operators).
    async fn visible_shipment(&self, shipment_id: &str, user_id: &str) -> Result<(), Status> {
        let mut v = Violations::new();
        v.id("shipment_id", shipment_id);
        v.into_result()?;
        let shipment = self.store().shipment(&self.store().db, shipment_id).await?;
        if !user_id.is_empty() && shipment.user_id != user_id {
            return Err(TrackingError::UnknownShipment(shipment_id.to_owned()).into());
        }
        Ok(())
    }
}

fn respond(tally: Tally) -> (u32, u32, Vec<pb::PositionRejection>) {
    (tally.accepted, tally.duplicates, tally.rejections)
}

/// The courier a call reports for (`None`: a service or carrier feed, any shipment).
fn courier_of(courier_id: &str) -> Result<Option<String>, Status> {
    if courier_id.is_empty() {
        return Ok(None);
    }
    let mut v = Violations::new();
    v.id("courier_id", courier_id);
    v.into_result()?;
    Ok(Some(courier_id.to_owned()))
}

/// A courier's device ids live in the courier's own namespace, so one courier's app cannot
/// pass for another's device (each device's fixes are checked against its previous one): the
/// stored id is a digest of courier and device, which fits the column whatever their lengths.
fn in_courier_namespace(
    courier: Option<&str>,
    mut reports: Vec<pb::PositionReport>,
) -> Vec<pb::PositionReport> {
    if let Some(courier) = courier {
        // An invalid id is left as it is, to be refused with its reason.
        for report in reports
            .iter_mut()
            .filter(|r| positions::is_id(&r.device_id))
        {
            let digest = Sha256::new()
                .chain_update(courier.as_bytes())
                .chain_update([0])
                .chain_update(report.device_id.as_bytes())
                .finalize();
            report.device_id = format!("courier:{}", &hex::encode(digest)[..32]);
        }
    }
    reports
}

#[tonic::async_trait]
impl TrackingService for TrackingApi {
    async fn stream_positions(
        &self,
        request: Request<Streaming<pb::StreamPositionsRequest>>,
    ) -> Result<Response<pb::StreamPositionsResponse>, Status> {
        // Whatever has arrived is taken together (a statement per kind of row, not per fix).
        let mut feed = request.into_inner().ready_chunks(MAX_BATCH);
        let mut tally = Tally::default();
        let mut index = 0u32;
        // Set by the first message; every later one must name the same courier.
        let mut courier: Option<Option<String>> = None;
        while let Some(messages) = feed.next().await {
            // Runs of messages that carry a position go in together.
            let mut run = Vec::with_capacity(messages.len());
            let mut run_start = index;
            for message in messages {
                let message = message?;
                let this = courier_of(&message.courier_id)?;
                if *courier.get_or_insert_with(|| this.clone()) != this {
                    return Err(ApiError::invalid("courier_id", "the same in every message").into());
                }
                match message.position {
                    Some(report) => run.push(report),
                    None => {
                        let who = courier.clone().flatten();
                        let reports =
                            in_courier_namespace(who.as_deref(), std::mem::take(&mut run));
                        self.ingest
                            .take_all(run_start, &reports, who.as_deref(), &mut tally)
                            .await?;
                        tally.rejections.push(pb::PositionRejection {
                            index,
                            reason: "position: required".into(),
                        });
                        run_start = index.saturating_add(1);
                    }
                }
                index = index.saturating_add(1);
            }
            let who = courier.clone().flatten();
            let reports = in_courier_namespace(who.as_deref(), run);
            self.ingest
                .take_all(run_start, &reports, who.as_deref(), &mut tally)
                .await?;
        }
        let (accepted, duplicates, rejections) = respond(tally);
        Ok(Response::new(pb::StreamPositionsResponse {
            accepted,
            duplicates,
            rejections,
        }))
    }

    async fn report_positions(
        &self,
        request: Request<pb::ReportPositionsRequest>,
    ) -> Result<Response<pb::ReportPositionsResponse>, Status> {
        let request = request.into_inner();
        let courier = courier_of(&request.courier_id)?;
        if request.positions.is_empty() || request.positions.len() > MAX_BATCH {
            return Err(
                ApiError::invalid("positions", format!("1 to {MAX_BATCH} positions")).into(),
            );
        }
        let positions = in_courier_namespace(courier.as_deref(), request.positions);
        let mut tally = Tally::default();
        self.ingest
            .take_all(0, &positions, courier.as_deref(), &mut tally)
            .await?;
        let (accepted, duplicates, rejections) = respond(tally);
        Ok(Response::new(pb::ReportPositionsResponse {
            accepted,
            duplicates,
            rejections,
        }))
    }

    async fn get_eta(
        &self,
        request: Request<pb::GetEtaRequest>,
    ) -> Result<Response<pb::GetEtaResponse>, Status> {
        let request = request.into_inner();
        self.visible_shipment(&request.shipment_id, &request.user_id)
            .await?;
        let eta = self.store().eta(&request.shipment_id).await?;
        let eta = eta.ok_or_else(|| {
            Status::not_found(format!(
                "no position of shipment {} yet",
                request.shipment_id
            ))
        })?;
        Ok(Response::new(pb::GetEtaResponse { eta: Some(eta) }))
    }

    async fn get_track(
        &self,
        request: Request<pb::GetTrackRequest>,
    ) -> Result<Response<pb::GetTrackResponse>, Status> {
        let request = request.into_inner();
        self.visible_shipment(&request.shipment_id, &request.user_id)
            .await?;
        let points = self.store().track(&request.shipment_id).await?;
        Ok(Response::new(pb::GetTrackResponse { points }))
    }

    async fn get_timeline(
        &self,
        request: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.into_result()?;
        let (owner, entries) = self.store().timeline(&request.order_id).await?;
        if entries.is_empty() || (!request.user_id.is_empty() && owner != request.user_id) {
            return Err(
                ApiError::NotFound(format!("timeline of order {}", request.order_id)).into(),
            );
        }
        Ok(Response::new(pb::GetTimelineResponse { entries }))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<pb::GetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::GetNotificationPreferencesResponse>, Status> {
        let user_id = request.into_inner().user_id;
        let mut v = Violations::new();
        v.id("user_id", &user_id);
        v.into_result()?;
        let preferences = self.store().preferences(&self.store().db, &user_id).await?;
        Ok(Response::new(pb::GetNotificationPreferencesResponse {
            preferences: Some(preferences),
        }))
    }

    async fn set_notification_preferences(
        &self,
        request: Request<pb::SetNotificationPreferencesRequest>,
    ) -> Result<Response<pb::SetNotificationPreferencesResponse>, Status> {
        let preferences = request
            .into_inner()
            .preferences
            .ok_or_else(|| Status::from(ApiError::invalid("preferences", "required")))?;
        let mut v = Violations::new();
        v.id("preferences.user_id", &preferences.user_id);
        if let Err((field, problem)) = notify::check_preferences(&preferences) {
            v.add(field, problem);
        }
        v.into_result()?;
        self.store().set_preferences(&preferences).await?;
        Ok(Response::new(pb::SetNotificationPreferencesResponse {
            preferences: Some(preferences),
        }))
    }

    async fn register_device(
        &self,
        request: Request<pb::RegisterDeviceRequest>,
    ) -> Result<Response<pb::RegisterDeviceResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        v.text("device_token", &request.device_token, 512, true);
        if pb::DevicePlatform::try_from(request.platform).is_err() || request.platform == 0 {
            v.add("platform", "IOS, ANDROID or WEB");
        }
        if !request.locale.is_empty() && !is_language_tag(&request.locale) {
            v.add("locale", "a BCP 47 language tag such as de-DE");
        }
        v.into_result()?;
        let device = Device {
            token: request.device_token,
            platform: request.platform,
            locale: request.locale,
        };
        self.store()
            .register_device(&request.user_id, &device)
            .await?;
        Ok(Response::new(pb::RegisterDeviceResponse {}))
    }

    async fn unregister_device(
        &self,
        request: Request<pb::UnregisterDeviceRequest>,
    ) -> Result<Response<pb::UnregisterDeviceResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        v.text("device_token", &request.device_token, 512, true);
        v.into_result()?;
        let removed = self
            .store()
            .unregister_device(&request.user_id, &request.device_token)
            .await?;
        Ok(Response::new(pb::UnregisterDeviceResponse { removed }))
    }

    async fn export_delivery_history(
        &self,
        request: Request<pb::ExportDeliveryHistoryRequest>,
    ) -> Result<Response<pb::ExportDeliveryHistoryResponse>, Status> {
        let request = request.into_inner();
        let since = request
            .since
            .as_ref()
            .map(|at| {
                from_timestamp(at)
                    .ok_or_else(|| Status::from(ApiError::invalid("since", "not a valid time")))
            })
            .transpose()?;
        let limit = match request.limit {
            0 => MAX_EXPORT,
            n => n.min(MAX_EXPORT),
        };
        let rows = self
            .store()
            .delivery_history(since, u64::from(limit))
            .await?;
        let mut csv = Vec::new();
        oms_eta_model::history::write(&mut csv, &rows)
            .map_err(|e| Status::internal(format!("history export: {e}")))?;
        Ok(Response::new(pb::ExportDeliveryHistoryResponse {
            csv,
            rows: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn retrain_eta_model(
        &self,
        _request: Request<pb::RetrainEtaModelRequest>,
    ) -> Result<Response<pb::RetrainEtaModelResponse>, Status> {
        let (version, promoted) = self.models.retrain().await?.ok_or_else(|| {
            Status::failed_precondition(
                "the recorded delivery history is too short to learn from (200 delivered rows needed)",
            )
        })?;
        Ok(Response::new(pb::RetrainEtaModelResponse {
            model: Some(version_proto(&version)),
            promoted,
        }))
    }

    async fn list_eta_models(
        &self,
        _request: Request<pb::ListEtaModelsRequest>,
    ) -> Result<Response<pb::ListEtaModelsResponse>, Status> {
        let models = self.models.versions().await?;
        Ok(Response::new(pb::ListEtaModelsResponse {
            models: models.iter().map(version_proto).collect(),
        }))
    }

    async fn promote_eta_model(
        &self,
        request: Request<pb::PromoteEtaModelRequest>,
    ) -> Result<Response<pb::PromoteEtaModelResponse>, Status> {
        let version = request.into_inner().version;
        let model =
            self.models.promote(version).await?.ok_or_else(|| {
                Status::not_found(format!("delivery-time model version {version}"))
            })?;
        Ok(Response::new(pb::PromoteEtaModelResponse {
            model: Some(version_proto(&model)),
        }))
    }

    async fn get_serving_eta_model(
        &self,
        request: Request<pb::GetServingEtaModelRequest>,
    ) -> Result<Response<pb::GetServingEtaModelResponse>, Status> {
        let known = request.into_inner().known_version;
        let Some((version, model)) = self.models.serving().await else {
            return Ok(Response::new(pb::GetServingEtaModelResponse::default()));
        };
        let model_json = if version == known {
            String::new()
        } else {
            model
                .to_json()
                .map_err(|e| Status::internal(format!("model file: {e}")))?
        };
        Ok(Response::new(pb::GetServingEtaModelResponse {
            version,
            model_json,
        }))
    }

    async fn get_order_tracking(
        &self,
        request: Request<pb::GetOrderTrackingRequest>,
    ) -> Result<Response<pb::GetOrderTrackingResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &request.order_id);
        v.into_result()?;
        let (timeline_owner, timeline) = self.store().timeline(&request.order_id).await?;
        let (shipments_owner, shipments) = self.store().order_shipments(&request.order_id).await?;
        let owner = if timeline_owner.is_empty() {
            shipments_owner
        } else {
            timeline_owner
        };
        if owner.is_empty() || (!request.user_id.is_empty() && owner != request.user_id) {
            return Err(
                ApiError::NotFound(format!("tracking of order {}", request.order_id)).into(),
            );
        }
        Ok(Response::new(pb::GetOrderTrackingResponse {
            order_id: request.order_id,
            timeline,
            shipments,
        }))
    }

    type SubscribeStream = LiveStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("user_id", &request.user_id);
        let resume_after = match request.resume_cursor.as_str() {
            "" => None,
            cursor => match cursor.parse::<i64>() {
                Ok(seq) if seq >= 0 => Some(seq),
                _ => {
                    v.add("resume_cursor", "not a cursor this service issued");
                    None
                }
            },
        };
        if request.watch_skus.len() > MAX_WATCHED {
            v.add("watch_skus", format!("at most {MAX_WATCHED}"));
        }
        for (i, sku) in request.watch_skus.iter().enumerate() {
            v.id(format!("watch_skus[{i}]"), sku);
        }
        v.into_result()?;
        let stream = live::open(
            self.hub.clone(),
            self.store().clone(),
            request.user_id,
            request.watch_skus,
            resume_after,
            self.heartbeat,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
