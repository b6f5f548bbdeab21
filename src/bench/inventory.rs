//! `oms bench inventory`: reservations per second on PostgreSQL — one hot SKU (every request
//! contends for one row) and spread SKUs (requests touch different rows).
//!
//! By default it starts inventory-svc in this process on a fresh PostgreSQL database and drops
//! it afterwards; `--inventory-url` benchmarks a running service instead.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use oms_platform::{
    bus::memory::InProcessBus,
    config::{self, DatabaseArgs},
    db,
    runtime::ServiceContext,
};
use oms_proto::{
    common::v1::GeoPoint,
    inventory::v1::{self as pb, inventory_service_client::InventoryServiceClient},
};
use tonic::transport::Channel;

use super::{Load, Report, drive};

#[derive(Args, Debug)]
pub struct InventoryBench {
    /// PostgreSQL server for the embedded service (a fresh database is created and dropped).
    #[arg(
        long,
        env = "OMS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Benchmark a running inventory-svc instead of starting one.
    #[arg(long)]
    inventory_url: Option<String>,
    /// Reservations per scenario.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Reservations in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// SKUs of the spread scenario.
    #[arg(long, default_value_t = 1_000)]
    skus: usize,
    /// Database pool size of the embedded service.
    #[arg(long, default_value_t = 16)]
    pool: u32,
}

const LOCATIONS: [(&str, f64, f64); 4] = [
    ("bench-berlin", 52.52, 13.40),
    ("bench-munich", 48.14, 11.58),
    ("bench-hamburg", 53.55, 9.99),
    ("bench-cologne", 50.94, 6.96),
];

pub async fn run(bench: InventoryBench) -> anyhow::Result<()> {
    let load = Load {
        requests: bench.requests,
        concurrency: bench.concurrency,
        until: None,
    };
    let (client, embedded) = match &bench.inventory_url {
        Some(url) => (connect(url).await?, None),
        None => {
            let (client, embedded) = embedded(&bench).await?;
            (client, Some(embedded))
        }
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    println!(
        "inventory bench: {} reservations per scenario, {} in flight, PostgreSQL{}",
        load.requests,
        load.concurrency,
        if embedded.is_some() {
            " (service in this process)"
        } else {
            ""
        }
    );
    let hot = format!("HOT-{run_id}");
    seed(
        &client,
        std::slice::from_ref(&hot),
        &LOCATIONS[..1],
        bench.requests as u32,
    )
    .await?;
    let report = reserve_load(&client, "reserve, one hot SKU", load, {
        let hot = hot.clone();
        move |_| (hot.clone(), LOCATIONS[0].0)
    })
    .await;
    print(&report);

    let skus: Vec<String> = (0..bench.skus).map(|i| format!("S{i}-{run_id}")).collect();
    let per_level = (bench.requests / (bench.skus * LOCATIONS.len())).max(1) as u32 * 4;
    seed(&client, &skus, &LOCATIONS, per_level).await?;
    let report = reserve_load(&client, "reserve, spread SKUs", load, {
        let skus = skus.clone();
        move |i| {
            // A cheap deterministic spread over SKUs and locations.
            let k = i.wrapping_mul(2_654_435_761);
            (
                skus[k % skus.len()].clone(),
                LOCATIONS[(k / skus.len()) % LOCATIONS.len()].0,
            )
        }
    })
    .await;
    print(&report);

    let audit = client
        .clone()
        .audit_inventory(pb::AuditInventoryRequest::default())
        .await
        .context("audit")?
        .into_inner();
    println!(
        "audit: {} levels checked, {} mismatches",
        audit.levels_checked,
        audit.mismatches.len()
    );
    if let Some(embedded) = embedded {
        embedded.stop().await;
    }
    Ok(())
}

fn print(report: &Report) {
    println!("{}", report.line());
    for failure in &report.failures {
        println!("    failure: {failure}");
    }
}

async fn reserve_load<F>(
    client: &InventoryServiceClient<Channel>,
    name: &str,
    load: Load,
    pick: F,
) -> Report
where
    F: Fn(usize) -> (String, &'static str) + Clone + Send + Sync + 'static,
{
    let client = client.clone();
    drive(name, load, move |i| {
        let mut client = client.clone();
        let (sku, location) = pick(i);
        async move {
            let request = pb::ReserveRequest {
                order_id: format!("bench-{i}"),
                lines: vec![pb::ReservationLine {
                    sku,
                    location_id: location.into(),
                    quantity: 1,
                }],
                ttl_seconds: 3600,
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                user_id: String::new(),
                until_released: false,
            };
            client
                .reserve(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
    })
    .await
}

async fn connect(url: &str) -> anyhow::Result<InventoryServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect()
        .await
        .with_context(|| format!("connect to inventory-svc at {url}"))?;
    Ok(InventoryServiceClient::new(channel))
}

struct Embedded {
    ctx: ServiceContext,
    running: oms_platform::runtime::RunningService,
    admin_url: String,
    database: String,
}

impl Embedded {
    async fn stop(self) {
        self.ctx.shutdown.cancel();
        let _ = self.running.wait().await;
        if let Err(error) = db::drop_postgres_database(&self.admin_url, &self.database).await {
            eprintln!("could not drop {}: {error}", self.database);
        }
    }
}

async fn embedded(
    bench: &InventoryBench,
) -> anyhow::Result<(InventoryServiceClient<Channel>, Embedded)> {
    let database = format!("oms_bench_{}", uuid::Uuid::new_v4().simple());
    let url = db::create_postgres_database(&bench.postgres_url, &database)
        .await
        .with_context(|| {
            format!(
                "create a bench database on {}",
                db::redact(&bench.postgres_url)
            )
        })?;
    let mut config: oms_inventory_svc::Config = config::defaults()?;
    config.server.listen = Some("127.0.0.1:0".parse()?);
    config.database = DatabaseArgs::new(url);
    config.database.max_connections = bench.pool;
    config.database.acquire_timeout = Duration::from_secs(30);
    let ctx = ServiceContext::new(std::sync::Arc::new(InProcessBus::default()));
    let running = oms_inventory_svc::start(config, ctx.clone()).await?;
    let client = connect(&running.url()).await?;
    Ok((
        client,
        Embedded {
            ctx,
            running,
            admin_url: bench.postgres_url.clone(),
            database,
        },
    ))
}

async fn seed(
    client: &InventoryServiceClient<Channel>,
    skus: &[String],
    locations: &[(&str, f64, f64)],
    stock: u32,
) -> anyhow::Result<()> {
    let mut client = client.clone();
    for (id, lat, lng) in locations {
        client
            .upsert_location(pb::UpsertLocationRequest {
                location: Some(pb::Location {
                    location_id: (*id).into(),
                    name: (*id).into(),
                    point: Some(GeoPoint {
                        lat: *lat,
                        lng: *lng,
                    }),
                    country_code: "DE".into(),
                }),
            })
            .await?;
    }
    for sku in skus {
        client
            .upsert_sku(pb::UpsertSkuRequest {
                sku: Some(pb::Sku {
                    sku: sku.clone(),
                    name: sku.clone(),
                    weight_grams: 300,
                    ..Default::default()
                }),
            })
            .await?;
        for (id, _, _) in locations {
            client
                .receive(pb::ReceiveRequest {
                    sku: sku.clone(),
                    location_id: (*id).into(),
                    quantity: stock,
                    reason: "bench stock".into(),
                    idempotency_key: format!("bench-seed-{sku}-{id}"),
                })
                .await?;
        }
    }
    Ok(())
}
