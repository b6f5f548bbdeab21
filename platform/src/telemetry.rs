//! Logging with `tracing`: pretty for people, JSON for pipelines; request ids on every span.
//!
//! The gRPC server (see `server`) opens one span per call carrying the method and the
//! `x-request-id` (taken from the caller or generated), so every log line of a call can be
//! found by its id, across services when the id is propagated in metadata.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, TelemetryArgs};

/// The metadata key carrying a request id from hop to hop.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter directives do not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The directives given.
        filter: String,
        /// Why they do not parse.
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global subscriber. Calling it again (tests, `oms dev` restarts) is harmless.
pub fn init(args: &TelemetryArgs) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(&args.log_filter).map_err(|source| TelemetryError::Filter {
        filter: args.log_filter.clone(),
        source,
    })?;
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` fails only when a subscriber is already set, which is fine to keep.
    let _already_set = match args.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init(),
    };
    Ok(())
}

/// Logging for tests: honours `OMS_LOG`/`RUST_LOG`, writes through the test harness.
pub fn init_for_tests() {
    let filter = std::env::var("OMS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".into());
    let _already_set = tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(fmt::layer().compact().with_test_writer())
        .try_init();
}
