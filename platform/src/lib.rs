//! What every OMS service stands on.
//!
//! * [`config`] — flags and `OMS_*` environment variables shared by every service.
//! * [`telemetry`] — `tracing` setup (pretty or JSON) and request ids.
//! * [`db`] — sea-orm connections to SQLite or PostgreSQL and migrations at start.
//! * [`bus`] — the event bus trait with NATS JetStream and in-process implementations.
//! * [`client`] — channels to peer services.
//! * [`outbox`] — the transactional outbox producers write.
//! * [`relay`] — the relay that publishes it.
//! * [`consumer`] — idempotent consumers (each event applied once).
//! * [`stock_view`] — stock availability as last heard from inventory's events.
//! * [`server`] — the gRPC server bootstrap: health, reflection, gRPC-web, metrics, drain.
//! * [`metrics`] — the Prometheus endpoint.
//! * [`error`] — the one error type and its mapping to `tonic::Status`.
//! * [`money`] — currencies, minor units, exact amounts.
//! * [`events`] — building event envelopes.
//! * [`geo`] — great-circle distances.
//! * [`idempotency`] — stored results of idempotent calls.
//! * [`runtime`] — what a running service gets from its host process.

pub mod bus;
pub mod client;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod events;
pub mod geo;
pub mod idempotency;
pub mod metrics;
pub mod migration;
pub mod money;
pub mod outbox;
pub mod relay;
pub mod runtime;
pub mod sample;
pub mod server;
pub mod stock_view;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::ApiError;
