//! `oms serve <service>`: one service per process, the production topology.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use oms_platform::{
    bus,
    config::{BusArgs, METRICS_PORT, MetricsArgs},
    runtime::{RunningService, ServiceContext, StartError, shutdown_on_signals},
};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(subcommand)]
    service: Service,
}

#[derive(Subcommand, Debug)]
enum Service {
    /// The public mobile API (gRPC and gRPC-web).
    Gateway {
        #[command(flatten)]
        config: oms_gateway::Config,
    },
    /// Orders: intake, saga, cancellations, returns.
    Order {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        config: oms_order_svc::Config,
    },
    /// Stock, reservations, cache sync.
    Inventory {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        config: oms_inventory_svc::Config,
    },
    /// Centers, routing, quotes, tax, carriers.
    Fulfillment {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        config: oms_fulfillment_svc::Config,
    },
    /// GPS, ETA, notifications, the live stream.
    Tracking {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        config: oms_tracking_svc::Config,
    },
    /// Products, search, AR assets.
    Catalog {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        config: oms_catalog_svc::Config,
    },
    /// Ordering by talking.
    Assistant {
        #[command(flatten)]
        config: oms_assistant_svc::Config,
    },
}

pub async fn run(args: ServeArgs, metrics: &MetricsArgs) -> anyhow::Result<()> {
    if let Some(address) = metrics
        .address(([0, 0, 0, 0], METRICS_PORT).into())
        .map_err(anyhow::Error::msg)?
    {
        oms_platform::metrics::install(address)?;
    }
    let running = start(args.service).await?;
    tracing::info!(service = running.name, address = %running.local_addr, "ready");
    running.wait().await.context("server")?;
    Ok(())
}

async fn start(service: Service) -> Result<RunningService, StartError> {
    // The gateway and the assistant keep no state and publish nothing: an unused in-process bus.
    let bus_args = match &service {
        Service::Gateway { .. } | Service::Assistant { .. } => BusArgs::default(),
        Service::Order { bus, .. }
        | Service::Inventory { bus, .. }
        | Service::Fulfillment { bus, .. }
        | Service::Tracking { bus, .. }
        | Service::Catalog { bus, .. } => bus.clone(),
    };
    let mut ctx = ServiceContext::new(bus::connect(&bus_args).await?);
    ctx.shutdown = shutdown_on_signals();
    match service {
        Service::Gateway { config } => oms_gateway::start(config, ctx).await,
        Service::Order { config, .. } => oms_order_svc::start(config, ctx).await,
        Service::Inventory { config, .. } => oms_inventory_svc::start(config, ctx).await,
        Service::Fulfillment { config, .. } => oms_fulfillment_svc::start(config, ctx).await,
        Service::Tracking { config, .. } => oms_tracking_svc::start(config, ctx).await,
        Service::Catalog { config, .. } => oms_catalog_svc::start(config, ctx).await,
        Service::Assistant { config } => oms_assistant_svc::start(config, ctx).await,
    }
}
