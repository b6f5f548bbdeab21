//! Pure tracking logic: which positions to accept, the ETA model, quiet hours and what is
//! worth a notification. No I/O here.

pub mod effects;
pub mod eta;
pub mod history;
pub mod models;
pub mod notify;
pub mod positions;

use oms_platform::error::ApiError;

/// Why a tracking operation failed, in domain words; [`ApiError`] decides the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// The request is malformed; nothing changed.
    #[error(transparent)]
    Invalid(ApiError),
    /// The shipment is not known (or not the caller's).
    #[error("shipment {0}")]
    UnknownShipment(String),
    /// Storage failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// An event could not be built.
    #[error("event: {0}")]
    Event(#[from] oms_platform::bus::BusError),
    /// Stored data does not decode.
    #[error("stored data: {0}")]
    Corrupt(String),
}

impl From<ApiError> for TrackingError {
    fn from(error: ApiError) -> Self {
        TrackingError::Invalid(error)
    }
}

impl From<TrackingError> for ApiError {
    fn from(error: TrackingError) -> Self {
        match error {
            TrackingError::Invalid(error) => error,
            TrackingError::UnknownShipment(id) => ApiError::NotFound(format!("shipment {id}")),
            TrackingError::Db(error) => ApiError::internal(error),
            TrackingError::Event(error) => ApiError::internal(error),
            TrackingError::Corrupt(message) => ApiError::internal(std::io::Error::other(message)),
        }
    }
}

impl From<TrackingError> for tonic::Status {
    fn from(error: TrackingError) -> Self {
        ApiError::from(error).into()
    }
}
