//! assistant-svc: ordering by talking (`oms.assistant.v1.AssistantService`).
//!
//! * [`nlu`] — a deterministic parser for English and German: what the buyer wants (intent)
//!   and the details (product, quantity, delivery method and window), with products matched
//!   against the catalog by spelling and by sound, and a question back when two are close.
//! * [`dialogue`] — the conversation: the draft, the read-back and the spoken yes, undo.
//! * [`when`] — a delivery window as said, as the interval the promise must fit.
//! * [`labelled`] — the labelled utterances it is measured on (`oms assistant evaluate`).
//! * `service` — one turn against order-svc, catalog-svc and tracking-svc; `api` — the handler.
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve assistant` or beside the others under `oms dev`. It keeps no database: the
//! conversations live in memory and expire.

mod api;
pub mod dialogue;
pub mod labelled;
pub mod nlu;
mod service;
pub mod when;

use std::{sync::Arc, time::Duration};

use oms_platform::{
    client,
    config::{ServerArgs, parse_duration},
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{
    assistant::v1::assistant_service_server::AssistantServiceServer,
    catalog::v1::catalog_service_client::CatalogServiceClient,
    order::v1::order_service_client::OrderServiceClient, service_names,
    tracking::v1::tracking_service_client::TrackingServiceClient,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::service::Routes;

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50057;

/// Flags and `OMS_*` variables of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// order-svc address(es).
    #[arg(
        long = "order-url",
        env = "OMS_ORDER_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub order_url: String,
    /// catalog-svc address(es).
    #[arg(
        long = "catalog-url",
        env = "OMS_CATALOG_URL",
        default_value = "http://127.0.0.1:50056"
    )]
    pub catalog_url: String,
    /// tracking-svc address(es).
    #[arg(
        long = "tracking-url",
        env = "OMS_TRACKING_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub tracking_url: String,
    /// Longest wait for another service.
    #[arg(long = "peer-timeout", env = "OMS_PEER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub peer_timeout: Duration,
    /// A conversation without a turn for this long is forgotten.
    #[arg(long = "session-ttl", env = "OMS_SESSION_TTL", default_value = "30m", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// How often the product names are read again from catalog-svc.
    #[arg(long = "catalog-refresh", env = "OMS_CATALOG_REFRESH", default_value = "60s", value_parser = parse_duration)]
    pub catalog_refresh: Duration,
}

/// Starts the service: clients of order, catalog and tracking, the catalog's names (refreshed),
/// the gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let backends = service::Backends {
        orders: OrderServiceClient::new(client::channel(
            "order",
            &config.order_url,
            config.peer_timeout,
        )?),
        catalog: CatalogServiceClient::new(client::channel(
            "catalog",
            &config.catalog_url,
            config.peer_timeout,
        )?),
        tracking: TrackingServiceClient::new(client::channel(
            "tracking",
            &config.tracking_url,
            config.peer_timeout,
        )?),
    };
    let assistant = Arc::new(service::Assistant::new(backends, config.session_ttl));
    let tasks = TaskTracker::new();
    tasks.spawn(follow_catalog(
        assistant.clone(),
        config.catalog_refresh,
        ctx.shutdown.clone(),
    ));
    let routes = Routes::new(AssistantServiceServer::new(api::AssistantApi { assistant }));
    ctx.serve(
        "assistant",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::ASSISTANT],
        tasks,
    )
    .await
}

/// Reads the catalog's names now and every `every` (soon again while catalog-svc is away).
async fn follow_catalog(
    assistant: Arc<service::Assistant>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let wait = match assistant.refresh_catalog().await {
            Ok(count) => {
                tracing::debug!(products = count, "catalog names read");
                every
            }
            Err(status) => {
                tracing::warn!(%status, "cannot read the catalog's names; retrying");
                Duration::from_secs(1).min(every)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
