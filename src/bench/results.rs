//! What a mobile scenario leaves behind: `<scenario>.json` with the figures and the run's
//! settings, and `<scenario>.svg`, latency over time (p50 and p99 per time slice) of each
//! measured call, for people to look at.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;
use serde_json::{Value, json};

use super::Report;

/// Writes the JSON result file and the plot; returns their paths.
pub fn write(
    dir: &Path,
    scenario: &str,
    settings: Value,
    reports: &[&Report],
    outcome: Value,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json_path = dir.join(format!("{scenario}.json"));
    let document = json!({
        "scenario": scenario,
        "finished_at": chrono::Utc::now().to_rfc3339(),
        "machine": machine(),
        "settings": settings,
        "calls": reports.iter().map(|report| summary(report)).collect::<Vec<_>>(),
        "outcome": outcome,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&document)?)
        .with_context(|| format!("write {}", json_path.display()))?;
    let plot_path = dir.join(format!("{scenario}.svg"));
    plot(&plot_path, scenario, reports)?;
    Ok((json_path, plot_path))
}

fn summary(report: &Report) -> Value {
    json!({
        "name": report.name,
        "requests": report.requests,
        "succeeded": report.succeeded,
        "success_rate": report.success_rate(),
        "throughput_per_s": report.throughput(),
        "elapsed_s": report.elapsed.as_secs_f64(),
        "latency_ms": {
            "p50": report.ms(0.50),
            "p90": report.ms(0.90),
            "p99": report.ms(0.99),
            "p999": report.ms(0.999),
            "max": report.latency_us.max() as f64 / 1000.0,
            "mean": report.latency_us.mean() / 1000.0,
        },
        "failures": report.failures,
    })
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default();
    json!({ "cores": cores, "cpu": cpu, "os": std::env::consts::OS })
}

/// Per time slice: (slice start in seconds, p50 ms, p99 ms).
fn percentiles_over_time(report: &Report, slice_ms: u32) -> Vec<(f64, f64, f64)> {
    let mut slices: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for sample in &report.samples {
        slices
            .entry(sample.at_ms / slice_ms)
            .or_default()
            .push(sample.latency_us);
    }
    slices
        .into_iter()
        .map(|(slice, mut latencies)| {
            latencies.sort_unstable();
            let at = |q: f64| {
                let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
                f64::from(latencies[index.min(latencies.len() - 1)]) / 1000.0
            };
            (f64::from(slice * slice_ms) / 1000.0, at(0.50), at(0.99))
        })
        .collect()
}

fn plot(path: &Path, scenario: &str, reports: &[&Report]) -> anyhow::Result<()> {
    let longest_ms = reports
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.at_ms))
        .max()
        .unwrap_or(1000);
    // About 60 points per line, at least 100 ms per slice.
    let slice_ms = (longest_ms / 60).max(100);
    let series: Vec<_> = reports
        .iter()
        .map(|report| (report.name.clone(), percentiles_over_time(report, slice_ms)))
        .collect();
    let x_max = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max)
        + f64::from(slice_ms) / 1000.0;
    let y_max = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.2))
        .fold(1.0_f64, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("plot: {e:?}");
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("oms bench {scenario}: latency over time (p50 solid, p99 dashed)"),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("latency (ms)")
        .draw()
        .map_err(draw)?;
    for (index, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(draw)?
            .label(format!("{name} p50"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(DashedLineSeries::new(
                points.iter().map(|p| (p.0, p.2)),
                6,
                4,
                color.stroke_width(2),
            ))
            .map_err(draw)?
            .label(format!("{name} p99"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::Sample;

    #[test]
    fn each_time_slice_gets_its_own_median_and_p99() {
        let mut report = Report::new("calls", 0);
        // First second: 1..=100 ms; second second: a flat 5 ms.
        for ms in 1..=100u32 {
            report.samples.push(Sample {
                at_ms: ms * 9,
                latency_us: ms * 1000,
            });
            report.samples.push(Sample {
                at_ms: 1000 + ms,
                latency_us: 5000,
            });
        }
        let slices = percentiles_over_time(&report, 1000);
        assert_eq!(slices, vec![(0.0, 50.0, 99.0), (1.0, 5.0, 5.0)]);
    }

    #[test]
    fn the_result_file_and_the_plot_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = Report::new("PlaceOrder", 2);
        report.record(Duration::ZERO, Duration::from_millis(3), Ok(()));
        report.record(
            Duration::from_millis(500),
            Duration::from_millis(7),
            Err("refused".into()),
        );
        let (json_path, plot_path) = write(
            dir.path(),
            "orders",
            json!({ "rate": 2 }),
            &[&report],
            json!({ "sold": 1 }),
        )
        .unwrap();
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
        assert_eq!(written["calls"][0]["succeeded"], 1);
        assert_eq!(written["calls"][0]["success_rate"], 0.5);
        assert_eq!(written["outcome"]["sold"], 1);
        let svg = std::fs::read_to_string(plot_path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("PlaceOrder p99"),
            "{svg:.200}"
        );
    }
}
