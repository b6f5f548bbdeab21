//! What the app can buy: search, browse, product pages and recommendations, routed to
//! catalog-svc. Products are the same for every buyer, so there is no object to check; the
//! token, its scope and the caller's rate limit still apply, and what is personal
//! (recommendations, interactions, the opt-out) is always the caller's own.

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

/// Recommendations for the caller.
pub(super) async fn recommend(
    api: &MobileApi,
    request: Request<pb::RecommendRequest>,
) -> Result<Response<pb::RecommendResponse>, Status> {
    let call = api.admit(&request, "Recommend", scope::READ, false).await?;
    let r = request.into_inner();
    let message = cat::RecommendRequest {
        user_id: call.caller.user_id.clone(),
        surface: r.surface,
        sku: r.sku,
        cart_skus: r.cart_skus,
        locale: r.locale,
        near: r.near,
        limit: r.limit,
    };
    let picked = retrying(|| async {
        api.backends
            .catalog
            .clone()
            .recommend(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::RecommendResponse {
        products: picked.products,
    }))
}

/// The caller viewed a product or put it in the cart. Not retried: a repeat would count twice.
pub(super) async fn report_interaction(
    api: &MobileApi,
    request: Request<pb::ReportInteractionRequest>,
) -> Result<Response<pb::ReportInteractionResponse>, Status> {
    let call = api
        .admit(&request, "ReportInteraction", scope::WRITE, false)
        .await?;
    let r = request.into_inner();
    let message = cat::ReportInteractionRequest {
        user_id: call.caller.user_id.clone(),
        sku: r.sku,
        kind: r.kind,
    };
    let answer = api
        .backends
        .catalog
        .clone()
        .report_interaction(call.forward(message))
        .await?
        .into_inner();
    Ok(Response::new(pb::ReportInteractionResponse {
        recorded: answer.recorded,
    }))
}

/// Personalisation on or off for the caller (a repeat converges, so it may retry).
pub(super) async fn set_personalization(
    api: &MobileApi,
    request: Request<pb::SetPersonalizationRequest>,
) -> Result<Response<pb::SetPersonalizationResponse>, Status> {
    let call = api
        .admit(&request, "SetPersonalization", scope::WRITE, false)
        .await?;
    let message = cat::SetPersonalizationRequest {
        user_id: call.caller.user_id.clone(),
        enabled: request.into_inner().enabled,
    };
    let answer = retrying(|| async {
        api.backends
            .catalog
            .clone()
            .set_personalization(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::SetPersonalizationResponse {
        interactions_deleted: answer.interactions_deleted,
    }))
}

/// One turn of the caller's ordering conversation. Not retried: a turn changes the draft.
pub(super) async fn converse(
    api: &MobileApi,
    request: Request<pb::ConverseRequest>,
) -> Result<Response<pb::ConverseResponse>, Status> {
    let call = api.admit(&request, "Converse", scope::WRITE, false).await?;
    let r = request.into_inner();
    let message = oms_proto::assistant::v1::ConverseRequest {
        user_id: call.caller.user_id.clone(),
        session_id: r.session_id,
        locale: r.locale,
        text: r.text,
        address: r.address,
    };
    let turn = api
        .backends
        .assistant
        .clone()
        .converse(call.forward(message))
        .await?
        .into_inner();
    Ok(Response::new(pb::ConverseResponse {
        reply: turn.reply,
        understood: turn.understood,
        draft: turn.draft,
        quick_replies: turn.quick_replies,
        order_id: turn.order_id,
    }))
}
