//! Looks up earlier placements by (user, idempotency key) for many callers at once. A cart
//! the stock gate refuses may be the retry of an order placed before the SKU sold out, so each
//! refusal checks for one — and when a crowd is told "sold out" at the same moment, one query
//! answers all of them instead of one query each.

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::OrderError,
    store::{Store, StoredOrder},
};

/// Lookups answered by one query at most.
const BATCH: usize = 500;

type Answer = oneshot::Sender<Result<Option<StoredOrder>, String>>;

/// Asks the lookup task.
#[derive(Clone)]
pub struct Replays {
    requests: mpsc::Sender<((String, String), Answer)>,
}

impl Replays {
    /// Starts the lookup task on `store` until `shutdown`.
    pub fn start(store: Store, shutdown: CancellationToken) -> (Self, impl Future<Output = ()>) {
        let (requests, incoming) = mpsc::channel(4 * BATCH);
        (Self { requests }, answer(store, incoming, shutdown))
    }

    /// The order `user_id` placed with `key`, if any.
    pub async fn find(&self, user_id: &str, key: &str) -> Result<Option<StoredOrder>, OrderError> {
        let (answer, answered) = oneshot::channel();
        let request = ((user_id.to_owned(), key.to_owned()), answer);
        let gone = || OrderError::Conflict("the service is shutting down; retry".into());
        self.requests.send(request).await.map_err(|_| gone())?;
        answered
            .await
            .map_err(|_| gone())?
            .map_err(|reason| OrderError::Db(sea_orm::DbErr::Custom(reason)))
    }
}

/// Takes whatever lookups are waiting, up to a batch, and answers them with one query.
async fn answer(
    store: Store,
    mut incoming: mpsc::Receiver<((String, String), Answer)>,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            first = incoming.recv() => first,
        };
        let Some(first) = first else { return };
        let mut waiting = vec![first];
        while waiting.len() < BATCH {
            match incoming.try_recv() {
                Ok(next) => waiting.push(next),
                Err(_) => break,
            }
        }
        let keys: Vec<(String, String)> = waiting.iter().map(|(key, _)| key.clone()).collect();
        match store.by_keys(&keys).await {
            Ok(mut found) => {
                for (key, answer) in waiting {
                    let _ = answer.send(Ok(found.remove(&key)));
                }
            }
            Err(error) => {
                let reason = error.to_string();
                for (_, answer) in waiting {
                    let _ = answer.send(Err(reason.clone()));
                }
            }
        }
    }
}
