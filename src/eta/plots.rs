//! The evaluation's plots: predicted against actual duration, and the error by hour of the week.

use std::path::Path;

use oms_eta_model::evaluate::HeldOut;
use plotters::prelude::*;

/// Points drawn in the scatter (every n-th held-out delivery).
const SCATTER_POINTS: usize = 1_500;

fn draw_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("plot: {error:?}")
}

/// Predicted P50 (model and baseline) against actual duration, hours.
pub fn predicted_vs_actual(path: &Path, details: &[HeldOut]) -> anyhow::Result<()> {
    let hours = |minutes: f64| minutes / 60.0;
    let top = details
        .iter()
        .map(|d| hours(d.actual_min))
        .fold(24.0_f64, f64::max)
        .min(24.0 * 6.0);
    let root = SVGBackend::new(path, (900, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "held-out deliveries: predicted P50 against actual (hours)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..top, 0.0..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("actual (h)")
        .y_desc("predicted P50 (h)")
        .draw()
        .map_err(draw_error)?;
    let step = (details.len() / SCATTER_POINTS).max(1);
    let sample: Vec<&HeldOut> = details.iter().step_by(step).collect();
    for (index, (name, pick)) in [
        (
            "distance/speed baseline",
            (|d: &HeldOut| d.baseline.0) as fn(&HeldOut) -> f64,
        ),
        ("model", |d: &HeldOut| d.model.0),
    ]
    .into_iter()
    .enumerate()
    {
        let color = Palette99::pick(index).mix(0.45);
        chart
            .draw_series(
                sample
                    .iter()
                    .map(|d| Circle::new((hours(d.actual_min), hours(pick(d))), 2, color.filled())),
            )
            .map_err(draw_error)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (top, top)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw_error)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

/// Mean absolute error of the P50 by local hour of the week, model and baseline, hours.
pub fn error_by_hour(path: &Path, details: &[HeldOut]) -> anyhow::Result<()> {
    let mut sums = vec![(0.0, 0.0, 0usize); 168];
    for d in details {
        let slot = &mut sums[(d.hour_of_week as usize).min(167)];
        slot.0 += (d.actual_min - d.model.0).abs() / 60.0;
        slot.1 += (d.actual_min - d.baseline.0).abs() / 60.0;
        slot.2 += 1;
    }
    let series = |pick: fn(&(f64, f64, usize)) -> f64| -> Vec<(f64, f64)> {
        sums.iter()
            .enumerate()
            .filter(|(_, s)| s.2 > 0)
            .map(|(hour, s)| (hour as f64, pick(s) / s.2 as f64))
            .collect()
    };
    let model = series(|s| s.0);
    let baseline = series(|s| s.1);
    let top = model
        .iter()
        .chain(&baseline)
        .map(|p| p.1)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mean absolute error of the P50 by hour of the week (hours; 0 = Monday 00:00)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..168.0, 0.0..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("local hour of the week at the origin")
        .y_desc("MAE (h)")
        .draw()
        .map_err(draw_error)?;
    for (index, (name, points)) in [("distance/speed baseline", baseline), ("model", model)]
        .into_iter()
        .enumerate()
    {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}
