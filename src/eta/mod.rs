//! `oms eta`: delivery-time models offline — generate a history of the sample world, train a
//! model on a history, and score it against the distance/speed baseline on the latest 20%.

use std::{path::PathBuf, time::Instant};

use clap::{Args, Subcommand};

mod plots;
use oms_eta_model::{evaluate, history, model::DeliveryModel, simulate};
use oms_proto::tracking::v1::{
    ExportDeliveryHistoryRequest, tracking_service_client::TrackingServiceClient,
};

#[derive(Args, Debug)]
pub struct EtaArgs {
    #[command(subcommand)]
    command: EtaCommand,
}

#[derive(Subcommand, Debug)]
enum EtaCommand {
    /// Write a simulated year of deliveries in the sample world as a history CSV.
    Simulate {
        /// Deliveries to generate.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// The generator's seed (the same seed, the same year).
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Where to write the CSV.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a model on a history CSV.
    Train {
        /// The history (README: the CSV schema).
        #[arg(long)]
        history: PathBuf,
        /// Where to write the model (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Boosting rounds per ensemble.
        #[arg(long, default_value_t = 300)]
        iterations: usize,
    },
    /// Write tracking-svc's recorded delivery history as a history CSV.
    Export {
        /// tracking-svc's address.
        #[arg(
            long = "tracking-url",
            env = "OMS_TRACKING_URL",
            default_value = "http://127.0.0.1:50055"
        )]
        tracking_url: String,
        /// Only deliveries dispatched at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Where to write the CSV.
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a model and the distance/speed baseline on the latest 20% of a history.
    Evaluate {
        /// The history.
        #[arg(long)]
        history: PathBuf,
        /// A trained model; without one, a model is trained on the first 80%.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Boosting rounds when training here.
        #[arg(long, default_value_t = 300)]
        iterations: usize,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
        /// Also draw the plots (predicted vs actual, error by hour of the week) into this
        /// directory.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
}

pub async fn run(args: EtaArgs) -> anyhow::Result<()> {
    match args.command {
        EtaCommand::Export {
            tracking_url,
            since,
            out,
        } => {
            let since = since
                .map(|text| chrono::DateTime::parse_from_rfc3339(&text))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?
                .map(|at| oms_platform::events::to_timestamp(at.to_utc()));
            let mut tracking = TrackingServiceClient::connect(tracking_url.clone())
                .await
                .map_err(|e| anyhow::anyhow!("tracking-svc at {tracking_url}: {e}"))?;
            let exported = tracking
                .export_delivery_history(ExportDeliveryHistoryRequest { since, limit: 0 })
                .await?
                .into_inner();
            std::fs::write(&out, &exported.csv)?;
            eprintln!("{} deliveries written to {}", exported.rows, out.display());
        }
        EtaCommand::Simulate { rows, seed, out } => {
            let year = simulate::year(rows, seed);
            history::write(std::fs::File::create(&out)?, &year)?;
            eprintln!("{} deliveries written to {}", year.len(), out.display());
        }
        EtaCommand::Train {
            history,
            out,
            iterations,
        } => {
            let rows = history::read_file(&history)?;
            let began = Instant::now();
            let model = DeliveryModel::train(&rows, iterations)?;
            std::fs::write(&out, model.to_json()?)?;
            eprintln!(
                "trained on {} rows in {:.1?}; P90 factor {:.2}; model written to {}",
                model.info.trained_rows,
                began.elapsed(),
                model.info.p90_factor,
                out.display()
            );
        }
        EtaCommand::Evaluate {
            history,
            model,
            iterations,
            json,
            plots,
        } => {
            let rows = history::read_file(&history)?;
            let model = model
                .map(|path| -> anyhow::Result<DeliveryModel> {
                    Ok(DeliveryModel::from_json(&std::fs::read_to_string(path)?)?)
                })
                .transpose()?;
            let began = Instant::now();
            let figures = evaluate::evaluate(&rows, model.as_ref(), iterations)?;
            let took = began.elapsed();
            if let Some(dir) = plots {
                std::fs::create_dir_all(&dir)?;
                plots::predicted_vs_actual(
                    &dir.join("eta-predicted-vs-actual.svg"),
                    &figures.details,
                )?;
                plots::error_by_hour(&dir.join("eta-error-by-hour.svg"), &figures.details)?;
            }
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!(
                    "{} delivered rows, the latest {} held out",
                    figures.rows, figures.held_out
                );
                println!(
                    "{:<10} {:>10} {:>18} {:>14}",
                    "", "MAE (min)", "P90 |error| (min)", "P90 coverage"
                );
                for (name, scores) in [("model", figures.model), ("baseline", figures.baseline)] {
                    println!(
                        "{name:<10} {:>10.1} {:>18.1} {:>13.1}%",
                        scores.mae_min,
                        scores.p90_abs_err_min,
                        100.0 * scores.p90_coverage
                    );
                }
                println!(
                    "the model's MAE is {:.1}% lower than the baseline's",
                    100.0 * figures.mae_reduction()
                );
                println!("evaluated in {took:.1?} (training included when no --model)");
                let trained;
                let model = match model.as_ref() {
                    Some(model) => model,
                    None => {
                        trained = DeliveryModel::train(&rows, iterations)?;
                        &trained
                    }
                };
                println!(
                    "one prediction at a time: {:.1} µs (mean of {} held-out rows)",
                    time_one_prediction(model, &rows),
                    rows.len().min(PREDICTION_SAMPLE)
                );
            }
        }
    }
    Ok(())
}

/// Rows predicted one at a time to time a single prediction.
const PREDICTION_SAMPLE: usize = 2_000;

/// Mean time of one prediction (features included), µs.
fn time_one_prediction(model: &DeliveryModel, rows: &[oms_eta_model::history::Delivery]) -> f64 {
    let sample = &rows[rows.len().saturating_sub(PREDICTION_SAMPLE)..];
    let began = Instant::now();
    let mut total = 0.0;
    for row in sample {
        total += model.predict(row).p50_min;
    }
    std::hint::black_box(total);
    began.elapsed().as_secs_f64() * 1e6 / sample.len().max(1) as f64
}
