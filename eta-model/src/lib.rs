//! Delivery-time prediction learned from history.
//!
//! - [`history`]: the CSV a delivery history is kept and exchanged in (one row per delivered
//!   shipment: what was known at dispatch, and how long it took).
//! - [`features`]: what the model sees of a row.
//! - [`holidays`]: nationwide public holidays per country, from a Nager.Date-shaped file.
//! - [`baseline`]: duration = a + distance / speed, fitted by least squares — what a formula
//!   gets, and the bar a model must clear.
//! - [`model`]: gradient-boosted trees (perpetual) for the P50 and P90 duration.
//! - [`evaluate`]: a split by time (the last 20% held out) and the figures of both.
//! - [`simulate`]: a year of deliveries in the sample world with effects a distance formula
//!   cannot see, for tests, benchmarks and docs.

pub mod baseline;
pub mod evaluate;
pub mod features;
pub mod history;
pub mod holidays;
pub mod model;
pub mod simulate;

/// Why reading, training or predicting failed.
#[derive(Debug, thiserror::Error)]
pub enum EtaError {
    /// The history file could not be read or written.
    #[error("history: {0}")]
    Io(#[from] std::io::Error),
    /// A history row does not fit the schema.
    #[error("history line {line}: {message}")]
    Row {
        /// 1-based line in the file (the header is line 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Too little to learn from.
    #[error("{0}")]
    TooFew(String),
    /// The boosting library failed.
    #[error("model: {0}")]
    Model(String),
    /// A holiday calendar does not read.
    #[error("holiday calendar: {0}")]
    Calendar(String),
    /// A model file does not decode.
    #[error("model file: {0}")]
    ModelFile(String),
}
