//! What a service knows about stock without asking inventory: per SKU and location the units
//! available and the level's version, kept fresh by inventory's `level_changed` events and by
//! what inventory answers (a full read of a SKU, the levels a reservation left). A report only
//! counts if it is newer than what the view has (level versions only grow), so a late, older
//! report never overwrites a fresher one.
//!
//! Inventory stays the authority; the view may only be late. It speaks about a SKU only when
//! it has been told all of its levels (a full read) recently enough, and it forgets everything
//! when its event subscription breaks (what it missed meanwhile cannot be known).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use futures::StreamExt;
use oms_proto::{events::v1::envelope::Payload, inventory::v1::StockLevel};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::{Area, ConsumerSpec, EventBus};

/// A level as the view knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    available: i64,
    version: i64,
}

#[derive(Debug, Default)]
struct Sku {
    levels: BTreeMap<String, Level>,
    /// When a full read last told every level (`None`: only heard of some).
    complete_at: Option<Instant>,
}

/// Stock availability as last heard.
#[derive(Debug)]
pub struct StockView {
    skus: RwLock<HashMap<String, Sku>>,
    /// Since when level events have been followed without a break (`None`: not now). Only
    /// full reads made since count: events keep them fresh.
    live_since: RwLock<Option<Instant>>,
    /// A full read is trusted this long; after it the SKU is read again.
    trust_for: Duration,
    changed: Notify,
}

/// SKUs kept before stale ones are dropped.
const KEEP: usize = 10_000;

impl StockView {
    /// An empty view that trusts a full read of a SKU for `trust_for` (events keep it fresh
    /// meanwhile; the limit bounds how long a missed event could mislead it).
    pub fn new(trust_for: Duration) -> Self {
        Self {
            skus: RwLock::default(),
            live_since: RwLock::default(),
            trust_for,
            changed: Notify::new(),
        }
    }

    /// Whether a full read made now would be kept fresh by events.
    pub fn is_live(&self) -> bool {
        self.live_since
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Level events are followed from now on (`true`) or no longer (`false`: everything known
    /// is forgotten).
    pub fn set_live(&self, live: bool) {
        *self
            .live_since
            .write()
            .unwrap_or_else(PoisonError::into_inner) = live.then(Instant::now);
        if !live {
            self.clear();
        }
    }

    /// Takes one level report for a SKU the view follows, unless it knows a newer state of
    /// that level.
    pub fn learn(&self, level: &StockLevel) {
        let mut skus = self.skus.write().unwrap_or_else(PoisonError::into_inner);
        let Some(sku) = skus.get_mut(&level.sku) else {
            return;
        };
        if Self::merge(sku, level) {
            drop(skus);
            self.changed.notify_waiters();
        }
    }

    /// Takes a full read of `sku`, made after [`StockView::is_live`] said true: these are all
    /// of its levels.
    pub fn learn_all(&self, sku: &str, levels: &[StockLevel]) {
        let mut skus = self.skus.write().unwrap_or_else(PoisonError::into_inner);
        if skus.len() >= KEEP {
            let trust_for = self.trust_for;
            skus.retain(|_, s| s.complete_at.is_some_and(|at| at.elapsed() < trust_for));
        }
        let entry = skus.entry(sku.to_owned()).or_default();
        for level in levels {
            Self::merge(entry, level);
        }
        entry.complete_at = Some(Instant::now());
        drop(skus);
        self.changed.notify_waiters();
    }

    fn merge(sku: &mut Sku, level: &StockLevel) -> bool {
        let newer = Level {
            available: level.available,
            version: level.version,
        };
        match sku.levels.get(&level.location_id) {
            Some(known) if known.version >= newer.version => false,
            _ => {
                sku.levels.insert(level.location_id.clone(), newer);
                true
            }
        }
    }

    /// Units of `sku` available across its locations — `None` when the view cannot say (it
    /// was never told all levels, or not recently enough).
    pub fn available(&self, sku: &str) -> Option<i64> {
        let live_since = (*self
            .live_since
            .read()
            .unwrap_or_else(PoisonError::into_inner))?;
        let skus = self.skus.read().unwrap_or_else(PoisonError::into_inner);
        let known = skus.get(sku)?;
        let trusted = known
            .complete_at
            .is_some_and(|at| at >= live_since && at.elapsed() < self.trust_for);
        trusted.then(|| known.levels.values().map(|l| l.available.max(0)).sum())
    }

    /// Forgets `sku` (stock was given back through this service: the next answer comes from
    /// inventory).
    pub fn forget(&self, sku: &str) {
        self.skus
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sku);
        self.changed.notify_waiters();
    }

    /// Forgets everything (events may have been missed).
    pub fn clear(&self) {
        self.skus
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.changed.notify_waiters();
    }

    /// Resolves at the next change of what the view knows.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Keeps `view` fresh from inventory's level events until `shutdown`: a consumer of its own
/// from now on (every replica listens). Whenever the subscription breaks the view is
/// cleared, since what happened meanwhile is unknown.
pub async fn follow(bus: Arc<dyn EventBus>, view: Arc<StockView>, shutdown: CancellationToken) {
    let spec = ConsumerSpec::live(Area::Inventory).with_filter("oms.inventory.*.level_changed");
    while !shutdown.is_cancelled() {
        let mut deliveries = match bus.consume(spec.clone()).await {
            Ok(stream) => {
                view.set_live(true);
                stream
            }
            Err(error) => {
                tracing::warn!(%error, "stock view cannot follow level events; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = deliveries.next() => next,
            };
            let Some(Ok(delivery)) = next else { break };
            if let Some(Payload::StockLevelChanged(changed)) = &delivery.envelope.payload
                && let Some(level) = &changed.level
            {
                view.learn(level);
            }
            // Nothing durable depends on it; the acknowledgement only frees the bus.
            let _ = delivery.ack().await;
        }
        view.set_live(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(sku: &str, location: &str, available: i64, version: i64) -> StockLevel {
        StockLevel {
            sku: sku.into(),
            location_id: location.into(),
            available,
            version,
            ..Default::default()
        }
    }

    fn live_view(trust_for: Duration) -> StockView {
        let view = StockView::new(trust_for);
        view.set_live(true);
        view
    }

    #[test]
    fn a_sku_is_spoken_for_only_after_a_full_read() {
        let view = live_view(Duration::from_secs(60));
        view.learn(&level("CAP", "munich", 3, 1));
        assert_eq!(view.available("CAP"), None, "other locations may hold some");
        view.learn_all(
            "CAP",
            &[level("CAP", "munich", 3, 1), level("CAP", "hamburg", 2, 7)],
        );
        assert_eq!(view.available("CAP"), Some(5));
        view.forget("CAP");
        assert_eq!(view.available("CAP"), None);
    }

    #[test]
    fn an_older_report_never_overwrites_a_newer_one() {
        let view = live_view(Duration::from_secs(60));
        view.learn_all("CAP", &[level("CAP", "munich", 0, 9)]);
        view.learn(&level("CAP", "munich", 4, 8));
        assert_eq!(view.available("CAP"), Some(0));
        view.learn(&level("CAP", "munich", 1, 10));
        assert_eq!(view.available("CAP"), Some(1));
    }

    #[test]
    fn a_full_read_is_trusted_only_for_a_while() {
        let view = live_view(Duration::ZERO);
        view.learn_all("CAP", &[level("CAP", "munich", 0, 1)]);
        assert_eq!(view.available("CAP"), None);
    }

    #[test]
    fn without_level_events_nothing_is_known() {
        let view = live_view(Duration::from_secs(60));
        view.learn_all("CAP", &[level("CAP", "munich", 0, 1)]);
        assert_eq!(view.available("CAP"), Some(0));
        view.set_live(false);
        assert_eq!(view.available("CAP"), None);
        view.set_live(true);
        assert_eq!(
            view.available("CAP"),
            None,
            "read before the events were followed"
        );
    }
}
