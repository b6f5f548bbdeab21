//! `oms bench`: load generators for the mesh, with latency percentiles from hdrhistogram.
//!
//! Each scenario drives a fixed number of requests through a fixed number of concurrent
//! workers and reports throughput, success rate and latency (p50/p90/p99/max).

mod gateway;
mod inventory;
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

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Reservations per second on one hot SKU and on spread SKUs (inventory-svc on PostgreSQL).
    Inventory(inventory::InventoryBench),
    /// GetOrder through the gateway vs straight to order-svc, in one run.
    Gateway(gateway::GatewayBench),
    /// Live stream delivery latency with 1k and 10k open streams (tracking-svc on PostgreSQL).
    Stream(stream::StreamBench),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Inventory(bench) => inventory::run(bench).await,
        Scenario::Stream(bench) => stream::run(bench).await,
        Scenario::Gateway(bench) => gateway::run(bench).await,
    }
}

/// How much load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Requests in all.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
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
    /// The first few failure messages.
    pub failures: Vec<String>,
}

impl Report {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{:<28} {:>7} req  {:>6.2}% ok  {:>9.0} ok/s   p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
            self.name,
            self.requests,
            100.0 * self.succeeded as f64 / self.requests.max(1) as f64,
            self.throughput(),
            self.ms(0.50),
            self.ms(0.90),
            self.ms(0.99),
            self.latency_us.max() as f64 / 1000.0,
        )
    }
}

/// Runs `operation(i)` for i in 0..requests with `concurrency` workers.
pub async fn drive<F, Fut>(name: &str, load: Load, operation: F) -> Report
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| {
            let next = next.clone();
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut latency = new_histogram();
                let (mut succeeded, mut failures) = (0usize, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= load.requests {
                        break;
                    }
                    let sent = Instant::now();
                    let result = operation(i).await;
                    let _ = latency.record(sent.elapsed().as_micros() as u64);
                    match result {
                        Ok(()) => succeeded += 1,
                        Err(error) if failures.len() < 5 => failures.push(error),
                        Err(_) => {}
                    }
                }
                (latency, succeeded, failures)
            })
        })
        .collect();
    let mut report = Report {
        name: name.to_owned(),
        requests: load.requests,
        succeeded: 0,
        elapsed: Duration::ZERO,
        latency_us: new_histogram(),
        failures: Vec::new(),
    };
    for worker in workers {
        if let Ok((latency, succeeded, failures)) = worker.await {
            let _ = report.latency_us.add(&latency);
            report.succeeded += succeeded;
            report.failures.extend(failures);
        }
    }
    report.elapsed = started.elapsed();
    report.failures.truncate(5);
    report
}

#[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail
fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}
