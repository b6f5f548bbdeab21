//! Fills in the delivery history's weather and traffic at dispatch, in the background: the
//! consumer writes a row as soon as a parcel leaves (no outside call inside its transaction),
//! and this task asks the sources afterwards. A source that fails or times out leaves the
//! values unknown, which the models handle; the row is not asked again.

use std::{sync::Arc, time::Duration};

use oms_eta_model::history::Weather;
use tokio_util::sync::CancellationToken;

use crate::{
    sources::{TrafficSource, WeatherSource},
    store::Store,
};

/// Rows asked about per round.
const BATCH: u64 = 100;

/// The configured sources (either may be absent).
#[derive(Clone, Default)]
pub struct Sources {
    /// Weather at the origin at dispatch.
    pub weather: Option<Arc<dyn WeatherSource>>,
    /// Traffic around the origin at dispatch.
    pub traffic: Option<Arc<dyn TrafficSource>>,
}

/// Asks the sources about each row not yet asked about; returns how many rows were done.
pub async fn enrich_once(store: &Store, sources: &Sources) -> Result<usize, String> {
    let rows = store.unenriched(BATCH).await.map_err(|e| e.to_string())?;
    for (row, origin) in &rows {
        let weather = match &sources.weather {
            Some(source) => source
                .weather(*origin, row.dispatched_at)
                .await
                .unwrap_or_else(|reason| {
                    tracing::debug!(shipment_id = %row.shipment_id, %reason, "no weather for the history");
                    Weather::default()
                }),
            None => Weather::default(),
        };
        let traffic = match &sources.traffic {
            Some(source) => source.traffic_index(*origin, row.dispatched_at).await.ok(),
            None => None,
        };
        store
            .save_conditions(&row.shipment_id, weather, traffic)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(rows.len())
}

/// Runs [`enrich_once`] every `interval` (at once again while there is a backlog).
pub async fn run(store: Store, sources: Sources, interval: Duration, shutdown: CancellationToken) {
    loop {
        let done = match enrich_once(&store, &sources).await {
            Ok(done) => done,
            Err(error) => {
                tracing::warn!(%error, "filling in the delivery history's conditions failed; retrying");
                0
            }
        };
        if done as u64 == BATCH {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
