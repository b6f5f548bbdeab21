//! Fan-out to the open streams of this process. Durable items (status changes, alerts) queue
//! per subscriber and are never dropped — a subscriber that falls hopelessly behind is cut off
//! and resumes from its cursor; positions, ETAs and stock levels keep only the latest per key
//! (conflation under back-pressure).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use oms_proto::tracking::v1::LiveUpdate;
use tokio::sync::Notify;

/// Durable items a subscriber may have waiting before it is cut off.
const MAX_BACKLOG: usize = 10_000;

/// One open stream.
pub struct Subscriber {
    id: u64,
    user_id: String,
    skus: Vec<String>,
    pending: Mutex<Pending>,
    /// Signalled when something is pending.
    pub wake: Notify,
}

#[derive(Default)]
struct Pending {
    durable: VecDeque<LiveUpdate>,
    latest: BTreeMap<String, LiveUpdate>,
    overflowed: bool,
}

/// What a subscriber has to send.
#[derive(Default)]
pub struct Batch {
    /// In order, all of them.
    pub durable: Vec<LiveUpdate>,
    /// The latest per key.
    pub latest: Vec<LiveUpdate>,
    /// The backlog overflowed: the stream must end so the app resumes from its cursor.
    pub overflowed: bool,
}

impl Subscriber {
    /// Takes everything pending.
    pub fn take(&self) -> Batch {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        Batch {
            durable: pending.durable.drain(..).collect(),
            latest: std::mem::take(&mut pending.latest).into_values().collect(),
            overflowed: std::mem::take(&mut pending.overflowed),
        }
    }

    fn push_durable(&self, update: LiveUpdate) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.durable.len() >= MAX_BACKLOG {
            pending.overflowed = true;
        } else {
            pending.durable.push_back(update);
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn push_latest(&self, key: &str, update: LiveUpdate) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest
            .insert(key.to_owned(), update);
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Registry {
    by_user: HashMap<String, Vec<Arc<Subscriber>>>,
    by_sku: HashMap<String, Vec<Arc<Subscriber>>>,
}

/// The subscribers of this process.
#[derive(Default)]
pub struct Hub {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
}

impl Hub {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a subscription for a user, watching `skus`.
    pub fn subscribe(&self, user_id: &str, skus: Vec<String>) -> Arc<Subscriber> {
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user_id: user_id.to_owned(),
            skus,
            pending: Mutex::default(),
            wake: Notify::new(),
        });
        let mut registry = self.registry();
        registry
            .by_user
            .entry(user_id.to_owned())
            .or_default()
            .push(subscriber.clone());
        for sku in &subscriber.skus {
            registry
                .by_sku
                .entry(sku.clone())
                .or_default()
                .push(subscriber.clone());
        }
        subscriber
    }

    /// Closes a subscription.
    pub fn unsubscribe(&self, subscriber: &Subscriber) {
        let mut registry = self.registry();
        let keep = |list: &mut Vec<Arc<Subscriber>>| list.retain(|s| s.id != subscriber.id);
        if let Some(list) = registry.by_user.get_mut(&subscriber.user_id) {
            keep(list);
            if list.is_empty() {
                registry.by_user.remove(&subscriber.user_id);
            }
        }
        for sku in &subscriber.skus {
            if let Some(list) = registry.by_sku.get_mut(sku) {
                keep(list);
                if list.is_empty() {
                    registry.by_sku.remove(sku);
                }
            }
        }
    }

    fn of_user(&self, user_id: &str) -> Vec<Arc<Subscriber>> {
        self.registry()
            .by_user
            .get(user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// A durable item for a user's streams.
    pub fn durable(&self, user_id: &str, update: &LiveUpdate) {
        for subscriber in self.of_user(user_id) {
            subscriber.push_durable(update.clone());
        }
    }

    /// A conflatable item for a user's streams: only the latest per `key` is kept.
    pub fn latest(&self, user_id: &str, key: &str, update: &LiveUpdate) {
        for subscriber in self.of_user(user_id) {
            subscriber.push_latest(key, update.clone());
        }
    }

    /// A stock change for the streams watching `sku`.
    pub fn stock(&self, sku: &str, update: &LiveUpdate) {
        let watching = self.registry().by_sku.get(sku).cloned().unwrap_or_default();
        for subscriber in watching {
            subscriber.push_latest(&format!("stock:{sku}"), update.clone());
        }
    }

    /// Open streams.
    pub fn open_streams(&self) -> usize {
        self.registry().by_user.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(cursor: &str) -> LiveUpdate {
        LiveUpdate {
            cursor: cursor.into(),
            ..Default::default()
        }
    }

    #[test]
    fn users_get_only_their_own_items_durable_ones_all_and_in_order_positions_conflated() {
        let hub = Hub::default();
        let ada = hub.subscribe("ada", vec!["A".into()]);
        let bob = hub.subscribe("bob", Vec::new());
        hub.durable("ada", &update("1"));
        hub.latest("ada", "position:s1", &update("p1"));
        hub.latest("ada", "position:s1", &update("p2"));
        hub.durable("ada", &update("2"));
        hub.stock("A", &update("stock"));
        hub.stock("B", &update("other"));
        let batch = ada.take();
        assert_eq!(
            batch
                .durable
                .iter()
                .map(|u| u.cursor.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(
            batch
                .latest
                .iter()
                .map(|u| u.cursor.as_str())
                .collect::<Vec<_>>(),
            ["p2", "stock"]
        );
        assert!(bob.take().durable.is_empty());
        hub.unsubscribe(&ada);
        hub.durable("ada", &update("3"));
        assert!(ada.take().durable.is_empty());
        assert_eq!(hub.open_streams(), 1);
    }

    #[test]
    fn a_hopeless_backlog_cuts_the_subscriber_off() {
        let hub = Hub::default();
        let ada = hub.subscribe("ada", Vec::new());
        for i in 0..=MAX_BACKLOG {
            hub.durable("ada", &update(&i.to_string()));
        }
        assert!(ada.take().overflowed);
    }
}
