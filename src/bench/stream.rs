//! `oms bench stream`: end-to-end delivery latency of the live stream — an order status event
//! published on the bus until it arrives on the buyer's open `Subscribe` stream — with 1k and
//! 10k streams open.
//!
//! It starts tracking-svc in this process on a fresh PostgreSQL database, over the in-process
//! bus or, with `--nats-url`, JetStream.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use hdrhistogram::Histogram;
use oms_platform::{
    bus::{self, Area, EventBus},
    config::{self, BusArgs, DatabaseArgs},
    db,
    events::{envelope, from_timestamp},
    runtime::ServiceContext,
};
use oms_proto::{
    events::v1::{OrderStatusChanged, envelope::Payload},
    order::v1::{Order, OrderStatus},
    tracking::v1::{
        SubscribeRequest, live_update::Kind, tracking_service_client::TrackingServiceClient,
    },
};
use tonic::transport::Channel;

#[derive(Args, Debug)]
pub struct StreamBench {
    /// PostgreSQL server for the embedded service (a fresh database is created and dropped).
    #[arg(
        long,
        env = "OMS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Publish over this NATS JetStream server instead of the in-process bus.
    #[arg(long)]
    nats_url: Option<String>,
    /// Open streams per scenario.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    streams: Vec<usize>,
    /// Status events per scenario.
    #[arg(long, default_value_t = 3_000)]
    events: usize,
    /// Events published per second (a steady rate measures latency, not a queue).
    #[arg(long, default_value_t = 300)]
    rate: u32,
}

/// Streams per HTTP/2 connection (servers allow a few hundred).
const STREAMS_PER_CONNECTION: usize = 100;

pub async fn run(bench: StreamBench) -> anyhow::Result<()> {
    println!("live stream delivery latency: event published on the bus → received on Subscribe");
    for streams in bench.streams.clone() {
        scenario(&bench, streams).await?;
    }
    Ok(())
}

async fn scenario(bench: &StreamBench, streams: usize) -> anyhow::Result<()> {
    let database = format!("oms_bench_{}", uuid::Uuid::new_v4().simple());
    let url = db::create_postgres_database(&bench.postgres_url, &database)
        .await
        .with_context(|| {
            format!(
                "create a bench database on {}",
                db::redact(&bench.postgres_url)
            )
        })?;
    let bus_args = BusArgs {
        nats_url: bench.nats_url.clone(),
        namespace: format!("bench{}", uuid::Uuid::new_v4().simple()),
        ..BusArgs::default()
    };
    let bus = bus::connect(&bus_args).await?;
    let ctx = ServiceContext::new(bus.clone());
    let mut config: oms_tracking_svc::Config = config::defaults()?;
    config.server.listen = Some("127.0.0.1:0".parse()?);
    config.database = DatabaseArgs::new(url);
    let running = oms_tracking_svc::start(config, ctx.clone()).await?;
    let outcome = measure(bench, streams, &running.url(), &bus).await;
    ctx.shutdown.cancel();
    let _ = running.wait().await;
    if let Err(error) = db::drop_postgres_database(&bench.postgres_url, &database).await {
        eprintln!("could not drop {database}: {error}");
    }
    outcome
}

async fn measure(
    bench: &StreamBench,
    streams: usize,
    url: &str,
    bus: &Arc<dyn EventBus>,
) -> anyhow::Result<()> {
    let mut clients = Vec::new();
    for _ in 0..streams.div_ceil(STREAMS_PER_CONNECTION) {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect()
            .await?;
        clients.push(TrackingServiceClient::new(channel));
    }
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let received = Arc::new(AtomicUsize::new(0));
    let opened = Instant::now();
    for user in 0..streams {
        let mut client: TrackingServiceClient<Channel> =
            clients[user / STREAMS_PER_CONNECTION].clone();
        let mut stream = client
            .subscribe(SubscribeRequest {
                user_id: format!("bench-{user}"),
                resume_cursor: String::new(),
                watch_skus: Vec::new(),
            })
            .await?
            .into_inner();
        let (latency, received) = (latency.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let Some(update) = message.update else {
                    continue;
                };
                if !matches!(update.kind, Some(Kind::OrderStatus(_))) {
                    continue;
                }
                let Some(sent) = update.at.as_ref().and_then(from_timestamp) else {
                    continue;
                };
                let micros = (chrono::Utc::now() - sent)
                    .num_microseconds()
                    .unwrap_or(0)
                    .max(1);
                if let Ok(mut histogram) = latency.lock() {
                    let _ = histogram.record(u64::try_from(micros).unwrap_or(1));
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let opening = opened.elapsed();
    // Let the last subscriptions register.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pace = Duration::from_secs(1) / bench.rate.max(1);
    let started = Instant::now();
    for i in 0..bench.events {
        let user = format!("bench-{}", (i * 7919) % streams);
        let order_id = format!("bench-order-{i}");
        let order = Order {
            order_id: order_id.clone(),
            user_id: user.clone(),
            status: OrderStatus::Shipped.into(),
            version: 1,
            ..Default::default()
        };
        let event = envelope(
            Area::Order,
            &order_id,
            "status_changed",
            &user,
            Payload::OrderStatusChanged(OrderStatusChanged {
                order: Some(order),
                previous_status: 0,
                note: String::new(),
            }),
        )?;
        bus.publish(&event).await?;
        let due = started + pace * u32::try_from(i + 1).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < bench.events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let histogram = latency
        .lock()
        .map_err(|_| anyhow::anyhow!("latency histogram poisoned"))?
        .clone();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{streams:>6} streams (opened in {:>5.1} s)  {:>6}/{} events delivered  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
        opening.as_secs_f64(),
        received.load(Ordering::Relaxed),
        bench.events,
        ms(0.50),
        ms(0.90),
        ms(0.99),
        histogram.max() as f64 / 1000.0,
    );
    Ok(())
}
