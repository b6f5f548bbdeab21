//! Server bootstrap: every service is served the same way.
//!
//! [`serve`] adds gRPC health (every named service and the server as a whole), server
//! reflection (v1 and v1alpha, for grpcurl and `buf curl`), optional gRPC-web with CORS on
//! the same port, request ids, a span per call and Prometheus metrics; it stops accepting on
//! shutdown, reports NOT_SERVING, and gives in-flight calls and streams `drain_timeout` to
//! finish.

use std::{
    net::SocketAddr,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderName, HeaderValue, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::{
    classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier},
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{config::ServerArgs, telemetry::REQUEST_ID_HEADER};

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is taken or not ours.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not load the descriptors (a build problem).
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Binds `address` with a clear error when it is taken.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

/// What to serve besides the service's own routes.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Fully qualified names reported by the health service (e.g. `oms.order.v1.OrderService`).
    pub service_names: Vec<&'static str>,
    /// Accept gRPC-web (HTTP/1.1) with CORS.
    pub grpc_web: bool,
    /// CORS origins; empty allows any.
    pub cors_origins: Vec<String>,
    /// Grace period for in-flight calls and streams after shutdown.
    pub drain_timeout: Duration,
    /// HTTP/2 streams per connection; `None` keeps hyper's default.
    pub max_concurrent_streams: Option<u32>,
}

impl ServeOptions {
    /// Options from the service's flags.
    pub fn from_args(args: &ServerArgs, service_names: Vec<&'static str>) -> Self {
        Self {
            service_names,
            grpc_web: args.grpc_web,
            cors_origins: args.cors_origins.clone(),
            drain_timeout: args.drain_timeout,
            max_concurrent_streams: None,
        }
    }
}

/// Serves `routes` on `listener` until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    for name in &options.service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(oms_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(oms_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TraceLayer::new(SharedClassifier::new(server_failures())).make_span_with(call_span))
        .layer(GrpcMetricsLayer)
        .option_layer(options.grpc_web.then(|| cors(&options.cors_origins)))
        .option_layer(options.grpc_web.then(tonic_web::GrpcWebLayer::new))
        .into_inner();

    let signal = {
        let shutdown = shutdown.clone();
        let health = health.clone();
        async move {
            shutdown.cancelled().await;
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in &options.service_names {
                health
                    .set_service_status(*name, ServingStatus::NotServing)
                    .await;
            }
        }
    };
    let server = tonic::transport::Server::builder()
        .accept_http1(options.grpc_web)
        .max_concurrent_streams(options.max_concurrent_streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(layers)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Small replies must not wait for Nagle + delayed ACK (~40 ms per call).
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            signal,
        );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => Ok(result?),
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(options.drain_timeout).await;
        } => {
            tracing::warn!(drain_timeout = ?options.drain_timeout, "calls still open after the drain timeout; closing them");
            Ok(())
        }
    }
}

/// Only codes that mean "the server failed" are logged as errors; a caller's mistake or an
/// out-of-stock answer is an ordinary outcome.
fn server_failures() -> GrpcErrorsAsFailures {
    [
        GrpcCode::Cancelled,
        GrpcCode::InvalidArgument,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Unauthenticated,
    ]
    .into_iter()
    .fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    )
}

fn call_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("grpc", method = %request.uri().path(), request_id = %request_id)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let header = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            header("content-type"),
            header("authorization"),
            header("x-grpc-web"),
            header("x-user-agent"),
            header("grpc-timeout"),
            header(REQUEST_ID_HEADER),
            header("idempotency-key"),
        ])
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
            header("retry-after"),
            header(REQUEST_ID_HEADER),
        ])
        .max_age(Duration::from_secs(3600))
}

/// Records `oms_grpc_requests_total{method,code}` and `oms_grpc_request_seconds{method}`.
///
/// The code is read from the response headers: errors are trailers-only responses and carry
/// `grpc-status` there; a call that answered normally is counted as `0` (OK). Streaming calls
/// are timed to their first response, not their end.
#[derive(Clone, Copy, Debug)]
struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Clone, Debug)]
struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for GrpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0")
                .to_owned();
            metrics::histogram!("oms_grpc_request_seconds", "method" => method.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("oms_grpc_requests_total", "method" => method, "code" => code)
                .increment(1);
            Ok(response)
        })
    }
}
