//! The gRPC handlers: unwrap, call the use case, wrap. Errors become statuses in one place
//! (`domain::CatalogError` → `ApiError` → `Status`).

use std::sync::Arc;

use oms_platform::error::ApiError;
use oms_proto::catalog::v1::{
    BrowseCatalogRequest, BrowseCatalogResponse, GetProductRequest, GetProductResponse,
    ImportProductsRequest, ImportProductsResponse, RecommendRequest, RecommendResponse,
    ReportInteractionRequest, ReportInteractionResponse, SearchProductsRequest,
    SearchProductsResponse, SetPersonalizationRequest, SetPersonalizationResponse,
    UpsertProductRequest, UpsertProductResponse, catalog_service_server::CatalogService,
};
use tonic::{Request, Response, Status};

use crate::catalog::Catalog;

/// `oms.catalog.v1.CatalogService`.
pub struct CatalogApi {
    /// The use cases.
    pub catalog: Arc<Catalog>,
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn upsert_product(
        &self,
        request: Request<UpsertProductRequest>,
    ) -> Result<Response<UpsertProductResponse>, Status> {
        let product = request
            .into_inner()
            .product
            .ok_or_else(|| Status::from(ApiError::invalid("product", "required")))?;
        let product = self.catalog.upsert(product).await?;
        Ok(Response::new(UpsertProductResponse {
            product: Some(product),
        }))
    }

    async fn import_products(
        &self,
        request: Request<ImportProductsRequest>,
    ) -> Result<Response<ImportProductsResponse>, Status> {
        let imported = self
            .catalog
            .import_all(request.into_inner().products)
            .await?;
        Ok(Response::new(ImportProductsResponse {
            imported: u32::try_from(imported).unwrap_or(u32::MAX),
        }))
    }

    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        let product = self.catalog.get(request.get_ref())?;
        Ok(Response::new(GetProductResponse {
            product: Some(product),
        }))
    }

    async fn search_products(
        &self,
        request: Request<SearchProductsRequest>,
    ) -> Result<Response<SearchProductsResponse>, Status> {
        Ok(Response::new(self.catalog.search(request.get_ref())?))
    }

    async fn browse_catalog(
        &self,
        request: Request<BrowseCatalogRequest>,
    ) -> Result<Response<BrowseCatalogResponse>, Status> {
        Ok(Response::new(self.catalog.browse(request.get_ref())?))
    }

    async fn recommend(
        &self,
        request: Request<RecommendRequest>,
    ) -> Result<Response<RecommendResponse>, Status> {
        Ok(Response::new(self.catalog.recommend(request.get_ref())?))
    }

    async fn report_interaction(
        &self,
        request: Request<ReportInteractionRequest>,
    ) -> Result<Response<ReportInteractionResponse>, Status> {
        let recorded = self.catalog.report_interaction(request.get_ref()).await?;
        Ok(Response::new(ReportInteractionResponse { recorded }))
    }

    async fn set_personalization(
        &self,
        request: Request<SetPersonalizationRequest>,
    ) -> Result<Response<SetPersonalizationResponse>, Status> {
        let deleted = self.catalog.set_personalization(request.get_ref()).await?;
        Ok(Response::new(SetPersonalizationResponse {
            interactions_deleted: u32::try_from(deleted).unwrap_or(u32::MAX),
        }))
    }
}
