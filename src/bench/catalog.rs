//! `oms bench catalog`: search over a large catalog, as the app searches. catalog-svc runs in
//! this process on SQLite and the in-process bus; a generated catalog (its own seed: brands,
//! English and German titles with compounds, categories, synonyms) is imported a thousand
//! products per call; a tenth of it gets stock at three centers, published as inventory and
//! fulfillment would; then queries — plain words, typos, German compound parts and umlaut
//! spellings, category filters — all near a buyer in Berlin, so delivery times rank them.

use std::{sync::Arc, time::Instant};

use anyhow::Context as _;
use clap::Args;
use oms::mesh;
use oms_platform::{
    bus::{Area, EventBus, memory::InProcessBus},
    config::{self, DatabaseArgs},
    events::envelope,
    runtime::ServiceContext,
    sample,
};
use oms_proto::{
    catalog::v1::{self as cat, catalog_service_client::CatalogServiceClient},
    common::v1::GeoPoint,
    events::v1::{CenterUpserted, StockLevelChanged, envelope::Payload},
    inventory::v1::StockLevel,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{Load, drive};

#[derive(Args, Debug)]
pub struct CatalogBench {
    /// Products in the catalog.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Searches.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// Searches in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seed of the generated catalog and queries.
    #[arg(long, default_value_t = 17)]
    seed: u64,
}

/// (English noun, German noun, a synonym, the category it belongs to).
const NOUNS: [(&str, &str, &str, &str); 20] = [
    ("sneakers", "Turnschuhe", "trainers", "shoes"),
    ("boots", "Stiefel", "booties", "shoes"),
    ("jacket", "Jacke", "coat", "apparel"),
    ("shirt", "Hemd", "blouse", "apparel"),
    ("lamp", "Lampe", "light", "home"),
    ("chair", "Stuhl", "seat", "home"),
    ("table", "Tisch", "desk", "home"),
    ("kettle", "Wasserkocher", "boiler", "kitchen"),
    ("blender", "Mixer", "smoothie maker", "kitchen"),
    ("backpack", "Rucksack", "daypack", "travel"),
    ("watch", "Uhr", "timepiece", "accessories"),
    ("headphones", "Kopfhörer", "earphones", "electronics"),
    ("speaker", "Lautsprecher", "boombox", "electronics"),
    ("mug", "Becher", "cup", "kitchen"),
    ("pan", "Pfanne", "skillet", "kitchen"),
    ("rug", "Teppich", "carpet", "home"),
    ("pillow", "Kissen", "cushion", "home"),
    ("blanket", "Decke", "throw", "home"),
    ("bottle", "Flasche", "flask", "travel"),
    ("tent", "Zelt", "shelter", "outdoor"),
];
/// (English, German compound prefix).
const KINDS: [(&str, &str); 10] = [
    ("running", "Lauf"),
    ("winter", "Winter"),
    ("leather", "Leder"),
    ("garden", "Garten"),
    ("office", "Büro"),
    ("kitchen", "Küchen"),
    ("travel", "Reise"),
    ("kids", "Kinder"),
    ("outdoor", "Outdoor"),
    ("designer", "Design"),
];
const COLOURS: [(&str, &str); 8] = [
    ("black", "schwarz"),
    ("white", "weiß"),
    ("red", "rot"),
    ("blue", "blau"),
    ("green", "grün"),
    ("grey", "grau"),
    ("beige", "beige"),
    ("yellow", "gelb"),
];
const BRANDS: [&str; 8] = [
    "Nordlicht",
    "Alpenwerk",
    "Kestrel",
    "Fjord",
    "Urban Oak",
    "Bergmann",
    "Lumen",
    "Havel",
];
const CENTERS: [(&str, f64, f64); 3] = [
    ("bench-berlin", 52.52, 13.40),
    ("bench-munich", 48.14, 11.58),
    ("bench-hamburg", 53.55, 9.99),
];
const NEAR: GeoPoint = GeoPoint {
    lat: 52.50,
    lng: 13.35,
};

fn generate(i: usize, rng: &mut StdRng) -> cat::Product {
    let (en, de, synonym, category) = NOUNS[rng.random_range(0..NOUNS.len())];
    let (kind_en, kind_de) = KINDS[rng.random_range(0..KINDS.len())];
    let (colour_en, colour_de) = COLOURS[rng.random_range(0..COLOURS.len())];
    let brand = BRANDS[rng.random_range(0..BRANDS.len())];
    let model = rng.random_range(100..10_000);
    let text = |locale: &str, title: String, keywords: Vec<String>| cat::LocalizedText {
        locale: locale.into(),
        title,
        description: format!("{brand} {model}"),
        keywords,
    };
    cat::Product {
        sku: format!("BENCH-{i:06}"),
        texts: vec![
            text(
                "en",
                format!("{brand} {kind_en} {en} {colour_en} {model}"),
                vec![synonym.to_owned()],
            ),
            text(
                "de",
                format!("{brand} {kind_de}{} {colour_de} {model}", de.to_lowercase()),
                Vec::new(),
            ),
        ],
        brand: brand.into(),
        category_path: vec![category.into(), en.into()],
        active: true,
        ..Default::default()
    }
}

/// One letter pair swapped: a typo.
fn typo(word: &str, rng: &mut StdRng) -> String {
    let mut letters: Vec<char> = word.chars().collect();
    if letters.len() > 3 {
        let at = rng.random_range(1..letters.len() - 1);
        letters.swap(at, at + 1);
    }
    letters.into_iter().collect()
}

fn query(rng: &mut StdRng) -> cat::SearchProductsRequest {
    let (en, de, synonym, category) = NOUNS[rng.random_range(0..NOUNS.len())];
    let (kind_en, _) = KINDS[rng.random_range(0..KINDS.len())];
    let (colour_en, _) = COLOURS[rng.random_range(0..COLOURS.len())];
    let (text, locale, category_path) = match rng.random_range(0..10) {
        0..=3 => (format!("{kind_en} {en}"), "en", Vec::new()),
        4 | 5 => (format!("{} {colour_en}", typo(en, rng)), "en", Vec::new()),
        6 => (synonym.to_owned(), "en", Vec::new()),
        7 => (de.to_owned(), "de", Vec::new()),
        8 => (
            de.replace('ü', "ue").replace('ö', "oe").replace('ä', "ae"),
            "de",
            Vec::new(),
        ),
        _ => (en.to_owned(), "en", vec![category.to_owned()]),
    };
    cat::SearchProductsRequest {
        query: text,
        locale: locale.into(),
        category_path,
        near: Some(NEAR),
        page_size: 20,
        ..Default::default()
    }
}

async fn publish_stock(bus: &dyn EventBus, products: usize) -> anyhow::Result<()> {
    for (id, lat, lng) in CENTERS {
        let center = sample::german_center(id, lat, lng, false);
        let event = envelope(
            Area::Fulfillment,
            id,
            "center_upserted",
            "",
            Payload::CenterUpserted(CenterUpserted {
                center: Some(center),
            }),
        )?;
        bus.publish(&event).await?;
    }
    for i in (0..products).step_by(10) {
        let sku = format!("BENCH-{i:06}");
        let level = StockLevel {
            sku: sku.clone(),
            location_id: CENTERS[i % CENTERS.len()].0.into(),
            on_hand: 5,
            available: 5,
            version: 1,
            ..Default::default()
        };
        let event = envelope(
            Area::Inventory,
            &sku,
            "level_changed",
            "",
            Payload::StockLevelChanged(StockLevelChanged {
                level: Some(level),
                ..Default::default()
            }),
        )?;
        bus.publish(&event).await?;
    }
    Ok(())
}

pub async fn run(bench: CatalogBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("oms-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let bus = Arc::new(InProcessBus::default());
    let ctx = ServiceContext::new(bus.clone());
    let mut config: oms_catalog_svc::Config = config::defaults()?;
    config.server.listen = "127.0.0.1:0".parse().ok();
    config.database = DatabaseArgs::new(format!("sqlite://{}/catalog.db", dir.display()));
    let running = oms_catalog_svc::start(config, ctx.clone()).await?;
    let outcome = measure(&bench, bus.as_ref(), &running.url()).await;
    ctx.shutdown.cancel();
    let _ = running.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn measure(bench: &CatalogBench, bus: &dyn EventBus, url: &str) -> anyhow::Result<()> {
    let client = CatalogServiceClient::new(mesh::channel(url).await?);
    let mut rng = StdRng::seed_from_u64(bench.seed);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..bench.products {
        batch.push(generate(i, &mut rng));
        if batch.len() == 1_000 || i + 1 == bench.products {
            client
                .clone()
                .import_products(cat::ImportProductsRequest {
                    products: std::mem::take(&mut batch),
                })
                .await
                .context("import")?;
        }
    }
    println!(
        "catalog: {} products imported and indexed in {:.1} s (1,000 per call, SQLite)",
        bench.products,
        started.elapsed().as_secs_f64()
    );
    publish_stock(bus, bench.products).await?;
    let queries: Arc<Vec<cat::SearchProductsRequest>> =
        Arc::new((0..bench.queries).map(|_| query(&mut rng)).collect());
    let load = Load {
        requests: bench.queries,
        concurrency: bench.concurrency,
        until: None,
    };
    let empty = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let report = drive("SearchProducts", load, {
        let (client, queries, empty) = (client.clone(), queries.clone(), empty.clone());
        move |i| {
            let (mut client, request, empty) = (client.clone(), queries[i].clone(), empty.clone());
            let query = format!("{:?} ({})", request.query, request.locale);
            async move {
                let found = client
                    .search_products(request)
                    .await
                    .map_err(|s| s.to_string())?
                    .into_inner();
                if found.products.is_empty() {
                    let mut empty = empty
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    empty.push(query);
                }
                Ok(())
            }
        }
    })
    .await;
    println!("{}", report.line());
    let empty = empty
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!(
        "{} of {} searches found nothing{}; p99 {:.2} ms against the 20 ms target",
        empty.len(),
        bench.queries,
        if empty.is_empty() {
            String::new()
        } else {
            format!(
                " (e.g. {})",
                empty.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            )
        },
        report.ms(0.99)
    );
    Ok(())
}
