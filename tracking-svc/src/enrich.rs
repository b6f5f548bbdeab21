//! Fills in what was true at each dispatch, in the background: the consumer writes a row as
//! soon as a parcel leaves (no outside call, no extra statement inside its transaction), and
//! this task adds the weather and traffic (asking the sources), the destination's public
//! holiday (from the calendar) and the center's load (its dispatches of the 24 hours before
//! over its daily capacity) afterwards. A source that fails or times out leaves the values
//! unknown, which the models handle; the row is not asked again.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use chrono::Duration as Span;
use oms_eta_model::{history::Weather, holidays::HolidayCalendar};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::history::dispatches_in_day_before,
    sources::{TrafficSource, WeatherSource},
    store::{Store, history::Conditions},
};

/// Rows asked about per round.
const BATCH: u64 = 100;

/// The configured sources (any may be absent).
#[derive(Clone, Default)]
pub struct Sources {
    /// Weather at the origin at dispatch.
    pub weather: Option<Arc<dyn WeatherSource>>,
    /// Traffic around the origin at dispatch.
    pub traffic: Option<Arc<dyn TrafficSource>>,
    /// Public holidays at the destination.
    pub holidays: Option<Arc<HolidayCalendar>>,
}

/// Fills in the rows not done yet (a batch): the sources are asked row by row, the database
/// is read and written a few statements per batch. Returns how many rows were done.
pub async fn enrich_once(store: &Store, sources: &Sources) -> Result<usize, String> {
    let rows = store.unenriched(BATCH).await.map_err(|e| e.to_string())?;
    let (Some(first), Some(last)) = (
        rows.iter().map(|(row, _)| row.dispatched_at).min(),
        rows.iter().map(|(row, _)| row.dispatched_at).max(),
    ) else {
        return Ok(0);
    };
    let centers: BTreeSet<&str> = rows.iter().map(|(row, _)| row.center_id.as_str()).collect();
    let dispatches = store
        .dispatch_times(&centers, first - Span::hours(24), last)
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Vec::with_capacity(rows.len());
    for (row, center) in rows {
        let origin = (center.lat, center.lng);
        let weather = match &sources.weather {
            Some(source) => source
                .weather(origin, row.dispatched_at)
                .await
                .unwrap_or_else(|reason| {
                    tracing::debug!(shipment_id = %row.shipment_id, %reason, "no weather for the history");
                    Weather::default()
                }),
            None => Weather::default(),
        };
        let traffic_index = match &sources.traffic {
            Some(source) => source.traffic_index(origin, row.dispatched_at).await.ok(),
            None => None,
        };
        let holiday = sources.holidays.as_ref().and_then(|calendar| {
            calendar.holiday_at(&row.dest_country, row.dest_lng, row.dispatched_at)
        });
        let center_load = (center.daily_capacity > 0).then(|| {
            let before = dispatches.get(&row.center_id).map_or(0, |times| {
                dispatches_in_day_before(times, row.dispatched_at)
            });
            before as f64 / f64::from(center.daily_capacity)
        });
        let conditions = Conditions {
            weather,
            traffic_index,
            holiday,
            center_load,
        };
        done.push((row, conditions));
    }
    let count = done.len();
    store
        .save_conditions(done)
        .await
        .map_err(|e| e.to_string())?;
    Ok(count)
}

/// Fills in every row waiting, then again each time the history is `written` (told after the
/// recording transaction committed; `settle` later, so the rows of a busy moment go together);
/// nothing runs while no parcel leaves.
pub async fn run(
    store: Store,
    sources: Sources,
    settle: Duration,
    written: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let caught_up = loop {
            match enrich_once(&store, &sources).await {
                Ok(done) if done as u64 == BATCH => continue,
                Ok(_) => break true,
                Err(error) => {
                    tracing::warn!(%error, "filling in the delivery history's conditions failed; retrying");
                    break false;
                }
            }
        };
        if caught_up {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = written.notified() => {}
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settle) => {}
        }
    }
}
