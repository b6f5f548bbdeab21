//! The mobile scenarios: virtual app users against a running mesh — `oms dev` with no
//! set-up, or the multi-process topology given by URLs. Apps go through the gateway over
//! gRPC or gRPC-web with their own tokens; the bench seeds centers, catalog and stock through
//! the services' internal APIs, as operators do.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use futures::{StreamExt as _, TryStreamExt as _};
use oms_proto::{
    common::v1::GeoPoint,
    fulfillment::v1 as ful,
    mobile::v1 as mobile,
    order::v1::{self as ord, OrderStatus},
    tracking::v1::{self as trk, live_update::Kind},
};
use prost_types::Timestamp;
use serde_json::json;
use tonic::Code;

use super::{Load, Report, drive, drive_at_rate, results};
use oms::mesh::{
    App, Identity, Operator, Target,
    bench_world::{MUNICH, cart, seed as seed_world},
    transport,
};
use oms_platform::sample;

#[derive(Args, Debug)]
pub struct Common {
    #[command(flatten)]
    target: Target,
    /// Where the JSON result and the plot go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct OrdersBench {
    #[command(flatten)]
    common: Common,
    /// Orders per second to offer; 0 sends as fast as `--concurrency` callers can.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long to offer them.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Callers in flight at most (closed loop: exactly this many).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct virtual users placing the orders.
    #[arg(long, default_value_t = 2_000)]
    users: usize,
    /// Also send the same load straight to order-svc, to see what the gateway adds.
    #[arg(long)]
    direct: bool,
}

#[derive(Args, Debug)]
pub struct FlashSaleBench {
    #[command(flatten)]
    common: Common,
    /// Buyers who tap "buy" at the same moment.
    #[arg(long, default_value_t = 2_000)]
    buyers: usize,
    /// Units on sale.
    #[arg(long, default_value_t = 100)]
    units: u32,
}

#[derive(Args, Debug)]
pub struct FanoutBench {
    #[command(flatten)]
    common: Common,
    /// Open Subscribe streams (one app user each).
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Orders placed by users of those streams; each puts a status change on its stream,
    /// and its courier one GPS position.
    #[arg(long, default_value_t = 1_000)]
    orders: usize,
    /// Orders per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
}

#[derive(Args, Debug)]
pub struct GpsBench {
    #[command(flatten)]
    common: Common,
    /// Couriers on the road (one shipment each).
    #[arg(long, default_value_t = 200)]
    couriers: usize,
    /// Positions per second in all.
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// Positions per ReportPositions call: a courier's phone records a fix every 100 ms and
    /// uploads them together.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// How long to send.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

fn mobile_order(key: String, lines: Vec<ord::OrderLineInput>) -> mobile::PlaceOrderRequest {
    mobile::PlaceOrderRequest {
        idempotency_key: key,
        lines,
        shipping_address: Some(sample::berlin_address()),
        currency_code: "EUR".into(),
        ..Default::default()
    }
}

fn run_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()[..12].to_owned()
}

/// Signed-in apps for `users`, spread over `connections` transports.
async fn apps(target: &Target, users: &[String], connections: usize) -> anyhow::Result<Vec<App>> {
    let identity = Identity::open(&target.key_dir)?;
    let mut transports = Vec::new();
    for _ in 0..connections.max(1) {
        transports.push(transport(&target.gateway, target.protocol).await?);
    }
    users
        .iter()
        .enumerate()
        .map(|(i, user)| identity.app(user, &target.gateway, &transports[i % transports.len()]))
        .collect()
}

fn print(report: &Report) {
    println!("{}", report.line());
    for failure in &report.failures {
        println!("    failure: {failure}");
    }
}

fn confirmed(order: Option<&ord::Order>) -> Result<(), String> {
    match order.map(ord::Order::status) {
        Some(OrderStatus::Confirmed) => Ok(()),
        other => Err(format!("placed but {other:?}")),
    }
}

pub async fn orders(bench: OrdersBench) -> anyhow::Result<()> {
    let target = &bench.common.target;
    let mut operator = Operator::connect(target).await?;
    seed_world(&mut operator).await?;
    let run = run_id();
    let closed_loop = bench.rate <= 0.0;
    // Closed loop: as many as the callers manage in the duration; sized generously, cut by time.
    let requests = if closed_loop {
        usize::MAX
    } else {
        (bench.rate * bench.duration.as_secs_f64()).ceil() as usize
    };
    // Each user keeps a handful of orders open, well under the per-user limit.
    let users: Vec<String> = (0..bench.users.max(1))
        .map(|n| format!("bench-{run}-{n}"))
        .collect();
    let apps = Arc::new(apps(target, &users, 4).await?);
    let deadline = Instant::now() + bench.duration;
    println!(
        "orders: {} through the gateway ({:?}), 25% split over two centers, {} users",
        if closed_loop {
            format!(
                "{} callers as fast as possible for {:?}",
                bench.concurrency, bench.duration
            )
        } else {
            format!("{} orders/s for {:?}", bench.rate, bench.duration)
        },
        target.protocol,
        users.len(),
    );
    let place = {
        let (apps, run) = (apps.clone(), run.clone());
        move |i: usize| {
            let mut app = apps[i % apps.len()].clone();
            let request = mobile_order(format!("{run}-{i}"), cart(i));
            async move {
                let placed = app.place_order(request).await.map_err(|s| s.to_string())?;
                confirmed(placed.get_ref().order.as_ref())
            }
        }
    };
    let mut reports = vec![load(&bench, "PlaceOrder via gateway", requests, deadline, place).await];
    if bench.direct {
        let orders_client = operator.orders.clone();
        let users = Arc::new(users.clone());
        let deadline = Instant::now() + bench.duration;
        let place_direct = move |i: usize| {
            let mut orders_client = orders_client.clone();
            let request = ord::PlaceOrderRequest {
                user_id: format!("{}-direct", users[i % users.len()]),
                idempotency_key: format!("{run}-direct-{i}"),
                lines: cart(i),
                shipping_address: Some(sample::berlin_address()),
                currency_code: "EUR".into(),
                ..Default::default()
            };
            async move {
                let placed = orders_client
                    .place_order(request)
                    .await
                    .map_err(|s| s.to_string())?;
                confirmed(placed.get_ref().order.as_ref())
            }
        };
        reports.push(
            load(
                &bench,
                "PlaceOrder direct",
                requests,
                deadline,
                place_direct,
            )
            .await,
        );
    }
    for report in &reports {
        print(report);
    }
    let mut outcome = json!({
        "orders_per_s": reports[0].throughput(),
        "success_rate": reports[0].success_rate(),
        "p99_ms": reports[0].ms(0.99),
    });
    if let [through, direct] = reports.as_slice() {
        let added = |q: f64| through.ms(q) - direct.ms(q);
        println!(
            "the gateway adds p50 {:+.2} ms, p99 {:+.2} ms",
            added(0.5),
            added(0.99)
        );
        outcome["gateway_adds_ms"] = json!({ "p50": added(0.5), "p99": added(0.99) });
    }
    let settings = json!({
        "target": target, "rate": bench.rate, "duration_s": bench.duration.as_secs_f64(),
        "concurrency": bench.concurrency, "users": users.len(),
    });
    let refs: Vec<&Report> = reports.iter().collect();
    written(results::write(
        &bench.common.out,
        "orders",
        settings,
        &refs,
        outcome,
    )?);
    Ok(())
}

/// Runs `operation` open-loop at the bench's rate, or closed-loop until the deadline.
async fn load<F, Fut>(
    bench: &OrdersBench,
    name: &str,
    requests: usize,
    deadline: Instant,
    operation: F,
) -> Report
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    if bench.rate > 0.0 {
        return drive_at_rate(name, requests, bench.rate, bench.concurrency, operation).await;
    }
    let load = Load {
        requests,
        concurrency: bench.concurrency,
        until: Some(deadline),
    };
    drive(name, load, operation).await
}

fn written((json, plot): (PathBuf, PathBuf)) {
    println!("results: {}  plot: {}", json.display(), plot.display());
}

pub async fn flash_sale(bench: FlashSaleBench) -> anyhow::Result<()> {
    let target = &bench.common.target;
    let mut operator = Operator::connect(target).await?;
    seed_world(&mut operator).await?;
    let run = run_id();
    let sku = format!("FLASH-{run}");
    operator
        .seed(
            &run,
            &[],
            &[(sku.as_str(), "9.90")],
            &[(sku.as_str(), MUNICH, bench.units)],
        )
        .await?;
    let users: Vec<String> = (0..bench.buyers)
        .map(|n| format!("flash-{run}-{n}"))
        .collect();
    let apps = apps(target, &users, 8).await?;
    println!(
        "flash sale: {} buyers tap buy at once for {} units of {sku} through the gateway ({:?})",
        bench.buyers, bench.units, target.protocol
    );
    let start = Arc::new(tokio::sync::Barrier::new(bench.buyers + 1));
    let bar = super::progress("flash sale", bench.buyers);
    let buyers: Vec<_> = apps
        .into_iter()
        .enumerate()
        .map(|(n, mut app)| {
            let (start, bar) = (start.clone(), bar.clone());
            let request = mobile_order(
                format!("{run}-{n}"),
                vec![ord::OrderLineInput {
                    sku: sku.clone(),
                    quantity: 1,
                }],
            );
            tokio::spawn(async move {
                start.wait().await;
                let tapped = Instant::now();
                let answer = buy(&mut app, request).await;
                bar.inc(1);
                (tapped, tapped.elapsed(), answer)
            })
        })
        .collect();
    start.wait().await;
    let started = Instant::now();
    let mut report = Report::new("PlaceOrder (flash sale)", bench.buyers);
    let (mut sold, mut sold_out) = (0usize, 0usize);
    for buyer in buyers {
        let Ok((tapped, latency, answer)) = buyer.await else {
            continue;
        };
        let result = match answer {
            Answer::Bought => {
                sold += 1;
                Ok(())
            }
            Answer::SoldOut => {
                sold_out += 1;
                Ok(())
            }
            Answer::Failed(error) => Err(error),
        };
        // Everyone taps at once, so the plot places each answer at the moment it arrived.
        let answered = (tapped + latency).saturating_duration_since(started);
        report.record(answered, latency, result);
    }
    report.elapsed = started.elapsed();
    bar.finish_and_clear();
    let (on_hand, reserved) = operator.level(&sku, MUNICH).await?;
    let mismatches = operator.audit().await?;
    let oversell = (sold as i64 - i64::from(bench.units)).max(0) + (reserved - on_hand).max(0);
    print(&report);
    println!(
        "sold {sold} of {} units ({} buyers told sold out, {} without an answer); \
         inventory reserved {reserved} of {on_hand} on hand; oversell {oversell}; audit mismatches {}",
        bench.units,
        sold_out,
        bench.buyers - sold - sold_out,
        mismatches.len()
    );
    let outcome = json!({
        "units": bench.units, "buyers": bench.buyers, "sold": sold, "sold_out_answers": sold_out,
        "unanswered": bench.buyers - sold - sold_out, "reserved": reserved, "on_hand": on_hand,
        "oversell": oversell, "audit_mismatches": mismatches,
    });
    let settings = json!({ "target": target, "buyers": bench.buyers, "units": bench.units });
    written(results::write(
        &bench.common.out,
        "flash-sale",
        settings,
        &[&report],
        outcome,
    )?);
    anyhow::ensure!(oversell == 0, "OVERSOLD by {oversell}");
    Ok(())
}

enum Answer {
    Bought,
    SoldOut,
    Failed(String),
}

/// What an app does on "buy": retries with the same key while the mesh sheds load, and
/// takes FAILED_PRECONDITION as sold out.
async fn buy(app: &mut App, request: mobile::PlaceOrderRequest) -> Answer {
    let mut backoff = Duration::from_millis(50);
    for _ in 0..30 {
        match app.place_order(request.clone()).await {
            Ok(placed) => {
                return match confirmed(placed.get_ref().order.as_ref()) {
                    Ok(()) => Answer::Bought,
                    Err(error) => Answer::Failed(error),
                };
            }
            Err(status) if status.code() == Code::FailedPrecondition => return Answer::SoldOut,
            Err(status) if matches!(status.code(), Code::ResourceExhausted | Code::Unavailable) => {
                let jitter = Duration::from_millis(rand_jitter());
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(status) => return Answer::Failed(status.to_string()),
        }
    }
    Answer::Failed("still shed after 30 attempts".into())
}

fn rand_jitter() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 50
}

/// Latency samples from app streams, keyed by what arrived.
#[derive(Default)]
struct Arrivals {
    statuses: Report,
    positions: Report,
    /// (order, status) → times it arrived; more than once is a duplicate.
    seen: HashMap<(String, i32), u32>,
}

fn since(at: Option<&Timestamp>) -> Duration {
    let Some(at) = at else {
        return Duration::ZERO;
    };
    let sent =
        std::time::UNIX_EPOCH + Duration::new(at.seconds.max(0) as u64, at.nanos.max(0) as u32);
    std::time::SystemTime::now()
        .duration_since(sent)
        .unwrap_or_default()
}

pub async fn fanout(bench: FanoutBench) -> anyhow::Result<()> {
    let target = &bench.common.target;
    let mut operator = Operator::connect(target).await?;
    seed_world(&mut operator).await?;
    let run = run_id();
    let users: Vec<String> = (0..bench.streams)
        .map(|n| format!("fan-{run}-{n}"))
        .collect();
    // A few hundred streams per HTTP/2 connection, as a fleet of phones behind a proxy would.
    let apps = apps(target, &users, bench.streams.div_ceil(500)).await?;
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let started = Instant::now();
    println!(
        "fan-out: opening {} Subscribe streams through the gateway ({:?})",
        bench.streams, target.protocol
    );
    let bar = super::progress("open streams", bench.streams);
    let opened: Vec<_> = futures::stream::iter(apps.iter().cloned())
        .map(|mut app| {
            let bar = bar.clone();
            async move {
                // "0": from the very beginning, so nothing between opening and the first
                // event can slip past.
                let request = mobile::SubscribeRequest {
                    resume_cursor: "0".into(),
                    watch_skus: Vec::new(),
                };
                let stream = app
                    .subscribe(request)
                    .await
                    .map(tonic::Response::into_inner);
                bar.inc(1);
                stream
            }
        })
        .buffer_unordered(256)
        .try_collect()
        .await
        .context("open a stream")?;
    bar.finish_and_clear();
    println!(
        "{} streams open after {:.1} s",
        opened.len(),
        started.elapsed().as_secs_f64()
    );
    let readers: Vec<_> = opened
        .into_iter()
        .map(|mut stream| {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                while let Ok(Some(item)) = stream.message().await {
                    let Some(update) = item.update else { continue };
                    let received = Instant::now();
                    let mut arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
                    let arrivals = &mut *arrivals;
                    match update.kind {
                        Some(Kind::OrderStatus(change)) => {
                            let key = (change.order_id.clone(), change.status);
                            *arrivals.seen.entry(key).or_default() += 1;
                            let latency = since(update.at.as_ref());
                            let at = received.duration_since(started);
                            arrivals.statuses.record(at, latency, Ok(()));
                        }
                        Some(Kind::Position(position)) => {
                            let latency = since(position.recorded_at.as_ref());
                            let at = received.duration_since(started);
                            arrivals.positions.record(at, latency, Ok(()));
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();

    // Orders from users spread over all streams, at a steady rate.
    let placers: Arc<Vec<App>> = Arc::new(
        (0..bench.orders)
            .map(|i| apps[i * bench.streams / bench.orders.max(1)].clone())
            .collect(),
    );
    let placed_ids = Arc::new(Mutex::new(Vec::new()));
    let placing = drive_at_rate("PlaceOrder (events)", bench.orders, bench.rate, 256, {
        let (placers, placed_ids, run) = (placers.clone(), placed_ids.clone(), run.clone());
        move |i: usize| {
            let mut app = placers[i].clone();
            let placed_ids = placed_ids.clone();
            let request = mobile_order(format!("{run}-{i}"), cart(i));
            async move {
                let placed = app.place_order(request).await.map_err(|s| s.to_string())?;
                let order = placed.into_inner().order;
                confirmed(order.as_ref())?;
                if let Some(order) = order {
                    placed_ids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(order.order_id);
                }
                Ok(())
            }
        }
    })
    .await;

    // Each order's courier reports one position once the parcel is dispatched.
    let order_ids = placed_ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let shipments = dispatched_shipments(&operator, &order_ids).await;
    let bar = super::progress("courier positions", shipments.len());
    for chunk in shipments.chunks(50) {
        let positions = chunk
            .iter()
            .map(|shipment| trk::PositionReport {
                device_id: format!("van-{}", shipment.shipment_id),
                shipment_id: shipment.shipment_id.clone(),
                point: Some(GeoPoint {
                    lat: 52.40,
                    lng: 13.30,
                }),
                recorded_at: Some(oms_platform::events::now()),
                accuracy_m: 5.0,
                speed_mps: 10.0,
            })
            .collect();
        operator
            .tracking
            .report_positions(trk::ReportPositionsRequest {
                positions,
                ..Default::default()
            })
            .await?;
        bar.inc(chunk.len() as u64);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bar.finish_and_clear();

    // Let the last updates arrive.
    let expected_positions = shipments.len();
    let wait_until = Instant::now() + Duration::from_secs(30);
    loop {
        let (statuses, positions) = {
            let arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
            (arrivals.seen.len(), arrivals.positions.samples.len())
        };
        if (statuses >= order_ids.len() && positions >= expected_positions)
            || Instant::now() > wait_until
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for reader in &readers {
        reader.abort();
    }
    let mut arrivals = std::mem::take(&mut *arrivals.lock().unwrap_or_else(|p| p.into_inner()));
    let confirmed_arrived = arrivals
        .seen
        .keys()
        .filter(|(_, status)| *status == OrderStatus::Confirmed as i32)
        .count();
    let duplicates: u32 = arrivals.seen.values().map(|n| n - 1).sum();
    arrivals.statuses.name = "status change → app stream".into();
    arrivals.statuses.requests = order_ids.len();
    arrivals.statuses.succeeded = confirmed_arrived;
    arrivals.statuses.elapsed = placing.elapsed;
    arrivals.positions.name = "courier GPS → app stream".into();
    arrivals.positions.requests = expected_positions;
    arrivals.positions.succeeded = arrivals.positions.samples.len();
    arrivals.positions.elapsed = placing.elapsed;
    for report in [&placing, &arrivals.statuses, &arrivals.positions] {
        print(report);
    }
    println!(
        "{} streams: {confirmed_arrived} of {} confirmations arrived, {duplicates} duplicates; \
         {} of {expected_positions} positions arrived",
        bench.streams,
        order_ids.len(),
        arrivals.positions.samples.len()
    );
    let outcome = json!({
        "streams": bench.streams,
        "status_delivery_p99_ms": arrivals.statuses.ms(0.99),
        "position_delivery_p99_ms": arrivals.positions.ms(0.99),
        "confirmations_expected": order_ids.len(), "confirmations_arrived": confirmed_arrived,
        "duplicates": duplicates,
        "positions_expected": expected_positions,
        "positions_arrived": arrivals.positions.samples.len(),
    });
    let settings = json!({
        "target": target, "streams": bench.streams, "orders": bench.orders, "rate": bench.rate,
    });
    written(results::write(
        &bench.common.out,
        "fanout",
        settings,
        &[&placing, &arrivals.statuses, &arrivals.positions],
        outcome,
    )?);
    Ok(())
}

/// The shipments of `orders` once fulfillment has dispatched them and tracking knows them.
async fn dispatched_shipments(operator: &Operator, orders: &[String]) -> Vec<ful::Shipment> {
    let bar = super::progress("wait for dispatch", orders.len());
    let found: Vec<Vec<ful::Shipment>> = futures::stream::iter(orders.iter().cloned())
        .map(|order_id| {
            let (mut fulfillment, bar) = (operator.fulfillment.clone(), bar.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    let request = ful::ListShipmentsRequest {
                        order_id: order_id.clone(),
                    };
                    if let Ok(listed) = fulfillment.list_shipments(request).await {
                        let shipments = listed.into_inner().shipments;
                        if !shipments.is_empty() {
                            bar.inc(1);
                            return shipments;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                bar.inc(1);
                Vec::new()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    bar.finish_and_clear();
    // Tracking learns shipments from the same events; give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    found.into_iter().flatten().collect()
}

pub async fn gps(bench: GpsBench) -> anyhow::Result<()> {
    let target = &bench.common.target;
    let mut operator = Operator::connect(target).await?;
    seed_world(&mut operator).await?;
    let run = run_id();
    // One order per courier, placed directly: the scenario measures ingest, not ordering.
    let mut order_ids = Vec::new();
    for n in 0..bench.couriers {
        let placed = operator
            .orders
            .place_order(ord::PlaceOrderRequest {
                user_id: format!("gps-{run}-{n}"),
                idempotency_key: format!("{run}-{n}"),
                lines: cart(0),
                shipping_address: Some(sample::berlin_address()),
                currency_code: "EUR".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        order_ids.extend(placed.order.map(|o| o.order_id));
    }
    let shipments: Arc<Vec<String>> = Arc::new(
        dispatched_shipments(&operator, &order_ids)
            .await
            .into_iter()
            .map(|s| s.shipment_id)
            .collect(),
    );
    anyhow::ensure!(!shipments.is_empty(), "no shipment was dispatched");
    let batch = bench.batch.max(1);
    let calls = (bench.rate * bench.duration.as_secs_f64() / batch as f64).ceil() as usize;
    println!(
        "gps: {} positions/s from {} couriers in batches of {batch} for {:?}, straight to tracking-svc",
        bench.rate,
        shipments.len(),
        bench.duration
    );
    let report = drive_at_rate("ReportPositions", calls, bench.rate / batch as f64, 256, {
        let (tracking, shipments) = (operator.tracking.clone(), shipments.clone());
        move |call: usize| {
            let mut tracking = tracking.clone();
            // Each call is the next courier's upload; couriers take turns, so each one uploads
            // every `couriers / calls per second` seconds, moving ~1 m east per fix.
            let (courier, round) = (call % shipments.len(), call / shipments.len());
            let uploaded = chrono::Utc::now();
            let positions = (0..batch)
                .map(|k| {
                    let step = (round * batch + k) as f64;
                    let age = chrono::Duration::milliseconds(100 * (batch - 1 - k) as i64);
                    trk::PositionReport {
                        device_id: format!("van-{courier}"),
                        shipment_id: shipments[courier].clone(),
                        point: Some(GeoPoint {
                            lat: 52.40,
                            lng: 13.30 + step * 0.000_015,
                        }),
                        recorded_at: Some(oms_platform::events::to_timestamp(uploaded - age)),
                        accuracy_m: 5.0,
                        speed_mps: 8.0,
                    }
                })
                .collect();
            async move {
                let answer = tracking
                    .report_positions(trk::ReportPositionsRequest {
                        positions,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| s.to_string())?
                    .into_inner();
                match answer.rejections.first() {
                    None => Ok(()),
                    Some(rejection) => Err(rejection.reason.clone()),
                }
            }
        }
    })
    .await;
    print(&report);
    let positions_per_s = report.throughput() * batch as f64;
    println!("{positions_per_s:.0} positions/s accepted");
    let outcome = json!({ "positions_per_s": positions_per_s, "p99_ms": report.ms(0.99) });
    let settings = json!({
        "target": target, "couriers": shipments.len(), "rate": bench.rate, "batch": batch,
        "duration_s": bench.duration.as_secs_f64(),
    });
    written(results::write(
        &bench.common.out,
        "gps",
        settings,
        &[&report],
        outcome,
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms::mesh::Protocol;

    #[test]
    fn delivery_latency_counts_from_the_event_time() {
        let past = std::time::SystemTime::now() - Duration::from_millis(250);
        let at = Timestamp::from(past);
        let latency = since(Some(&at));
        assert!(latency >= Duration::from_millis(250) && latency < Duration::from_secs(5));
        assert_eq!(since(None), Duration::ZERO);
    }

    #[test]
    fn protocols_parse_from_the_command_line() {
        use clap::ValueEnum;
        assert_eq!(Protocol::from_str("grpc-web", false), Ok(Protocol::GrpcWeb));
    }
}
