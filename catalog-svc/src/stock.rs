//! Stock and centers as inventory's and fulfillment's events tell them, so that no search asks
//! another service (the live subscription also carries order events to [`Tastes`]). Every replica keeps them in memory: loaded from the catalog's tables at
//! start, then fed by a live subscription of its own (every level change, on every replica)
//! and by the durable consumer that keeps the tables (events from before the start). Each
//! level keeps its newest version, so the same report arriving twice, or late, changes
//! nothing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use futures::{StreamExt, stream::BoxStream};
use oms_platform::{
    bus::{BusError, Delivery, EventBus},
    consumer::{EventHandler, HandlerError},
};
use oms_proto::{
    events::v1::{Envelope, envelope::Payload},
    fulfillment::v1::FulfillmentCenter,
    inventory::v1::StockLevel,
};
use sea_orm::DatabaseTransaction;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::delivery,
    store::Store,
    tastes::{self, Tastes},
};

/// One level: units available and its version.
type Level = (i64, i64);

/// Where stock is and where centers deliver.
#[derive(Debug, Default)]
pub struct Availability {
    levels: RwLock<HashMap<String, BTreeMap<String, Level>>>,
    centers: RwLock<HashMap<String, FulfillmentCenter>>,
}

impl Availability {
    /// Takes a level report unless a newer one is known.
    pub fn learn_level(&self, sku: &str, location: &str, available: i64, version: i64) {
        let mut levels = self.levels.write().unwrap_or_else(PoisonError::into_inner);
        let of_sku = levels.entry(sku.to_owned()).or_default();
        match of_sku.get(location) {
            Some((_, known)) if *known >= version => {}
            _ => {
                of_sku.insert(location.to_owned(), (available, version));
            }
        }
    }

    /// Takes what a center now is.
    pub fn learn_center(&self, center: FulfillmentCenter) {
        self.centers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(center.center_id.clone(), center);
    }

    /// Takes what an event says (levels and centers; other events say nothing here).
    pub fn learn(&self, event: &Envelope) {
        let (levels, centers) = facts(event);
        for level in levels {
            self.learn_level(
                &level.sku,
                &level.location_id,
                level.available,
                level.version,
            );
        }
        for center in centers {
            self.learn_center(center);
        }
    }

    /// Units of `sku` available across locations.
    pub fn available(&self, sku: &str) -> i64 {
        self.levels
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sku)
            .map_or(0, |of_sku| of_sku.values().map(|(a, _)| (*a).max(0)).sum())
    }

    /// The fastest transit to `point` from a center holding `sku`, hours.
    pub fn soonest(&self, sku: &str, point: (f64, f64)) -> Option<f64> {
        let levels = self.levels.read().unwrap_or_else(PoisonError::into_inner);
        let available: BTreeMap<String, i64> = levels
            .get(sku)?
            .iter()
            .map(|(location, (a, _))| (location.clone(), *a))
            .collect();
        drop(levels);
        let centers = self.centers.read().unwrap_or_else(PoisonError::into_inner);
        delivery::soonest(&available, &centers, point)
    }
}

/// The levels and centers an event reports.
fn facts(event: &Envelope) -> (Vec<StockLevel>, Vec<FulfillmentCenter>) {
    match &event.payload {
        Some(Payload::StockLevelChanged(changed)) => {
            (changed.level.clone().into_iter().collect(), Vec::new())
        }
        Some(Payload::CenterUpserted(upserted)) => {
            (Vec::new(), upserted.center.clone().into_iter().collect())
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// Loads what the tables hold into `availability`.
pub async fn load(
    store: &Store,
    availability: &Availability,
) -> Result<(), crate::domain::CatalogError> {
    for row in store.levels().await? {
        availability.learn_level(&row.sku, &row.location_id, row.available, row.version);
    }
    for center in store.centers().await? {
        availability.learn_center(center);
    }
    Ok(())
}

/// The durable consumer's handler: keeps the tables (and this replica's memory).
pub struct Recorder {
    /// The tables.
    pub store: Store,
    /// This replica's memory.
    pub availability: Arc<Availability>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        self.handle_batch(txn, &[event]).await
    }

    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<(), HandlerError> {
        let (mut levels, mut centers) = (Vec::new(), Vec::new());
        for event in events {
            let (l, c) = facts(event);
            levels.extend(l);
            centers.extend(c);
            // True whether or not this transaction commits: inventory and fulfillment said it.
            self.availability.learn(event);
        }
        // One row per key in a statement: the newest version of each.
        let mut newest: BTreeMap<(String, String), StockLevel> = BTreeMap::new();
        for level in levels {
            let key = (level.sku.clone(), level.location_id.clone());
            if newest
                .get(&key)
                .is_none_or(|known| known.version < level.version)
            {
                newest.insert(key, level);
            }
        }
        let mut latest: BTreeMap<String, FulfillmentCenter> = BTreeMap::new();
        for center in centers {
            latest.insert(center.center_id.clone(), center);
        }
        let levels: Vec<StockLevel> = newest.into_values().collect();
        let centers: Vec<FulfillmentCenter> = latest.into_values().collect();
        let retry = |error: crate::domain::CatalogError| HandlerError::Retry(error.to_string());
        self.store.save_levels(txn, &levels).await.map_err(retry)?;
        self.store.save_centers(txn, &centers).await.map_err(retry)
    }
}

/// Follows level, center and order events live into `availability` and `tastes` until
/// `shutdown` (every replica its own subscription, from now), re-subscribing when the bus
/// drops.
pub async fn follow(
    bus: Arc<dyn EventBus>,
    availability: Arc<Availability>,
    tastes: Arc<Tastes>,
    mut first: BoxStream<'static, Result<Delivery, BusError>>,
    shutdown: CancellationToken,
) {
    loop {
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = first.next() => next,
            };
            let Some(Ok(delivery)) = next else { break };
            availability.learn(&delivery.envelope);
            if let Some((order_id, purchase)) = tastes::purchase_of(&delivery.envelope) {
                tastes.learn_purchase(&order_id, purchase);
            }
            // Nothing durable depends on it; the acknowledgement only frees the bus.
            let _ = delivery.ack().await;
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            match subscribe(bus.as_ref()).await {
                Ok(stream) => {
                    first = stream;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "catalog cannot follow stock events; retrying")
                }
            }
        }
    }
}

/// A live subscription to level, center and order status events from now.
pub async fn subscribe(
    bus: &dyn EventBus,
) -> Result<BoxStream<'static, Result<Delivery, BusError>>, BusError> {
    use oms_platform::bus::{Area, ConsumerSpec};
    let levels = ConsumerSpec::live(Area::Inventory).with_filter("oms.inventory.*.level_changed");
    let centers =
        ConsumerSpec::live(Area::Fulfillment).with_filter("oms.fulfillment.*.center_upserted");
    let orders = ConsumerSpec::live(Area::Order).with_filter("oms.order.*.status_changed");
    let streams = vec![
        bus.consume(levels).await?,
        bus.consume(centers).await?,
        bus.consume(orders).await?,
    ];
    Ok(futures::stream::select_all(streams).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_or_repeated_report_changes_nothing() {
        let availability = Availability::default();
        availability.learn_level("TEE", "berlin", 5, 3);
        availability.learn_level("TEE", "munich", 2, 1);
        assert_eq!(availability.available("TEE"), 7);
        availability.learn_level("TEE", "berlin", 9, 2);
        assert_eq!(availability.available("TEE"), 7, "older");
        availability.learn_level("TEE", "berlin", 0, 4);
        assert_eq!(availability.available("TEE"), 2);
        assert_eq!(availability.available("CAP"), 0);
    }
}
