//! Pure catalog logic: what a product and its AR model must carry, which AR file a device
//! gets, the texts for a locale, and how soon stock can reach a buyer. No I/O here.

pub mod ar;
pub mod delivery;
pub mod explain;
pub mod product;

use oms_platform::error::ApiError;

/// Why a catalog operation failed, in domain words; [`ApiError`] decides the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request is malformed; nothing changed.
    #[error(transparent)]
    Invalid(ApiError),
    /// No such (active) product.
    #[error("product {0}")]
    UnknownProduct(String),
    /// Storage failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The search index failed.
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
    /// Stored data does not decode.
    #[error("stored data: {0}")]
    Corrupt(String),
}

impl From<ApiError> for CatalogError {
    fn from(error: ApiError) -> Self {
        CatalogError::Invalid(error)
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(error) => error,
            CatalogError::UnknownProduct(sku) => ApiError::NotFound(format!("product {sku}")),
            CatalogError::Db(error) => ApiError::internal(error),
            CatalogError::Search(error) => ApiError::internal(error),
            CatalogError::Corrupt(message) => ApiError::internal(std::io::Error::other(message)),
        }
    }
}

impl From<CatalogError> for tonic::Status {
    fn from(error: CatalogError) -> Self {
        ApiError::from(error).into()
    }
}
