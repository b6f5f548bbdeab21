//! The gateway: the public `oms.mobile.v1.MobileOrderService` for the mobile SDK, over gRPC
//! and gRPC-web on one port. It authenticates (OAuth2 bearer JWTs against a JWKS), authorizes
//! by scope (objects are checked by the services against the caller's user id), rate-limits
//! per user, sheds load, and routes to the services.
//!
//! The gateway is a library: [`start`] runs it alone under `oms serve gateway` or beside the
//! services under `oms dev`.

mod api;
pub mod auth;
pub mod dev_key;
mod limits;

use std::{path::PathBuf, sync::Arc, time::Duration};

use oms_platform::{
    client,
    config::{ServerArgs, parse_duration},
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{
    assistant::v1::assistant_service_client::AssistantServiceClient,
    catalog::v1::catalog_service_client::CatalogServiceClient,
    inventory::v1::inventory_service_client::InventoryServiceClient,
    mobile::v1::mobile_order_service_server::MobileOrderServiceServer,
    order::v1::order_service_client::OrderServiceClient, service_names,
    tracking::v1::tracking_service_client::TrackingServiceClient,
};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the gateway listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50051;

/// Flags and `OMS_*` variables of the gateway.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    /// order-svc address(es), comma-separated to balance over several.
    #[arg(
        long = "order-url",
        env = "OMS_ORDER_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub order_url: String,
    /// inventory-svc address(es).
    #[arg(
        long = "inventory-url",
        env = "OMS_INVENTORY_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub inventory_url: String,
    /// tracking-svc address(es).
    #[arg(
        long = "tracking-url",
        env = "OMS_TRACKING_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub tracking_url: String,
    /// catalog-svc address(es).
    #[arg(
        long = "catalog-url",
        env = "OMS_CATALOG_URL",
        default_value = "http://127.0.0.1:50056"
    )]
    pub catalog_url: String,
    /// assistant-svc address(es).
    #[arg(
        long = "assistant-url",
        env = "OMS_ASSISTANT_URL",
        default_value = "http://127.0.0.1:50057"
    )]
    pub assistant_url: String,
    /// The identity provider's JWKS as a file.
    #[arg(long = "jwks-file", env = "OMS_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (re-fetched when keys rotate).
    #[arg(long = "jwks-url", env = "OMS_JWKS_URL", conflicts_with = "jwks_file")]
    pub jwks_url: Option<String>,
    /// Least time between two JWKS re-fetches caused by unknown key ids.
    #[arg(long = "jwks-refetch-min", env = "OMS_JWKS_REFETCH_MIN", default_value = "30s", value_parser = parse_duration)]
    pub jwks_refetch_min: Duration,
    /// Expected `iss` of access tokens.
    #[arg(long = "issuer", env = "OMS_TOKEN_ISSUER", default_value = dev_key::DEV_ISSUER)]
    pub issuer: String,
    /// Expected `aud` of access tokens.
    #[arg(long = "audience", env = "OMS_TOKEN_AUDIENCE", default_value = dev_key::DEV_AUDIENCE)]
    pub audience: String,
    /// Sustained cost units per second per user (a read costs 1, PlaceOrder 5).
    #[arg(
        long = "rate-per-user",
        env = "OMS_RATE_PER_USER",
        default_value_t = 20
    )]
    pub rate_per_user: u32,
    /// Cost units a user may spend at once.
    #[arg(long = "rate-burst", env = "OMS_RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,
    /// Calls in flight before the gateway sheds load.
    #[arg(
        long = "max-in-flight",
        env = "OMS_MAX_IN_FLIGHT",
        default_value_t = 1024
    )]
    pub max_in_flight: usize,
    /// Longest a call may take downstream (a client's shorter deadline wins).
    #[arg(long = "call-timeout", env = "OMS_CALL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// Largest request message accepted, bytes.
    #[arg(long = "max-request-bytes", env = "OMS_MAX_REQUEST_BYTES", default_value_t = 256 * 1024)]
    pub max_request_bytes: usize,
}

/// Starts the gateway. gRPC-web with CORS is always on: browsers and the mobile SDK's
/// gRPC-web transport are its clients.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let source = match (&config.jwks_file, &config.jwks_url) {
        (Some(path), _) => auth::KeySource::File(path.clone()),
        (None, Some(url)) => auth::KeySource::Url(url.clone()),
        (None, None) => {
            return Err(StartError::Config(
                "the gateway needs --jwks-file or --jwks-url (oms dev makes a dev key)".into(),
            ));
        }
    };
    let verifier = auth::Verifier::new(
        source,
        config.issuer.clone(),
        config.audience.clone(),
        config.jwks_refetch_min,
    )
    .await
    .map_err(|e| StartError::Config(e.to_string()))?;
    let limits = Arc::new(limits::Limits::new(
        config.rate_per_user,
        config.rate_burst,
        config.max_in_flight,
    ));
    let tasks = TaskTracker::new();
    tasks.spawn(forget_idle_buckets(limits.clone(), ctx.shutdown.clone()));
    let backends = api::Backends {
        orders: OrderServiceClient::new(client::channel(
            "order",
            &config.order_url,
            config.call_timeout,
        )?),
        inventory: InventoryServiceClient::new(client::channel(
            "inventory",
            &config.inventory_url,
            config.call_timeout,
        )?),
        // The channel's timeout bounds a whole call, and a Subscribe stream is one call: a day,
        // after which the app resumes from its cursor.
        tracking: TrackingServiceClient::new(client::channel(
            "tracking",
            &config.tracking_url,
            Duration::from_secs(24 * 3600),
        )?),
        catalog: CatalogServiceClient::new(client::channel(
            "catalog",
            &config.catalog_url,
            config.call_timeout,
        )?),
        assistant: AssistantServiceClient::new(client::channel(
            "assistant",
            &config.assistant_url,
            config.call_timeout,
        )?),
    };
    let api = api::MobileApi {
        verifier: Arc::new(verifier),
        limits,
        backends,
        timeout: config.call_timeout,
    };
    let mut server = config.server.clone();
    server.grpc_web = true;
    let service =
        MobileOrderServiceServer::new(api).max_decoding_message_size(config.max_request_bytes);
    ctx.serve(
        "gateway",
        &server,
        DEFAULT_PORT,
        Routes::new(service),
        vec![service_names::MOBILE],
        tasks,
    )
    .await
}

async fn forget_idle_buckets(
    limits: Arc<limits::Limits>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => limits.forget_idle(),
        }
    }
}
