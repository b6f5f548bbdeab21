//! `oms dev`: the gateway and every service in one process — SQLite files under `./.oms/`,
//! the in-process bus (or NATS with `--nats-url`), loopback ports from DESIGN.md.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::{Args, FromArgMatches, Parser};
use oms_platform::{
    bus,
    config::{self, BusArgs, DatabaseArgs, METRICS_PORT, MetricsArgs, ServerArgs},
    runtime::{RunningService, ServiceContext, shutdown_on_signals},
};

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Where the SQLite files live.
    #[arg(long = "data-dir", env = "OMS_DATA_DIR", default_value = ".oms")]
    data_dir: PathBuf,
    /// Address every service binds to.
    #[arg(long = "host", env = "OMS_DEV_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The gateway's port; order, inventory, fulfillment, tracking, catalog and assistant take
    /// the next six.
    #[arg(long = "ports-from", env = "OMS_DEV_PORTS_FROM", default_value_t = oms_gateway::DEFAULT_PORT)]
    ports_from: u16,
    #[command(flatten)]
    bus: BusArgs,
}

impl DevArgs {
    /// The defaults (and `OMS_*` variables), for a bare `oms`.
    pub fn from_env() -> Self {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            dev: DevArgs,
        }
        Bare::parse_from(["oms"]).dev
    }
}

pub async fn run(args: DevArgs, metrics: &MetricsArgs) -> anyhow::Result<()> {
    let metrics_address = metrics
        .address(SocketAddr::new(args.host, METRICS_PORT))
        .map_err(anyhow::Error::msg)?;
    if let Some(address) = metrics_address {
        oms_platform::metrics::install(address)?;
    }
    let bus = bus::connect(&args.bus).await?;
    let mut ctx = ServiceContext::new(bus.clone());
    ctx.shutdown = shutdown_on_signals();

    let running = match start_all(&args, &ctx).await {
        Ok(running) => running,
        Err(error) => {
            ctx.shutdown.cancel();
            return Err(error);
        }
    };
    print_welcome(&args, bus.kind(), &running, metrics_address);
    ctx.shutdown.cancelled().await;
    for service in running {
        let name = service.name;
        service
            .wait()
            .await
            .with_context(|| format!("{name} stopped with an error"))?;
    }
    tracing::info!("all services stopped");
    Ok(())
}

async fn start_all(args: &DevArgs, ctx: &ServiceContext) -> anyhow::Result<Vec<RunningService>> {
    let host = args.host;
    let dir = &args.data_dir;
    // DESIGN.md's layout: gateway, order, inventory, fulfillment, tracking, catalog, assistant
    // on consecutive ports.
    let port = |default: u16| args.ports_from + (default - oms_gateway::DEFAULT_PORT);
    let url = |default: u16| format!("http://{}", SocketAddr::new(host, port(default)));
    let mut running = Vec::new();

    let mut inventory: oms_inventory_svc::Config = defaults()?;
    place(
        &mut inventory.server,
        &mut inventory.database,
        host,
        port(oms_inventory_svc::DEFAULT_PORT),
        dir,
        "inventory",
    );
    running.push(oms_inventory_svc::start(inventory, ctx.clone()).await?);

    let mut fulfillment: oms_fulfillment_svc::Config = defaults()?;
    place(
        &mut fulfillment.server,
        &mut fulfillment.database,
        host,
        port(oms_fulfillment_svc::DEFAULT_PORT),
        dir,
        "fulfillment",
    );
    fulfillment.inventory_url = url(oms_inventory_svc::DEFAULT_PORT);
    fulfillment.tracking_url = url(oms_tracking_svc::DEFAULT_PORT);
    running.push(oms_fulfillment_svc::start(fulfillment, ctx.clone()).await?);

    let mut tracking: oms_tracking_svc::Config = defaults()?;
    place(
        &mut tracking.server,
        &mut tracking.database,
        host,
        port(oms_tracking_svc::DEFAULT_PORT),
        dir,
        "tracking",
    );
    running.push(oms_tracking_svc::start(tracking, ctx.clone()).await?);

    let mut catalog: oms_catalog_svc::Config = defaults()?;
    place(
        &mut catalog.server,
        &mut catalog.database,
        host,
        port(oms_catalog_svc::DEFAULT_PORT),
        dir,
        "catalog",
    );
    // A newcomer can browse and search at once.
    catalog.sample_catalog = true;
    running.push(oms_catalog_svc::start(catalog, ctx.clone()).await?);

    let mut assistant: oms_assistant_svc::Config = defaults()?;
    assistant.server.listen = Some(SocketAddr::new(host, port(oms_assistant_svc::DEFAULT_PORT)));
    assistant.order_url = url(oms_order_svc::DEFAULT_PORT);
    assistant.catalog_url = url(oms_catalog_svc::DEFAULT_PORT);
    assistant.tracking_url = url(oms_tracking_svc::DEFAULT_PORT);
    running.push(oms_assistant_svc::start(assistant, ctx.clone()).await?);

    let mut order: oms_order_svc::Config = defaults()?;
    place(
        &mut order.server,
        &mut order.database,
        host,
        port(oms_order_svc::DEFAULT_PORT),
        dir,
        "order",
    );
    order.inventory_url = url(oms_inventory_svc::DEFAULT_PORT);
    order.fulfillment_url = url(oms_fulfillment_svc::DEFAULT_PORT);
    // Development: passkeys for pages on any localhost port (the gateway's, a dev server's).
    order.passkey_any_port = true;
    running.push(oms_order_svc::start(order, ctx.clone()).await?);

    let mut gateway: oms_gateway::Config = defaults()?;
    gateway.server.listen = Some(SocketAddr::new(host, args.ports_from));
    gateway.order_url = url(oms_order_svc::DEFAULT_PORT);
    gateway.inventory_url = url(oms_inventory_svc::DEFAULT_PORT);
    gateway.tracking_url = url(oms_tracking_svc::DEFAULT_PORT);
    gateway.catalog_url = url(oms_catalog_svc::DEFAULT_PORT);
    gateway.assistant_url = url(oms_assistant_svc::DEFAULT_PORT);
    // Development only: a local signing key stands in for the identity provider.
    let dev_key = oms_gateway::dev_key::ensure(dir).map_err(anyhow::Error::msg)?;
    gateway.jwks_file = Some(dev_key.jwks_path);
    running.push(oms_gateway::start(gateway, ctx.clone()).await?);
    Ok(running)
}

/// A service's configuration as its flags' defaults and `OMS_*` variables give it.
fn defaults<C: Args + FromArgMatches>() -> anyhow::Result<C> {
    config::defaults().context("service defaults")
}

fn place(
    server: &mut ServerArgs,
    database: &mut DatabaseArgs,
    host: IpAddr,
    port: u16,
    dir: &Path,
    service: &str,
) {
    server.listen = Some(SocketAddr::new(host, port));
    database.url = Some(format!("sqlite://{}/{service}.db", dir.display()));
}

fn print_welcome(
    args: &DevArgs,
    bus_kind: &str,
    running: &[RunningService],
    metrics: Option<SocketAddr>,
) {
    let gateway = running
        .iter()
        .find(|s| s.name == "gateway")
        .map(|s| s.local_addr.to_string())
        .unwrap_or_default();
    let mut text = format!(
        "\nOMS mesh is up ({bus_kind} bus, SQLite files in {}):\n",
        args.data_dir.display()
    );
    let mut by_port: Vec<&RunningService> = running.iter().collect();
    by_port.sort_by_key(|s| s.local_addr.port());
    for service in by_port {
        let note = if service.name == "gateway" {
            "  gRPC + gRPC-web, public API"
        } else {
            ""
        };
        text.push_str(&format!("  {:<12} {}{note}\n", service.name, service.url()));
    }
    if let Some(address) = metrics {
        text.push_str(&format!("  {:<12} http://{address}/metrics\n", "metrics"));
    }
    text.push_str(&format!(
        "\nTry (buf: npm i -g @bufbuild/buf, or tools/node_modules/.bin/buf):\n\
         \x20 buf curl --protocol grpc --http2-prior-knowledge --list-services http://{gateway}\n\
         \x20 buf curl --protocol grpc --http2-prior-knowledge http://{gateway}/grpc.health.v1.Health/Check\n\
         \x20 grpcurl -plaintext {gateway} list\n\
         \nThe public API needs a token; `oms token` mints one from the dev key in {data}:\n\
         \x20 buf curl --protocol grpc --http2-prior-knowledge -H \"authorization: Bearer $(oms token --user ada)\" \\\n\
         \x20   -d '{{}}' http://{gateway}/oms.mobile.v1.MobileOrderService/ListOrders\n\
         \nCtrl-C stops everything cleanly.\n",
        data = args.data_dir.display()
    ));
    println!("{text}");
}
