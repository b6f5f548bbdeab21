//! catalog-svc over real gRPC, on its own PostgreSQL database and NATS JetStream server: the
//! test publishes centers and stock levels as fulfillment-svc and inventory-svc do, upserts
//! products, and searches, browses and gets them as the app does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use oms_platform::{
    bus::{self, Area, EventBus},
    config::{self, BusArgs, DatabaseArgs},
    events::envelope,
    runtime::ServiceContext,
    testing::{NatsServer, TestDatabase, namespace},
};
use oms_proto::{
    catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient},
    common::v1::GeoPoint,
    events::v1::{CenterUpserted, StockLevelChanged, envelope::Payload},
    fulfillment::v1::{FulfillmentCenter, MethodOffer},
    inventory::v1::StockLevel,
};
use tonic::{Code, transport::Channel};

const BERLIN: GeoPoint = GeoPoint {
    lat: 52.50,
    lng: 13.35,
};
const MUNICH: GeoPoint = GeoPoint {
    lat: 48.15,
    lng: 11.55,
};

fn center(id: &str, at: GeoPoint) -> FulfillmentCenter {
    FulfillmentCenter {
        center_id: id.into(),
        point: Some(at),
        active: true,
        methods: vec![
            MethodOffer {
                base_hours: 24,
                per_100km_hours: 2.0,
                ..Default::default()
            },
            MethodOffer {
                base_hours: 3,
                per_100km_hours: 1.0,
                max_km: 50.0,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

async fn publish_center(bus: &dyn EventBus, center: FulfillmentCenter) {
    let id = center.center_id.clone();
    let event = envelope(
        Area::Fulfillment,
        &id,
        "center_upserted",
        "",
        Payload::CenterUpserted(CenterUpserted {
            center: Some(center),
        }),
    )
    .unwrap();
    bus.publish(&event).await.unwrap();
}

async fn publish_level(
    bus: &dyn EventBus,
    sku: &str,
    location: &str,
    available: i64,
    version: i64,
) {
    let event = envelope(
        Area::Inventory,
        sku,
        "level_changed",
        "",
        Payload::StockLevelChanged(StockLevelChanged {
            level: Some(StockLevel {
                sku: sku.into(),
                location_id: location.into(),
                available,
                on_hand: available,
                version,
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .unwrap();
    bus.publish(&event).await.unwrap();
}

fn text(locale: &str, title: &str, keywords: &[&str]) -> pb::LocalizedText {
    pb::LocalizedText {
        locale: locale.into(),
        title: title.into(),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        ..Default::default()
    }
}

fn asset(format: pb::ArFormat, lod: pb::LevelOfDetail) -> pb::ArAsset {
    let ext = if format == pb::ArFormat::Usdz {
        "usdz"
    } else {
        "glb"
    };
    pb::ArAsset {
        format: format.into(),
        level_of_detail: lod.into(),
        url: format!("https://cdn.example.com/floor-lamp-{}.{ext}", lod as i32),
        byte_size: 1_000_000 * lod as u64,
        sha256: "0f".repeat(32),
    }
}

fn products() -> Vec<pb::Product> {
    let product = |sku: &str, category: &[&str], texts: Vec<pb::LocalizedText>| pb::Product {
        sku: sku.into(),
        category_path: category.iter().map(|c| (*c).to_owned()).collect(),
        texts,
        active: true,
        ..Default::default()
    };
    let mut floor_lamp = product(
        "LAMP-FLOOR",
        &["home", "lighting"],
        vec![
            text("en", "Floor lamp", &[]),
            text("de", "Stehleuchte", &["Stehlampe"]),
        ],
    );
    floor_lamp.ar = Some(pb::ArModel {
        dimensions: Some(pb::Dimensions {
            width_m: 0.35,
            height_m: 1.6,
            depth_m: 0.35,
        }),
        placement: pb::ArPlacement::Floor.into(),
        assets: vec![
            asset(pb::ArFormat::Glb, pb::LevelOfDetail::Low),
            asset(pb::ArFormat::Glb, pb::LevelOfDetail::High),
            asset(pb::ArFormat::Usdz, pb::LevelOfDetail::Low),
            asset(pb::ArFormat::Usdz, pb::LevelOfDetail::High),
        ],
    });
    vec![
        floor_lamp,
        product(
            "LAMP-DESK",
            &["home", "lighting"],
            vec![
                text("en", "Desk lamp", &[]),
                text("de", "Schreibtischlampe", &[]),
            ],
        ),
        product(
            "SNKR",
            &["shoes", "running"],
            vec![
                text("en", "Trail running sneakers", &["trainers"]),
                text("de", "Trail-Laufschuhe", &[]),
            ],
        ),
        product(
            "RUG",
            &["home", "textiles"],
            vec![text("en", "Wool rug", &[])],
        ),
    ]
}

fn search(query: &str, locale: &str, near: Option<GeoPoint>) -> pb::SearchProductsRequest {
    pb::SearchProductsRequest {
        query: query.into(),
        locale: locale.into(),
        near,
        ..Default::default()
    }
}

async fn skus(
    client: &mut CatalogServiceClient<Channel>,
    request: pb::SearchProductsRequest,
) -> Vec<String> {
    client
        .search_products(request)
        .await
        .unwrap()
        .into_inner()
        .products
        .into_iter()
        .map(|p| p.sku)
        .collect()
}

/// Retries `check` for up to five seconds (events travel asynchronously).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_finds_browses_and_places_products_in_the_room() {
    let (_nats, bus, ctx, database) = world().await;
    // Centers and stock said before the service starts reach it through its durable consumer.
    publish_center(
        bus.as_ref(),
        center(
            "berlin",
            GeoPoint {
                lat: 52.52,
                lng: 13.40,
            },
        ),
    )
    .await;
    let (running, mut client) = start_catalog(&ctx, &database).await;
    publish_center(
        bus.as_ref(),
        center(
            "munich",
            GeoPoint {
                lat: 48.14,
                lng: 11.58,
            },
        ),
    )
    .await;
    publish_level(bus.as_ref(), "LAMP-FLOOR", "berlin", 4, 1).await;
    publish_level(bus.as_ref(), "LAMP-DESK", "munich", 7, 1).await;
    publish_level(bus.as_ref(), "SNKR", "munich", 5, 1).await;

    for product in products() {
        client
            .upsert_product(pb::UpsertProductRequest {
                product: Some(product),
            })
            .await
            .unwrap();
    }
    // A model without its size, and one with a URL that is not https: refused, nothing kept.
    let mut bad = products()[0].clone();
    bad.sku = "LAMP-BAD".into();
    bad.ar.as_mut().unwrap().dimensions = None;
    bad.ar.as_mut().unwrap().assets[1].url = "http://cdn.example.com/lamp.glb".into();
    let refused = client
        .upsert_product(pb::UpsertProductRequest { product: Some(bad) })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("product.ar.dimensions"),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("product.ar.assets[1].url"),
        "{refused:?}"
    );
    let missing = client
        .get_product(pb::GetProductRequest {
            sku: "LAMP-BAD".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // An import is all or none, its bad fields named with the product's place.
    let mut good = products()[3].clone();
    good.sku = "RUG-2".into();
    let mut nameless = products()[3].clone();
    nameless.sku = " ".into();
    let refused = client
        .import_products(pb::ImportProductsRequest {
            products: vec![good.clone(), nameless],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("products[1].sku"), "{refused:?}");
    let missing = client
        .get_product(pb::GetProductRequest {
            sku: "RUG-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Code::NotFound,
        "nothing of a refused import is kept"
    );

    // Typos, synonyms, German compounds.
    assert_eq!(
        skus(&mut client, search("snekers", "en", None)).await,
        ["SNKR"]
    );
    assert_eq!(
        skus(&mut client, search("trainers", "en-GB", None)).await,
        ["SNKR"]
    );
    assert_eq!(
        skus(&mut client, search("Schuhe", "de", None)).await,
        ["SNKR"]
    );
    assert_eq!(
        skus(&mut client, search("Stehlampe", "de-AT", None)).await,
        ["LAMP-FLOOR"]
    );

    // What comes soonest ranks first: the floor lamp from Berlin, the desk lamp from Munich.
    let near_berlin = || search("lamp", "en", Some(BERLIN));
    eventually("stock and centers known", || {
        let mut client = client.clone();
        async move {
            let found = client
                .search_products(near_berlin())
                .await
                .unwrap()
                .into_inner()
                .products;
            found.len() == 2 && found.iter().all(|p| p.deliverable)
        }
    })
    .await;
    assert_eq!(
        skus(&mut client, near_berlin()).await,
        ["LAMP-FLOOR", "LAMP-DESK"]
    );
    assert_eq!(
        skus(&mut client, search("lamp", "en", Some(MUNICH))).await,
        ["LAMP-DESK", "LAMP-FLOOR"]
    );
    let view = &client
        .search_products(near_berlin())
        .await
        .unwrap()
        .into_inner()
        .products[0];
    assert_eq!(view.available, 4);
    assert!(view.delivery_hours < 5.0, "express from Berlin: {view:?}");

    // Only what can come: the rug has no stock anywhere; sneakers sell out in Munich.
    let deliverable = |query: &str| pb::SearchProductsRequest {
        deliverable_only: true,
        ..search(query, "en", Some(BERLIN))
    };
    assert!(skus(&mut client, deliverable("rug")).await.is_empty());
    assert_eq!(skus(&mut client, deliverable("sneakers")).await, ["SNKR"]);
    publish_level(bus.as_ref(), "SNKR", "munich", 0, 2).await;
    eventually("sold out sneakers leave deliverable results", || {
        let mut client = client.clone();
        async move { skus(&mut client, deliverable("sneakers")).await.is_empty() }
    })
    .await;
    let no_point = client
        .search_products(pb::SearchProductsRequest {
            near: None,
            ..deliverable("rug")
        })
        .await
        .unwrap_err();
    assert_eq!(no_point.code(), Code::InvalidArgument);

    // AR: USDZ for iOS, GLB for Android, the small file on a slow network, with its size.
    let ar = |platform: pb::Platform, network: pb::NetworkHint| pb::GetProductRequest {
        sku: "LAMP-FLOOR".into(),
        locale: "de".into(),
        platform: platform.into(),
        network: network.into(),
        near: Some(BERLIN),
    };
    let ios = client
        .get_product(ar(pb::Platform::Ios, pb::NetworkHint::Slow))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(ios.title, "Stehleuchte");
    let choice = ios.ar.unwrap();
    let file = choice.asset.unwrap();
    assert_eq!(
        (file.format(), file.level_of_detail()),
        (pb::ArFormat::Usdz, pb::LevelOfDetail::Low)
    );
    assert_eq!(choice.dimensions.unwrap().height_m, 1.6);
    let android = client
        .get_product(ar(pb::Platform::Android, pb::NetworkHint::Fast))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let file = android.ar.unwrap().asset.unwrap();
    assert_eq!(
        (file.format(), file.level_of_detail()),
        (pb::ArFormat::Glb, pb::LevelOfDetail::High)
    );

    // Browsing a category, page by page, with its subcategories.
    let browse = |token: &str| pb::BrowseCatalogRequest {
        category_path: vec!["Home".into()],
        locale: "en".into(),
        near: Some(BERLIN),
        page_size: 2,
        page_token: token.into(),
    };
    let first = client
        .browse_catalog(browse(""))
        .await
        .unwrap()
        .into_inner();
    let titles: Vec<&str> = first.products.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Floor lamp", "Desk lamp"], "soonest first");
    let counts: Vec<(String, u32)> = first
        .subcategories
        .iter()
        .map(|c| (c.name.clone(), c.products))
        .collect();
    assert_eq!(
        counts,
        [("lighting".to_owned(), 2), ("textiles".to_owned(), 1)]
    );
    let second = client
        .browse_catalog(browse(&first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.products.len(), 1);
    assert!(second.next_page_token.is_empty());
    let bad_token = client.browse_catalog(browse("abc")).await.unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);

    ctx.shutdown.cancel();
    running.wait().await.unwrap();
}

/// A NATS JetStream server of the test's own, the bus on it, a service context and a
/// PostgreSQL database.
async fn world() -> (NatsServer, Arc<dyn EventBus>, ServiceContext, TestDatabase) {
    oms_platform::telemetry::init_for_tests();
    let nats = NatsServer::start().await;
    let bus = bus::connect(&BusArgs {
        nats_url: Some(nats.url()),
        namespace: namespace(),
        ..BusArgs::default()
    })
    .await
    .unwrap();
    let ctx = ServiceContext::new(bus.clone());
    (nats, bus, ctx, TestDatabase::postgres().await)
}

/// catalog-svc on `database`, its client.
async fn start_catalog(
    ctx: &ServiceContext,
    database: &TestDatabase,
) -> (
    oms_platform::runtime::RunningService,
    CatalogServiceClient<Channel>,
) {
    let mut config: oms_catalog_svc::Config = config::defaults().unwrap();
    config.server.listen = Some("127.0.0.1:0".parse().unwrap());
    config.database = DatabaseArgs::new(&database.url);
    let running = oms_catalog_svc::start(config, ctx.clone()).await.unwrap();
    let client = CatalogServiceClient::new(
        tonic::transport::Endpoint::from_shared(running.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    (running, client)
}

/// An order confirmed, as order-svc announces it.
async fn publish_order(bus: &dyn EventBus, order_id: &str, user: &str, skus: &[&str]) {
    use oms_proto::{
        common::v1::Address,
        events::v1::OrderStatusChanged,
        order::v1::{Order, OrderLine, OrderStatus},
    };
    let order = Order {
        order_id: order_id.into(),
        user_id: user.into(),
        status: OrderStatus::Confirmed.into(),
        lines: skus
            .iter()
            .map(|sku| OrderLine {
                sku: (*sku).into(),
                quantity: 1,
                ..Default::default()
            })
            .collect(),
        shipping_address: Some(Address {
            location: Some(BERLIN),
            ..Default::default()
        }),
        ..Default::default()
    };
    let event = envelope(
        Area::Order,
        order_id,
        "status_changed",
        user,
        Payload::OrderStatusChanged(OrderStatusChanged {
            order: Some(order),
            previous_status: OrderStatus::Pending.into(),
            note: String::new(),
        }),
    )
    .unwrap();
    bus.publish(&event).await.unwrap();
}

fn recommend(user: &str, surface: pb::RecommendationSurface, sku: &str) -> pb::RecommendRequest {
    pb::RecommendRequest {
        user_id: user.into(),
        surface: surface.into(),
        sku: sku.into(),
        locale: "en".into(),
        near: Some(BERLIN),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_learn_from_orders_and_views_and_forget_on_opt_out() {
    let (_nats, bus, ctx, database) = world().await;
    let (running, mut client) = start_catalog(&ctx, &database).await;
    publish_center(
        bus.as_ref(),
        center(
            "berlin",
            GeoPoint {
                lat: 52.52,
                lng: 13.40,
            },
        ),
    )
    .await;
    for (version, sku) in ["LAMP-FLOOR", "LAMP-DESK", "SNKR"].iter().enumerate() {
        publish_level(bus.as_ref(), sku, "berlin", 9, version as i64 + 1).await;
    }
    client
        .import_products(pb::ImportProductsRequest {
            products: products(),
        })
        .await
        .unwrap();
    // Floor and desk lamps go together; the rug sells too but nothing has it in stock.
    for i in 0..5 {
        publish_order(
            bus.as_ref(),
            &format!("o-{i}"),
            &format!("u{i}"),
            &["LAMP-FLOOR", "LAMP-DESK"],
        )
        .await;
        publish_order(bus.as_ref(), &format!("r-{i}"), &format!("r{i}"), &["RUG"]).await;
    }
    let product_page = || recommend("ada", pb::RecommendationSurface::Product, "LAMP-FLOOR");
    eventually("the orders learned", || {
        let mut client = client.clone();
        async move {
            let found = client
                .recommend(product_page())
                .await
                .unwrap()
                .into_inner()
                .products;
            found
                .first()
                .and_then(|r| r.product.as_ref())
                .is_some_and(|p| p.sku == "LAMP-DESK")
        }
    })
    .await;
    let first = &client
        .recommend(product_page())
        .await
        .unwrap()
        .into_inner()
        .products[0];
    assert_eq!(first.reason(), pb::RecommendationReason::BoughtWith);
    assert_eq!(first.related_sku, "LAMP-FLOOR");
    assert_eq!(first.explanation, "Often bought with Floor lamp");
    let home = client
        .recommend(recommend("ada", pb::RecommendationSurface::Home, ""))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert!(
        home.iter()
            .all(|r| r.product.as_ref().unwrap().sku != "RUG"),
        "never what no center can deliver: {home:?}"
    );

    // Ada looks at the sneakers twice: they come back to her.
    for _ in 0..2 {
        let recorded = client
            .report_interaction(pb::ReportInteractionRequest {
                user_id: "ada".into(),
                sku: "SNKR".into(),
                kind: pb::InteractionKind::View.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .recorded;
        assert!(recorded);
    }
    let again = |products: &[pb::Recommended]| {
        products.iter().any(|r| {
            r.product.as_ref().unwrap().sku == "SNKR"
                && r.reason() == pb::RecommendationReason::BuyAgain
        })
    };
    let home = client
        .recommend(recommend("ada", pb::RecommendationSurface::Home, ""))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert!(again(&home), "{home:?}");
    let unknown = client
        .report_interaction(pb::ReportInteractionRequest {
            user_id: "ada".into(),
            sku: "NOPE".into(),
            kind: pb::InteractionKind::View.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Rebuilt from the tables after a restart.
    ctx.shutdown.cancel();
    running.wait().await.unwrap();
    let ctx = ServiceContext::new(bus.clone());
    let (running, mut client) = start_catalog(&ctx, &database).await;
    publish_level(bus.as_ref(), "SNKR", "berlin", 9, 10).await;
    let restarted = client
        .recommend(product_page())
        .await
        .unwrap()
        .into_inner()
        .products;
    assert_eq!(restarted[0].product.as_ref().unwrap().sku, "LAMP-DESK");

    // Ada opts out: her interactions are deleted, new ones ignored, her own history gone.
    let off = client
        .set_personalization(pb::SetPersonalizationRequest {
            user_id: "ada".into(),
            enabled: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.interactions_deleted, 2);
    let ignored = client
        .report_interaction(pb::ReportInteractionRequest {
            user_id: "ada".into(),
            sku: "SNKR".into(),
            kind: pb::InteractionKind::AddToCart.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ignored.recorded);
    let home = client
        .recommend(recommend("ada", pb::RecommendationSurface::Home, ""))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert!(!again(&home), "{home:?}");
    let no_surface = client
        .recommend(recommend("ada", pb::RecommendationSurface::Unspecified, ""))
        .await
        .unwrap_err();
    assert_eq!(no_surface.code(), Code::InvalidArgument);
    ctx.shutdown.cancel();
    running.wait().await.unwrap();
}
