//! `oms bench gateway`: what the gateway adds — GetOrder straight to order-svc and the same
//! call through the gateway (token check, rate limit, routing), in one run over one mesh.
//!
//! The mesh runs in this process on SQLite files in a temporary directory and the in-process
//! bus; the gateway's rate limit is raised so the bench measures overhead, not throttling.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Args;
use oms::mesh::{self, Operator, Protocol, Target};
use oms_platform::{
    bus::memory::InProcessBus,
    config::{self, DatabaseArgs},
    runtime::{RunningService, ServiceContext},
    sample,
};
use oms_proto::{
    mobile::v1::{self as mobile, mobile_order_service_client::MobileOrderServiceClient},
    order::v1::{self as ord, order_service_client::OrderServiceClient},
};
use tonic::Request;

use super::{Load, Report, drive};

#[derive(Args, Debug)]
pub struct GatewayBench {
    /// Calls per scenario.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

struct Mesh {
    ctx: ServiceContext,
    running: Vec<RunningService>,
    dir: std::path::PathBuf,
}

pub async fn run(bench: GatewayBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("oms-bench-{}", uuid::Uuid::new_v4().simple()));
    let mesh = start(&dir).await?;
    let outcome = measure(&bench, &mesh).await;
    mesh.ctx.shutdown.cancel();
    for running in mesh.running {
        let _ = running.wait().await;
    }
    let _ = std::fs::remove_dir_all(&mesh.dir);
    outcome
}

async fn start(dir: &std::path::Path) -> anyhow::Result<Mesh> {
    let ctx = ServiceContext::new(Arc::new(InProcessBus::default()));
    let listen = || Some("127.0.0.1:0".parse().ok()).flatten();
    let database = |name: &str| DatabaseArgs::new(format!("sqlite://{}/{name}.db", dir.display()));
    let mut inventory: oms_inventory_svc::Config = config::defaults()?;
    inventory.server.listen = listen();
    inventory.database = database("inventory");
    let inventory = oms_inventory_svc::start(inventory, ctx.clone()).await?;
    let mut fulfillment: oms_fulfillment_svc::Config = config::defaults()?;
    fulfillment.server.listen = listen();
    fulfillment.database = database("fulfillment");
    fulfillment.inventory_url = inventory.url();
    let fulfillment = oms_fulfillment_svc::start(fulfillment, ctx.clone()).await?;
    let mut tracking: oms_tracking_svc::Config = config::defaults()?;
    tracking.server.listen = listen();
    tracking.database = database("tracking");
    let tracking = oms_tracking_svc::start(tracking, ctx.clone()).await?;
    let mut order: oms_order_svc::Config = config::defaults()?;
    order.server.listen = listen();
    order.database = database("order");
    order.inventory_url = inventory.url();
    order.fulfillment_url = fulfillment.url();
    let order = oms_order_svc::start(order, ctx.clone()).await?;
    let key = oms_gateway::dev_key::ensure(dir).map_err(anyhow::Error::msg)?;
    let mut gateway: oms_gateway::Config = config::defaults()?;
    gateway.server.listen = listen();
    gateway.order_url = order.url();
    gateway.inventory_url = inventory.url();
    gateway.tracking_url = tracking.url();
    gateway.jwks_file = Some(key.jwks_path.clone());
    gateway.rate_per_user = 1_000_000;
    gateway.rate_burst = 1_000_000;
    let gateway = oms_gateway::start(gateway, ctx.clone()).await?;
    Ok(Mesh {
        ctx,
        running: vec![gateway, order, tracking, fulfillment, inventory],
        dir: dir.to_owned(),
    })
}

async fn measure(bench: &GatewayBench, mesh: &Mesh) -> anyhow::Result<()> {
    let url = |name: &str| {
        mesh.running
            .iter()
            .find(|s| s.name == name)
            .map(RunningService::url)
            .unwrap_or_default()
    };
    let orders = OrderServiceClient::new(mesh::channel(&url("order")).await?);
    let gateway = MobileOrderServiceClient::new(mesh::channel(&url("gateway")).await?);
    let order_id = seed(mesh, url).await?;
    let key = oms_gateway::dev_key::ensure(&mesh.dir).map_err(anyhow::Error::msg)?;
    let token = key
        .mint("bench", "orders:read", Duration::from_secs(3600))
        .map_err(anyhow::Error::msg)?;
    let load = Load {
        requests: bench.requests,
        concurrency: bench.concurrency,
        until: None,
    };
    println!(
        "gateway overhead: GetOrder, {} calls per scenario, {} in flight, one mesh (SQLite, in-process bus)",
        load.requests, load.concurrency
    );

    let direct = drive("GetOrder direct to order-svc", load, {
        let (orders, order_id) = (orders.clone(), order_id.clone());
        move |_| {
            let (mut orders, order_id) = (orders.clone(), order_id.clone());
            async move {
                let request = ord::GetOrderRequest {
                    order_id,
                    user_id: "bench".into(),
                };
                orders
                    .get_order(request)
                    .await
                    .map(drop)
                    .map_err(|s| s.to_string())
            }
        }
    })
    .await;
    let through = drive("GetOrder through the gateway", load, {
        let (gateway, order_id, token) = (gateway.clone(), order_id.clone(), token.clone());
        move |_| {
            let (mut gateway, order_id, token) = (gateway.clone(), order_id.clone(), token.clone());
            async move {
                let mut request = Request::new(mobile::GetOrderRequest { order_id });
                let bearer = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| "bad token header".to_owned())?;
                request.metadata_mut().insert("authorization", bearer);
                gateway
                    .get_order(request)
                    .await
                    .map(drop)
                    .map_err(|s| s.to_string())
            }
        }
    })
    .await;
    for report in [&direct, &through] {
        print(report);
    }
    let ms = |report: &Report, q: f64| report.latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "the gateway adds p50 {:+.2} ms, p99 {:+.2} ms",
        ms(&through, 0.5) - ms(&direct, 0.5),
        ms(&through, 0.99) - ms(&direct, 0.99)
    );
    Ok(())
}

fn print(report: &Report) {
    println!("{}", report.line());
    for failure in &report.failures {
        println!("    failure: {failure}");
    }
}

/// A center, a SKU with price and stock, and one placed order; returns its id.
async fn seed(mesh: &Mesh, url: impl Fn(&str) -> String) -> anyhow::Result<String> {
    let target = Target {
        gateway: url("gateway"),
        order: url("order"),
        inventory: url("inventory"),
        fulfillment: url("fulfillment"),
        tracking: url("tracking"),
        key_dir: mesh.dir.clone(),
        protocol: Protocol::Grpc,
    };
    let mut operator = Operator::connect(&target).await?;
    let berlin = mesh::german_center("bench-berlin", 52.52, 13.40, false);
    operator
        .seed(
            "bench",
            &[berlin],
            &[("BENCH", "9.90")],
            &[("BENCH", "bench-berlin", 10)],
        )
        .await?;
    let placed = operator
        .orders
        .place_order(ord::PlaceOrderRequest {
            user_id: "bench".into(),
            idempotency_key: "bench-order".into(),
            lines: vec![ord::OrderLineInput {
                sku: "BENCH".into(),
                quantity: 1,
            }],
            shipping_address: Some(sample::berlin_address()),
            currency_code: "EUR".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    placed
        .order
        .map(|o| o.order_id)
        .context("order-svc answered without the order")
}
