//! catalog-svc: the products the app browses and searches, with their AR assets
//! (`oms.catalog.v1.CatalogService`).
//!
//! * `domain` — pure logic: what a product and its AR model carry, the AR file for a device,
//!   texts per locale, delivery times from centers.
//! * `store` — products, and the stock levels and centers events reported.
//! * `search` — the tantivy index (English and German analysis, typos, compounds).
//! * `stock` — stock and centers in memory, fed by inventory's and fulfillment's events.
//! * `recommend` — recommendations learned from purchases (pure; public for `oms recommend`);
//!   `tastes` — the recommender in memory, fed by orders and interactions.
//! * `catalog` — the use cases; `api` — the gRPC handlers.
//!
//! The service is a library: [`start`] runs it inside any host process — alone under
//! `oms serve catalog` or beside the others under `oms dev`.

mod api;
mod catalog;
mod domain;
pub mod recommend;
mod sample;
mod search;
mod stock;
mod store;
mod tastes;

use std::{sync::Arc, time::Duration};

use oms_platform::{
    bus::{Area, ConsumerSpec},
    config::{DatabaseArgs, ServerArgs, parse_duration},
    consumer::IdempotentConsumer,
    runtime::{RunningService, ServiceContext, StartError},
};
use oms_proto::{catalog::v1::catalog_service_server::CatalogServiceServer, service_names};
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

/// The port the service listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 50056;

/// Flags and `OMS_*` variables of the service.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    /// How often product changes made through other replicas are looked for.
    #[arg(long = "product-refresh", env = "OMS_PRODUCT_REFRESH", default_value = "1s", value_parser = parse_duration)]
    pub product_refresh: Duration,
    /// Seeds the sample world's products into an empty catalog (`oms dev` does).
    #[arg(long = "sample-catalog", env = "OMS_SAMPLE_CATALOG")]
    pub sample_catalog: bool,
}

/// Starts the service: database, stock and centers from events, the products and their
/// search index, the gRPC server.
pub async fn start(config: Config, ctx: ServiceContext) -> Result<RunningService, StartError> {
    let tasks = TaskTracker::new();
    let (db, _outbox) = ctx
        .open_database::<store::migration::Migrator>("catalog", &config.database, &tasks)
        .await?;
    let store = store::Store { db: db.clone() };
    let availability = Arc::new(stock::Availability::default());
    // Live first, then the tables: nothing said in between is missed.
    let live = stock::subscribe(ctx.bus.as_ref()).await?;
    let loaded = |e: domain::CatalogError| StartError::Config(e.to_string());
    let products = store.products().await.map_err(loaded)?;
    let tastes = Arc::new(
        tastes::Tastes::load(&store, &products)
            .await
            .map_err(loaded)?,
    );
    tasks.spawn(stock::follow(
        ctx.bus.clone(),
        availability.clone(),
        tastes.clone(),
        live,
        ctx.shutdown.clone(),
    ));
    stock::load(&store, &availability).await.map_err(loaded)?;
    let levels = ConsumerSpec::durable(Area::Inventory, "catalog-levels")
        .with_filter("oms.inventory.*.level_changed");
    let centers = ConsumerSpec::durable(Area::Fulfillment, "catalog-centers")
        .with_filter("oms.fulfillment.*.center_upserted");
    let recorder = Arc::new(stock::Recorder {
        store: store.clone(),
        availability: availability.clone(),
    });
    let consumer =
        IdempotentConsumer::new(db.clone(), ctx.bus.clone(), levels, recorder).also(centers);
    tasks.spawn(consumer.run(ctx.shutdown.clone()));
    let orders = ConsumerSpec::durable(Area::Order, "catalog-orders")
        .with_filter("oms.order.*.status_changed");
    let purchases = Arc::new(tastes::PurchaseRecorder {
        store: store.clone(),
        tastes: tastes.clone(),
    });
    let consumer = IdempotentConsumer::new(db, ctx.bus.clone(), orders, purchases);
    tasks.spawn(consumer.run(ctx.shutdown.clone()));

    let catalog =
        Arc::new(catalog::Catalog::new(store, products, availability, tastes).map_err(loaded)?);
    if config.sample_catalog && catalog.is_empty() {
        catalog
            .import_all(sample::products())
            .await
            .map_err(loaded)?;
        tracing::info!("sample catalog seeded");
    }
    tasks.spawn(catalog::follow_products(
        catalog.clone(),
        config.product_refresh,
        ctx.shutdown.clone(),
    ));
    let routes = Routes::new(CatalogServiceServer::new(api::CatalogApi { catalog }));
    ctx.serve(
        "catalog",
        &config.server,
        DEFAULT_PORT,
        routes,
        vec![service_names::CATALOG],
        tasks,
    )
    .await
}
