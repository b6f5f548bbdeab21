//! `oms bench`: load generators for the mesh, with latency percentiles from hdrhistogram.
//!
//! A scenario drives requests either closed-loop (a fixed number of workers, as fast as the
//! mesh answers) or open-loop (a fixed arrival rate; latency counts from when the request was
//! due, so a stalled mesh cannot hide its queue) and reports throughput, success rate and
//! latency (p50/p90/p99/max). The mobile scenarios also write a JSON result file and a
//! latency-over-time plot.

mod assistant;
mod catalog;
mod gateway;
mod inventory;
mod mobile;
mod results;
mod stream;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Steady orders at a target rate (or as fast as possible) from virtual mobile users.
    Orders(mobile::OrdersBench),
    /// N buyers at once for M units of one SKU: sold must equal stock, oversell zero.
    FlashSale(mobile::FlashSaleBench),
    /// K open Subscribe streams through the gateway while orders and courier GPS happen.
    Fanout(mobile::FanoutBench),
    /// Courier GPS positions per second into tracking-svc.
    Gps(mobile::GpsBench),
    /// Reservations per second on one hot SKU and on spread SKUs (inventory-svc on PostgreSQL).
    Inventory(inventory::InventoryBench),
    /// GetOrder through the gateway vs straight to order-svc, in one run.
    Gateway(gateway::GatewayBench),
    /// Live stream delivery latency with 1k and 10k open streams (tracking-svc on PostgreSQL).
    Stream(stream::StreamBench),
    /// Searches over a large generated catalog (catalog-svc on SQLite, in this process).
    Catalog(catalog::CatalogBench),
    /// Text turns of ordering conversations (assistant-svc and catalog-svc, in this process).
    Assistant(assistant::AssistantBench),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Orders(bench) => mobile::orders(bench).await,
        Scenario::FlashSale(bench) => mobile::flash_sale(bench).await,
        Scenario::Fanout(bench) => mobile::fanout(bench).await,
        Scenario::Gps(bench) => mobile::gps(bench).await,
        Scenario::Inventory(bench) => inventory::run(bench).await,
        Scenario::Stream(bench) => stream::run(bench).await,
        Scenario::Gateway(bench) => gateway::run(bench).await,
        Scenario::Catalog(bench) => catalog::run(bench).await,
        Scenario::Assistant(bench) => assistant::run(bench).await,
    }
}

/// How much load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests in all.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Workers take no new request after this.
    pub until: Option<Instant>,
}

/// One request: when it was due (ms since the run started) and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at_ms: u32,
    pub latency_us: u32,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Requests sent.
    pub requests: usize,
    /// Requests that succeeded.
    pub succeeded: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latency of every request, microseconds.
    pub latency_us: Histogram<u64>,
    /// Every request in time, for the plot.
    pub samples: Vec<Sample>,
    /// The first few failure messages.
    pub failures: Vec<String>,
}

impl Default for Report {
    fn default() -> Self {
        Self::new("", 0)
    }
}

impl Report {
    fn new(name: &str, requests: usize) -> Self {
        Self {
            name: name.to_owned(),
            requests,
            succeeded: 0,
            elapsed: Duration::ZERO,
            latency_us: new_histogram(),
            samples: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Share of requests that succeeded, 0..=1.
    pub fn success_rate(&self) -> f64 {
        self.succeeded as f64 / self.requests.max(1) as f64
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{:<28} {:>7} req  {:>6.2}% ok  {:>9.0} ok/s   p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
            self.name,
            self.requests,
            100.0 * self.success_rate(),
            self.throughput(),
            self.ms(0.50),
            self.ms(0.90),
            self.ms(0.99),
            self.latency_us.max() as f64 / 1000.0,
        )
    }

    fn record(&mut self, at: Duration, latency: Duration, result: Result<(), String>) {
        let latency_us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
        let _ = self.latency_us.record(u64::from(latency_us).max(1));
        self.samples.push(Sample {
            at_ms: at.as_millis().min(u128::from(u32::MAX)) as u32,
            latency_us,
        });
        match result {
            Ok(()) => self.succeeded += 1,
            Err(error) if self.failures.len() < 5 => self.failures.push(error),
            Err(_) => {}
        }
    }

    fn absorb(&mut self, other: Report) {
        let _ = self.latency_us.add(&other.latency_us);
        self.succeeded += other.succeeded;
        self.samples.extend(other.samples);
        self.failures.extend(other.failures);
        self.failures.truncate(5);
    }
}

/// A progress bar on the terminal (nothing when output is not a terminal).
pub fn progress(name: &str, length: usize) -> ProgressBar {
    let bar = ProgressBar::new(length as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:<28} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(name.to_owned());
    bar
}

/// Runs `operation(i)` for i in 0..requests with `concurrency` workers (closed loop).
pub async fn drive<F, Fut>(name: &str, load: Load, operation: F) -> Report
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let bar = progress(name, load.requests);
    let started = Instant::now();
    let workers: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| {
            let (next, operation, bar) = (next.clone(), operation.clone(), bar.clone());
            tokio::spawn(async move {
                let mut report = Report::new("", 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= load.requests || load.until.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    let sent = Instant::now();
                    let result = operation(i).await;
                    report.record(sent - started, sent.elapsed(), result);
                    bar.inc(1);
                }
                report
            })
        })
        .collect();
    let mut report = Report::new(name, 0);
    for worker in workers {
        if let Ok(part) = worker.await {
            report.absorb(part);
        }
    }
    report.requests = report.samples.len();
    report.elapsed = started.elapsed();
    bar.finish_and_clear();
    report
}

/// Starts `operation(i)` for i in 0..requests at `rate` per second (open loop), at most
/// `max_in_flight` at once. Latency counts from when each request was due.
pub async fn drive_at_rate<F, Fut>(
    name: &str,
    requests: usize,
    rate: f64,
    max_in_flight: usize,
    operation: F,
) -> Report
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let bar = progress(name, requests);
    let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let interval = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (operation, bar) = (operation.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let result = operation(i).await;
            let latency = due.elapsed();
            drop(permit);
            bar.inc(1);
            (due - started, latency, result)
        }));
    }
    let mut report = Report::new(name, requests);
    for task in tasks {
        if let Ok((at, latency, result)) = task.await {
            report.record(at, latency, result);
        }
    }
    report.elapsed = started.elapsed();
    bar.finish_and_clear();
    report
}

#[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail
fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}
