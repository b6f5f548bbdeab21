//! The Prometheus endpoint: one listener per process, shared by every service in it.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the Prometheus endpoint on {address}: {reason}")]
pub struct MetricsError {
    /// The address.
    pub address: SocketAddr,
    /// Why.
    pub reason: String,
}

/// Serves `/metrics` on `address` (call once, inside the runtime).
pub fn install(address: SocketAddr) -> Result<(), MetricsError> {
    // Bind first so a taken port is a clear error rather than a log line from the exporter.
    std::net::TcpListener::bind(address).map_err(|e| MetricsError {
        address,
        reason: e.to_string(),
    })?;
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])
        .and_then(|builder| builder.install())
        .map_err(|e| MetricsError {
            address,
            reason: e.to_string(),
        })
}
