//! tracking-svc: GPS ingest, ETA, order timelines, notifications and the per-user live
//! stream (`oms.tracking.v1.TrackingService`).
//!
//! * `domain` — pure logic: position plausibility, the ETA model, notification rules.
//! * `store` — shipments, tracks, ETAs, timelines, the feed, preferences, devices, pushes.
//! * `ingest` — positions in, ETAs and arrival alerts out.
//! * `consumers` — order and shipment events into timelines, stream items, alerts, pushes.
//! * `hub`, `live` — the per-user stream: resumable durable items, conflated positions.
//! * `push` — the push worker and its senders; `api` — the gRPC handlers.
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve tracking` or beside the others under `oms dev`.

mod api;
mod consumers;
mod domain;
mod enrich;
mod hub;
mod ingest;
mod live;
mod models;
mod push;
mod sources;
mod store;

use std::{sync::Arc, time::Duration};

use oms_platform::{
    bus::{Area, ConsumerSpec},
    config::{DatabaseArgs, ServerArgs, parse_duration},
    consumer::IdempotentConsumer,
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{service_names, tracking::v1::tracking_service_server::TrackingServiceServer};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;

use domain::{eta::SmoothedSpeed, positions::Limits};
use push::{Backoff, LogSender, PushSender, WebhookSender};

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50055;

/// Flags and `OMS_*` variables of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// Push relay (APNs/FCM gateway) that takes each push as a JSON POST; unset logs pushes.
    #[arg(long = "push-webhook-url", env = "OMS_PUSH_WEBHOOK_URL")]
    pub push_webhook_url: Option<String>,
    /// Timeout of one push request.
    #[arg(long = "push-timeout", env = "OMS_PUSH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub push_timeout: Duration,
    /// Wait after a failed push; doubles per failure.
    #[arg(long = "push-retry-base", env = "OMS_PUSH_RETRY_BASE", default_value = "2s", value_parser = parse_duration)]
    pub push_retry_base: Duration,
    /// Longest wait between push attempts.
    #[arg(long = "push-retry-max", env = "OMS_PUSH_RETRY_MAX", default_value = "10m", value_parser = parse_duration)]
    pub push_retry_max: Duration,
    /// How often due pushes are looked for.
    #[arg(long = "push-poll", env = "OMS_PUSH_POLL", default_value = "200ms", value_parser = parse_duration)]
    pub push_poll: Duration,
    /// Idle streams get a heartbeat this often.
    #[arg(long = "heartbeat", env = "OMS_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// How long the live stream waits, without items of this replica's, before it looks for
    /// other replicas' items.
    #[arg(long = "feed-poll", env = "OMS_FEED_POLL", default_value = "100ms", value_parser = parse_duration)]
    pub feed_poll: Duration,
    /// Breadcrumbs older than this are deleted.
    #[arg(long = "position-retention", env = "OMS_POSITION_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub position_retention: Duration,
    /// Radius around the destination inside which a parcel is "arriving", metres.
    #[arg(long = "geofence-m", env = "OMS_GEOFENCE_M", default_value_t = 300.0)]
    pub geofence_m: f64,
    /// Fastest believable courier movement, km/h.
    #[arg(
        long = "max-speed-kmh",
        env = "OMS_MAX_SPEED_KMH",
        default_value_t = 200.0
    )]
    pub max_speed_kmh: f64,
    /// Hourly weather per grid cell (CSV) for the delivery history.
    #[arg(
        long = "weather-file",
        env = "OMS_WEATHER_FILE",
        conflicts_with = "weather_url"
    )]
    pub weather_file: Option<std::path::PathBuf>,
    /// A live weather provider speaking Open-Meteo's API (http://…).
    #[arg(long = "weather-url", env = "OMS_WEATHER_URL")]
    pub weather_url: Option<String>,
    /// A traffic index per region and hour of the week (CSV) for the delivery history.
    #[arg(
        long = "traffic-file",
        env = "OMS_TRAFFIC_FILE",
        conflicts_with = "traffic_url"
    )]
    pub traffic_file: Option<std::path::PathBuf>,
    /// A live traffic provider: GET ?lat=&lng=&at= answers {"traffic_index": …} (http://…).
    #[arg(long = "traffic-url", env = "OMS_TRAFFIC_URL")]
    pub traffic_url: Option<String>,
    /// Nationwide public holidays per country (Nager.Date-shaped JSON, e.g.
    /// eta-model/data/holidays-de-2025-2027.json) for the delivery history.
    #[arg(long = "holidays-file", env = "OMS_HOLIDAYS_FILE")]
    pub holidays_file: Option<std::path::PathBuf>,
    /// Longest wait for a weather or traffic answer; after it the values stay unknown.
    #[arg(long = "source-timeout", env = "OMS_SOURCE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub source_timeout: Duration,
    /// How often a delivery-time model is trained on the recorded history (promoted only when
    /// better); 0s: only on demand (RetrainEtaModel).
    #[arg(long = "eta-retrain-interval", env = "OMS_ETA_RETRAIN_INTERVAL", default_value = "24h", value_parser = parse_duration)]
    pub eta_retrain_interval: Duration,
    /// Boosting rounds of a delivery-time model.
    #[arg(
        long = "eta-iterations",
        env = "OMS_ETA_ITERATIONS",
        default_value_t = 300
    )]
    pub eta_iterations: usize,
    /// How long after a parcel leaves its history row is completed (weather, traffic, holiday,
    /// load), so that rows recorded together are done together.
    #[arg(long = "enrich-interval", env = "OMS_ENRICH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub enrich_interval: Duration,
}

/// The weather and traffic sources the configuration names.
fn sources(config: &Config) -> Result<enrich::Sources, StartError> {
    let weather: Option<Arc<dyn sources::WeatherSource>> = match (
        &config.weather_file,
        config.weather_url.as_deref().filter(|u| !u.is_empty()),
    ) {
        (Some(path), _) => Some(Arc::new(
            sources::FileWeather::open(path).map_err(StartError::Config)?,
        )),
        (None, Some(url)) => Some(Arc::new(sources::OpenMeteoWeather::new(
            url,
            config.source_timeout,
        ))),
        (None, None) => None,
    };
    let traffic: Option<Arc<dyn sources::TrafficSource>> = match (
        &config.traffic_file,
        config.traffic_url.as_deref().filter(|u| !u.is_empty()),
    ) {
        (Some(path), _) => Some(Arc::new(
            sources::FileTraffic::open(path).map_err(StartError::Config)?,
        )),
        (None, Some(url)) => Some(Arc::new(sources::HttpTraffic::new(
            url,
            config.source_timeout,
        ))),
        (None, None) => None,
    };
    let holidays = match &config.holidays_file {
        Some(path) => Some(Arc::new(
            oms_eta_model::holidays::HolidayCalendar::open(path)
                .map_err(|e| StartError::Config(e.to_string()))?,
        )),
        None => None,
    };
    Ok(enrich::Sources {
        weather,
        traffic,
        holidays,
    })
}

/// Starts the service: database, consumers, the feed tail, the live relays, the push worker,
/// the retention sweep and the gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let sender: Arc<dyn PushSender> =
        match config.push_webhook_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                Arc::new(WebhookSender::new(url, config.push_timeout).map_err(StartError::Config)?)
            }
            None => Arc::new(LogSender),
        };
    let tasks = TaskTracker::new();
    let (db, outbox) = ctx
        .open_database::<store::migration::Migrator>("tracking", &config.database, &tasks)
        .await?;
    let store = store::Store { db: db.clone() };
    let history_written = Arc::new(Notify::new());
    tasks.spawn(enrich::run(
        store.clone(),
        sources(&config)?,
        config.enrich_interval,
        history_written.clone(),
        ctx.shutdown.clone(),
    ));
    let hub = Arc::new(hub::Hub::default());
    let (feed, handed) = tokio::sync::mpsc::unbounded_channel();

    // Order and shipment events feed one handler, applied in the same batches.
    let orders = ConsumerSpec::durable(Area::Order, "tracking-orders")
        .with_filter("oms.order.*.status_changed");
    // Shipment moves and courier assignments come through one consumer, so they are applied
    // in the order fulfillment made them. (It replaced "tracking-shipments", which took
    // shipment moves only: JetStream keeps an existing consumer's filter. A deployment that
    // had it replays the fulfillment stream once; every effect of a shipment event is keyed
    // by the event or converges on the latest state, so that changes nothing.)
    let shipments = ConsumerSpec::durable(Area::Fulfillment, "tracking-fulfillment");
    let handler = Arc::new(consumers::TrackingEvents::new(
        store.clone(),
        history_written,
        feed.clone(),
    ));
    let consumer =
        IdempotentConsumer::new(db.clone(), ctx.bus.clone(), orders, handler).also(shipments);
    tasks.spawn(consumer.run(ctx.shutdown.clone()));
    tasks.spawn(live::tail_feed(
        store.clone(),
        hub.clone(),
        handed,
        config.feed_poll,
        ctx.shutdown.clone(),
    ));
    tasks.spawn(live::relay_live_events(
        ctx.bus.clone(),
        hub.clone(),
        ctx.shutdown.clone(),
    ));
    let backoff = Backoff {
        base: config.push_retry_base,
        max: config.push_retry_max,
    };
    tasks.spawn(push::run(
        store.clone(),
        sender,
        backoff,
        config.push_poll,
        ctx.shutdown.clone(),
    ));
    tasks.spawn(sweep_positions(
        store.clone(),
        config.position_retention,
        ctx.shutdown.clone(),
    ));

    let limits = Limits {
        max_speed_mps: config.max_speed_kmh / 3.6,
        max_clock_skew: chrono::Duration::seconds(30),
        max_age: chrono::Duration::from_std(config.position_retention)
            .unwrap_or(chrono::Duration::days(30)),
    };
    let model = SmoothedSpeed {
        geofence_km: config.geofence_m / 1000.0,
        ..SmoothedSpeed::default()
    };
    let registry = Arc::new(
        models::Registry::load(store.clone(), config.eta_iterations.max(1))
            .await
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let ingest = Arc::new(ingest::Ingest {
        store,
        model: Arc::new(model),
        limits,
        outbox,
        feed,
        models: registry.clone(),
    });
    tasks.spawn(models::run(
        registry.clone(),
        config.eta_retrain_interval,
        ctx.shutdown.clone(),
    ));
    let api = api::TrackingApi {
        models: registry,
        ingest,
        hub,
        heartbeat: config.heartbeat,
        shutdown: ctx.shutdown.clone(),
    };
    let routes = Routes::new(TrackingServiceServer::new(api));
    ctx.serve(
        "tracking",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::TRACKING],
        tasks,
    )
    .await
}

/// Deletes breadcrumbs past their retention, hourly.
async fn sweep_positions(store: store::Store, retention: Duration, shutdown: CancellationToken) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    loop {
        match store.prune_positions(chrono::Utc::now() - retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "old breadcrumbs deleted"),
            Err(error) => tracing::warn!(%error, "deleting old breadcrumbs failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
