//! The catalog through the gateway: search, browse and product pages need a token with
//! orders:read, count against the caller's rate, and pass catalog-svc's answers (and its
//! refusals of bad requests) through unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{eventually, place, start, stop, token, with_token};
use oms_proto::{catalog::v1 as cat, mobile::v1 as pb};
use tonic::{Code, Request};

fn lamp() -> cat::Product {
    cat::Product {
        sku: "LAMP".into(),
        texts: vec![
            cat::LocalizedText {
                locale: "en".into(),
                title: "Floor lamp".into(),
                ..Default::default()
            },
            cat::LocalizedText {
                locale: "de".into(),
                title: "Stehleuchte".into(),
                keywords: vec!["Stehlampe".into()],
                ..Default::default()
            },
        ],
        category_path: vec!["home".into(), "lighting".into()],
        ar: Some(cat::ArModel {
            dimensions: Some(cat::Dimensions {
                width_m: 0.3,
                height_m: 1.6,
                depth_m: 0.3,
            }),
            placement: cat::ArPlacement::Floor.into(),
            assets: vec![cat::ArAsset {
                format: cat::ArFormat::Usdz.into(),
                level_of_detail: cat::LevelOfDetail::Low.into(),
                url: "https://cdn.example.com/lamp-low.usdz".into(),
                byte_size: 800_000,
                sha256: "a1".repeat(32),
            }],
        }),
        active: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_searches_browses_and_opens_products_through_the_gateway() {
    let mut mesh = start(1000).await;
    mesh.catalog
        .upsert_product(cat::UpsertProductRequest {
            product: Some(lamp()),
        })
        .await
        .unwrap();
    let ada = token(&mesh, "ada", "orders:read");
    let kim = token(&mesh, "kim", "courier");
    let search = |query: &str| pb::SearchProductsRequest {
        query: query.into(),
        locale: "de".into(),
        ..Default::default()
    };

    let anonymous = mesh
        .gateway
        .search_products(Request::new(search("lampe")))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let courier = mesh
        .gateway
        .search_products(with_token(search("lampe"), &kim))
        .await
        .unwrap_err();
    assert_eq!(courier.code(), Code::PermissionDenied);

    let found = mesh
        .gateway
        .search_products(with_token(search("Stehlampe"), &ada))
        .await
        .unwrap()
        .into_inner();
    let titles: Vec<&str> = found.products.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Stehleuchte"]);
    let empty = mesh
        .gateway
        .search_products(with_token(search("  "), &ada))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    let browsed = mesh
        .gateway
        .browse_catalog(with_token(
            pb::BrowseCatalogRequest {
                category_path: vec!["home".into()],
                locale: "en".into(),
                ..Default::default()
            },
            &ada,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(browsed.products[0].title, "Floor lamp");
    assert_eq!(browsed.subcategories[0].name, "lighting");

    let page = mesh
        .gateway
        .get_product(with_token(
            pb::GetProductRequest {
                sku: "LAMP".into(),
                locale: "en".into(),
                platform: cat::Platform::Ios.into(),
                network: cat::NetworkHint::Slow.into(),
                near: None,
            },
            &ada,
        ))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let file = page.ar.unwrap().asset.unwrap();
    assert!(file.url.ends_with(".usdz"), "{file:?}");
    let missing = mesh
        .gateway
        .get_product(with_token(
            pb::GetProductRequest {
                sku: "NOPE".into(),
                ..Default::default()
            },
            &ada,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    stop(mesh).await;
}

fn tee() -> cat::Product {
    cat::Product {
        sku: "TEE".into(),
        texts: vec![cat::LocalizedText {
            locale: "en".into(),
            title: "Organic cotton tee".into(),
            ..Default::default()
        }],
        category_path: vec!["apparel".into()],
        active: true,
        ..Default::default()
    }
}

/// Browse → product → recommend → order → the recommendations change once the order's events
/// arrive; interactions need orders:write, and turning personalisation off deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_follow_the_buyers_orders_through_the_gateway() {
    let mut mesh = start(1000).await;
    mesh.catalog
        .upsert_product(cat::UpsertProductRequest {
            product: Some(tee()),
        })
        .await
        .unwrap();
    let ada = token(&mesh, "ada", "orders:read orders:write");
    let reader = token(&mesh, "bob", "orders:read");
    let berlin = oms_proto::common::v1::GeoPoint {
        lat: 52.51,
        lng: 13.39,
    };
    let home = move || pb::RecommendRequest {
        surface: cat::RecommendationSurface::Home.into(),
        locale: "en".into(),
        near: Some(berlin),
        ..Default::default()
    };

    let browsed = mesh
        .gateway
        .browse_catalog(with_token(pb::BrowseCatalogRequest::default(), &ada))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(browsed.products[0].sku, "TEE");
    // The product page, once the tee's stock (seeded at start) has reached the catalog.
    let gateway = mesh.gateway.clone();
    let page = eventually("the tee deliverable in Berlin", || {
        let mut gateway = gateway.clone();
        let ada = ada.clone();
        async move {
            let request = pb::GetProductRequest {
                sku: "TEE".into(),
                locale: "en".into(),
                near: Some(berlin),
                ..Default::default()
            };
            let page = gateway
                .get_product(with_token(request, &ada))
                .await
                .ok()?
                .into_inner()
                .product?;
            page.deliverable.then_some(page)
        }
    })
    .await;
    assert!(page.available > 0, "{page:?}");
    let before = mesh
        .gateway
        .recommend(with_token(home(), &ada))
        .await
        .unwrap()
        .into_inner();
    assert!(
        before.products.is_empty(),
        "nothing bought anywhere yet: {before:?}"
    );

    let refused = mesh
        .gateway
        .report_interaction(with_token(
            pb::ReportInteractionRequest {
                sku: "TEE".into(),
                kind: cat::InteractionKind::View.into(),
            },
            &reader,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let viewed = mesh
        .gateway
        .report_interaction(with_token(
            pb::ReportInteractionRequest {
                sku: "TEE".into(),
                kind: cat::InteractionKind::View.into(),
            },
            &ada,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(viewed.recorded);

    mesh.gateway
        .place_order(with_token(place("ada-tee"), &ada))
        .await
        .unwrap();
    let gateway = mesh.gateway.clone();
    let after = eventually("the order in ada's recommendations", || {
        let mut gateway = gateway.clone();
        let ada = ada.clone();
        async move {
            let found = gateway
                .recommend(with_token(home(), &ada))
                .await
                .ok()?
                .into_inner()
                .products;
            (!found.is_empty()).then_some(found)
        }
    })
    .await;
    let first = &after[0];
    assert_eq!(first.product.as_ref().unwrap().sku, "TEE");
    assert_eq!(first.reason(), cat::RecommendationReason::BuyAgain);
    // Bob never bought anything: for him it is what sells near Berlin.
    let for_bob = mesh
        .gateway
        .recommend(with_token(home(), &reader))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert_eq!(
        for_bob[0].reason(),
        cat::RecommendationReason::PopularNearYou
    );

    let off = mesh
        .gateway
        .set_personalization(with_token(
            pb::SetPersonalizationRequest { enabled: false },
            &ada,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.interactions_deleted, 1);
    let anonymous = mesh
        .gateway
        .recommend(with_token(home(), &ada))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert!(
        anonymous
            .iter()
            .all(|r| r.reason() != cat::RecommendationReason::BuyAgain),
        "{anonymous:?}"
    );
    stop(mesh).await;
}
