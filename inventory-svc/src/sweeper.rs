//! The expiry sweeper: gives back what reservations and cart holds still hold after their TTL,
//! and forgets idempotency keys older than a week.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{reservations, store::Store};

/// How long stored idempotent results are kept.
const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// Sweeps every `interval` until `shutdown`.
pub async fn run(store: Store, interval: Duration, shutdown: CancellationToken) {
    let mut last_prune = tokio::time::Instant::now();
    loop {
        match reservations::due_for_expiry(&store, 200).await {
            Ok(due) => {
                for reservation_id in due {
                    if let Err(error) = reservations::expire(&store, &reservation_id).await {
                        tracing::warn!(%reservation_id, %error, "expiring a reservation failed; retrying");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "looking for expired reservations failed"),
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = tokio::time::Instant::now();
            if let Err(error) =
                oms_platform::idempotency::prune(&store.db, IDEMPOTENCY_RETENTION).await
            {
                tracing::warn!(%error, "pruning idempotency keys failed");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
