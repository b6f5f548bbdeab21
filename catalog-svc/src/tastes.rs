//! What buyers like, in memory on every replica: the [`Recommender`] fed by confirmed orders
//! (from order-svc's status events: the durable consumer keeps them in the `purchases` table,
//! the live subscription tells every replica; each order is learned once) and by the buyers'
//! views and add-to-carts; rebuilt from the tables at start. A buyer who turned
//! personalisation off has no history of their own: their purchases count anonymously.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError, RwLock},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oms_platform::{
    consumer::{EventHandler, HandlerError},
    events::from_timestamp,
};
use oms_proto::{
    catalog::v1::Product,
    events::v1::{Envelope, envelope::Payload},
    order::v1::OrderStatus,
};
use sea_orm::DatabaseTransaction;

use crate::{
    domain::CatalogError,
    recommend::{Context, Purchase, Recommendation, Recommender, Settings},
    store::Store,
};

/// How much a view and an add-to-cart weigh against a purchase (1).
pub const VIEW_WEIGHT: f64 = 0.2;
/// See [`VIEW_WEIGHT`].
pub const ADD_TO_CART_WEIGHT: f64 = 0.5;

/// The learned tastes.
pub struct Tastes {
    recommender: RwLock<Recommender>,
    learned: Mutex<HashSet<String>>,
    opted_out: RwLock<HashSet<String>>,
    categories: RwLock<HashMap<String, String>>,
}

impl Default for Tastes {
    fn default() -> Self {
        Self {
            recommender: RwLock::new(Recommender::new(Settings::default())),
            learned: Mutex::default(),
            opted_out: RwLock::default(),
            categories: RwLock::default(),
        }
    }
}

/// The purchase a status change reports: an order confirmed.
pub fn purchase_of(event: &Envelope) -> Option<(String, Purchase)> {
    let Some(Payload::OrderStatusChanged(changed)) = &event.payload else {
        return None;
    };
    let order = changed.order.as_ref()?;
    if order.status() != OrderStatus::Confirmed {
        return None;
    }
    let at = event
        .occurred_at
        .as_ref()
        .and_then(from_timestamp)
        .unwrap_or_else(Utc::now);
    let point = order
        .shipping_address
        .as_ref()
        .and_then(|a| a.location)
        .map(|p| (p.lat, p.lng));
    let skus = order.lines.iter().map(|l| l.sku.clone()).collect();
    Some((
        order.order_id.clone(),
        Purchase {
            user_id: order.user_id.clone(),
            point,
            at,
            skus,
        },
    ))
}

impl Tastes {
    /// Rebuilt from the tables; `products` are the catalog's (for their categories).
    pub async fn load(store: &Store, products: &[Product]) -> Result<Self, CatalogError> {
        let tastes = Self::default();
        tastes.set_categories(
            products
                .iter()
                .map(|p| (p.sku.as_str(), p.category_path.first())),
        );
        for user in store.opted_out().await? {
            tastes.write_opted_out().insert(user);
        }
        for (order_id, purchase) in store.purchases().await? {
            tastes.learn_purchase(&order_id, purchase);
        }
        for row in store.interactions().await? {
            let weight = if row.kind == "add_to_cart" {
                ADD_TO_CART_WEIGHT
            } else {
                VIEW_WEIGHT
            };
            tastes.learn_interest(&row.user_id, &row.sku, weight, row.at);
        }
        Ok(tastes)
    }

    fn write_opted_out(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
        self.opted_out
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a buyer turned personalisation off.
    pub fn is_opted_out(&self, user_id: &str) -> bool {
        self.opted_out
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(user_id)
    }

    /// Notes each product's top category.
    pub fn set_categories<'a>(
        &self,
        products: impl IntoIterator<Item = (&'a str, Option<&'a String>)>,
    ) {
        let mut known = self
            .categories
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (sku, category) in products {
            match category {
                Some(category) => known.insert(sku.to_owned(), category.to_lowercase()),
                None => known.remove(sku),
            };
        }
    }

    fn category_of(&self, sku: &str) -> Option<String> {
        self.categories
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sku)
            .cloned()
    }

    /// Learns an order's purchase once.
    pub fn learn_purchase(&self, order_id: &str, mut purchase: Purchase) {
        if !self
            .learned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(order_id.to_owned())
        {
            return;
        }
        if self.is_opted_out(&purchase.user_id) {
            purchase.user_id.clear();
        }
        self.recommender
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .learn(&purchase, |sku| self.category_of(sku));
    }

    /// Learns a view or an add-to-cart (nothing for a buyer who opted out).
    pub fn learn_interest(&self, user_id: &str, sku: &str, weight: f64, at: DateTime<Utc>) {
        if self.is_opted_out(user_id) {
            return;
        }
        let category = self.category_of(sku);
        self.recommender
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .learn_interest(user_id, sku, weight, at, category);
    }

    /// Turns a buyer's personalisation off (`true`) or on.
    pub fn set_opted_out(&self, user_id: &str, out: bool) {
        if out {
            self.write_opted_out().insert(user_id.to_owned());
            self.recommender
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .forget_buyer(user_id);
        } else {
            self.write_opted_out().remove(user_id);
        }
    }

    /// Where a buyer's orders last went.
    pub fn home_of(&self, user_id: &str) -> Option<(f64, f64)> {
        self.recommender
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .home_of(user_id)
    }

    /// Recommendations (see [`Recommender::recommend`]); a buyer who opted out gets the
    /// anonymous ones (near them, bought together, popular).
    pub fn recommend(
        &self,
        user_id: &str,
        point: Option<(f64, f64)>,
        context: &Context,
        limit: usize,
        allowed: impl Fn(&str) -> bool,
    ) -> Vec<Recommendation> {
        let user_id = if self.is_opted_out(user_id) {
            ""
        } else {
            user_id
        };
        self.recommender
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .recommend(user_id, point, context, limit, allowed, |sku| {
                self.category_of(sku)
            })
    }
}

/// The durable consumer's handler: keeps confirmed orders' purchases (and learns them here).
pub struct PurchaseRecorder {
    /// The tables.
    pub store: Store,
    /// This replica's tastes.
    pub tastes: Arc<Tastes>,
}

#[async_trait]
impl EventHandler for PurchaseRecorder {
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
        let mut purchases: HashMap<String, Purchase> = HashMap::new();
        for event in events {
            if let Some((order_id, purchase)) = purchase_of(event) {
                // Learned whether or not this transaction commits: the order was confirmed.
                self.tastes.learn_purchase(&order_id, purchase.clone());
                purchases.entry(order_id).or_insert(purchase);
            }
        }
        let mut rows: Vec<(String, Purchase)> = purchases.into_iter().collect();
        for (_, purchase) in &mut rows {
            if self.tastes.is_opted_out(&purchase.user_id) {
                purchase.user_id.clear();
            }
        }
        self.store
            .save_purchases(txn, &rows)
            .await
            .map_err(|error| HandlerError::Retry(error.to_string()))
    }
}
