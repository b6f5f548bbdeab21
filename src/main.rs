//! `oms`: one binary for the whole OMS mesh.
//!
//! * `oms` / `oms dev` — the gateway and the four services in one process, on SQLite files
//!   under `./.oms/` and the in-process bus (or NATS with `--nats-url`).
//! * `oms serve <gateway|order|inventory|fulfillment|tracking|catalog|assistant>` — one service, configured by
//!   flags and `OMS_*` variables (one Kubernetes Deployment each).
//! * `oms token` — a development access token for the gateway (dev key only).
//! * `oms bench <scenario>` — load generators with latency percentiles.
//! * `oms eta …`, `oms recommend evaluate` — the learned models, offline.

mod assistant;
mod bench;
mod dev;
mod eta;
mod recommend;
mod serve;
mod token;

use clap::{Parser, Subcommand};
use oms_platform::config::{MetricsArgs, TelemetryArgs};

// Every request allocates and frees many small buffers (protobuf, HTTP/2 frames, SQL rows) on
// whichever worker thread runs it: glibc's allocator spent a sixth of order-svc's CPU on that
// under load (perf, docs/performance.md); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mobile order-management mesh.
#[derive(Parser, Debug)]
#[command(name = "oms", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway and all four services in one process (the default).
    Dev(dev::DevArgs),
    /// Run one service, as a Kubernetes Deployment does.
    Serve(Box<serve::ServeArgs>),
    /// Load-test the mesh and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Mint a development access token from the local dev key (never for production).
    Token(token::TokenArgs),
    /// Delivery-time models offline: simulate a history, train, evaluate against the baseline.
    Eta(eta::EtaArgs),
    /// Recommendations offline: evaluate against a popularity list on a simulated year.
    Recommend(recommend::RecommendArgs),
    /// The ordering assistant's language understanding, offline: evaluate on labelled utterances.
    Assistant(assistant::AssistantArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    oms_platform::telemetry::init(&cli.telemetry)?;
    match cli.command {
        Some(Command::Serve(args)) => serve::run(*args, &cli.metrics).await,
        Some(Command::Dev(args)) => dev::run(args, &cli.metrics).await,
        Some(Command::Bench(args)) => bench::run(args).await,
        Some(Command::Token(args)) => token::run(&args),
        Some(Command::Eta(args)) => eta::run(args).await,
        Some(Command::Recommend(args)) => recommend::run(args).await,
        Some(Command::Assistant(args)) => assistant::run(args),
        None => dev::run(dev::DevArgs::from_env(), &cli.metrics).await,
    }
}
