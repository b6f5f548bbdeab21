//! What the app can buy: search, browse and product pages, routed to catalog-svc. Products are
//! the same for every buyer, so there is no object to check; the token, its scope and the
//! caller's rate limit still apply.

use oms_proto::{catalog::v1 as cat, mobile::v1 as pb};
use tonic::{Request, Response, Status};

use super::{MobileApi, retrying};
use crate::auth::scope;

/// Products matching a query.
pub(super) async fn search_products(
    api: &MobileApi,
    request: Request<pb::SearchProductsRequest>,
) -> Result<Response<pb::SearchProductsResponse>, Status> {
    let call = api
        .admit(&request, "SearchProducts", scope::READ, false)
        .await?;
    let r = request.into_inner();
    let message = cat::SearchProductsRequest {
        query: r.query,
        locale: r.locale,
        category_path: r.category_path,
        deliverable_only: r.deliverable_only,
        near: r.near,
        page_size: r.page_size,
        page_token: r.page_token,
    };
    let found = retrying(|| async {
        api.backends
            .catalog
            .clone()
            .search_products(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::SearchProductsResponse {
        products: found.products,
        next_page_token: found.next_page_token,
    }))
}

/// A category's products.
pub(super) async fn browse_catalog(
    api: &MobileApi,
    request: Request<pb::BrowseCatalogRequest>,
) -> Result<Response<pb::BrowseCatalogResponse>, Status> {
    let call = api
        .admit(&request, "BrowseCatalog", scope::READ, false)
        .await?;
    let r = request.into_inner();
    let message = cat::BrowseCatalogRequest {
        category_path: r.category_path,
        locale: r.locale,
        near: r.near,
        page_size: r.page_size,
        page_token: r.page_token,
    };
    let page = retrying(|| async {
        api.backends
            .catalog
            .clone()
            .browse_catalog(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::BrowseCatalogResponse {
        products: page.products,
        next_page_token: page.next_page_token,
        subcategories: page.subcategories,
    }))
}

/// One product page.
pub(super) async fn get_product(
    api: &MobileApi,
    request: Request<pb::GetProductRequest>,
) -> Result<Response<pb::GetProductResponse>, Status> {
    let call = api
        .admit(&request, "GetProduct", scope::READ, false)
        .await?;
    let r = request.into_inner();
    let message = cat::GetProductRequest {
        sku: r.sku,
        locale: r.locale,
        platform: r.platform,
        network: r.network,
        near: r.near,
    };
    let product = retrying(|| async {
        api.backends
            .catalog
            .clone()
            .get_product(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::GetProductResponse {
        product: product.product,
    }))
}
