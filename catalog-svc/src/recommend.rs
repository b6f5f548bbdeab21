//! Recommendations learned from purchases: what is bought together (item to item, recent
//! baskets weighing more), what each buyer bought before (repeat purchases, favourite
//! categories), and what sells where the buyer lives (geohash cells of delivered-to addresses).
//! Pure and incremental: [`Recommender::learn`] takes one purchase at a time (from order events,
//! or replayed from history at start); [`Recommender::recommend`] ranks candidates for a
//! context, each with the reason it is there. Whether a center can deliver an item to the buyer
//! is the caller's filter: nothing it refuses is ever recommended.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

/// A purchase: who, where to, when, which SKUs.
#[derive(Debug, Clone)]
pub struct Purchase {
    /// Empty for a buyer who turned personalisation off: the purchase counts in what sells
    /// together and where, not in anyone's own history.
    pub user_id: String,
    /// The delivery point (latitude, longitude), when the address had one.
    pub point: Option<(f64, f64)>,
    pub at: DateTime<Utc>,
    pub skus: Vec<String>,
}

/// Where recommendations are shown.
#[derive(Debug, Clone)]
pub enum Context {
    /// The home screen: for the buyer in general.
    Home,
    /// A product page: what goes with this product.
    Product(String),
    /// The cart: what completes it.
    Cart(Vec<String>),
}

/// Why an item is recommended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Often bought together with this SKU.
    BoughtWith(String),
    /// The buyer bought it before.
    BuyAgain,
    /// It sells near the buyer.
    PopularNearYou,
    /// From a category the buyer buys from.
    YourCategory(String),
    /// It sells well everywhere (the fallback for a new buyer).
    Popular,
}

/// One recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub sku: String,
    pub score: f64,
    pub reason: Reason,
}

/// Tuning.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A purchase's weight halves every this many days.
    pub half_life_days: f64,
    /// Geohash precision of "near you" (5: cells of about 5 × 5 km).
    pub cell_precision: usize,
    /// Weights of the signals.
    pub bought_with: f64,
    pub buy_again: f64,
    pub near_you: f64,
    pub category: f64,
    pub popular: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            half_life_days: 90.0,
            cell_precision: 4,
            bought_with: 1.0,
            buy_again: 0.8,
            near_you: 0.6,
            category: 0.6,
            popular: 0.1,
        }
    }
}

/// A weight that fades with time: its value at `at`.
#[derive(Debug, Clone, Copy, Default)]
struct Decayed {
    value: f64,
    at: Option<DateTime<Utc>>,
}

impl Decayed {
    fn add(&mut self, amount: f64, at: DateTime<Utc>, half_life_days: f64) {
        self.value = self.value_at(at, half_life_days) + amount;
        self.at = Some(self.at.map_or(at, |known| known.max(at)));
    }

    fn value_at(&self, at: DateTime<Utc>, half_life_days: f64) -> f64 {
        match self.at {
            None => 0.0,
            Some(known) => {
                let days = (at - known).num_seconds().max(0) as f64 / 86_400.0;
                self.value * 0.5_f64.powf(days / half_life_days)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Buyer {
    items: HashMap<String, Decayed>,
    categories: HashMap<String, Decayed>,
    home: Option<(f64, f64)>,
}

/// The learned state.
#[derive(Debug, Default)]
pub struct Recommender {
    settings: Settings,
    together: HashMap<String, HashMap<String, Decayed>>,
    buyers: HashMap<String, Buyer>,
    cells: HashMap<String, HashMap<String, Decayed>>,
    everywhere: HashMap<String, Decayed>,
    latest: Option<DateTime<Utc>>,
}

/// The geohash of a point (`precision` characters).
pub fn geohash(point: (f64, f64), precision: usize) -> String {
    const BASE32: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (mut lat, mut lng) = ((-90.0, 90.0), (-180.0, 180.0));
    let mut hash = String::with_capacity(precision);
    let (mut bits, mut value, mut even) = (0, 0usize, true);
    while hash.len() < precision {
        let (range, x) = if even {
            (&mut lng, point.1)
        } else {
            (&mut lat, point.0)
        };
        let mid = (range.0 + range.1) / 2.0;
        value <<= 1;
        if x >= mid {
            value |= 1;
            range.0 = mid;
        } else {
            range.1 = mid;
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            hash.push(BASE32[value] as char);
            (bits, value) = (0, 0);
        }
    }
    hash
}

impl Recommender {
    /// An empty recommender.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Takes one purchase; `category_of` names an item's top category.
    pub fn learn(&mut self, purchase: &Purchase, category_of: impl Fn(&str) -> Option<String>) {
        let half_life = self.settings.half_life_days;
        let at = purchase.at;
        self.latest = Some(self.latest.map_or(at, |known| known.max(at)));
        let skus: BTreeSet<&String> = purchase.skus.iter().collect();
        for a in &skus {
            for b in &skus {
                if a != b {
                    self.together
                        .entry((*a).clone())
                        .or_default()
                        .entry((*b).clone())
                        .or_default()
                        .add(1.0, at, half_life);
                }
            }
        }
        if !purchase.user_id.is_empty() {
            let buyer = self.buyers.entry(purchase.user_id.clone()).or_default();
            if purchase.point.is_some() {
                buyer.home = purchase.point;
            }
            for sku in &skus {
                buyer
                    .items
                    .entry((*sku).clone())
                    .or_default()
                    .add(1.0, at, half_life);
                if let Some(category) = category_of(sku) {
                    buyer
                        .categories
                        .entry(category)
                        .or_default()
                        .add(1.0, at, half_life);
                }
            }
        }
        for sku in &skus {
            self.everywhere
                .entry((*sku).clone())
                .or_default()
                .add(1.0, at, half_life);
            if let Some(point) = purchase.point {
                self.cells
                    .entry(geohash(point, self.settings.cell_precision))
                    .or_default()
                    .entry((*sku).clone())
                    .or_default()
                    .add(1.0, at, half_life);
            }
        }
    }

    /// A buyer looked at an item (`weight` below a purchase's 1): it counts in their own
    /// history only.
    pub fn learn_interest(
        &mut self,
        user_id: &str,
        sku: &str,
        weight: f64,
        at: DateTime<Utc>,
        category: Option<String>,
    ) {
        let half_life = self.settings.half_life_days;
        self.latest = Some(self.latest.map_or(at, |known| known.max(at)));
        let buyer = self.buyers.entry(user_id.to_owned()).or_default();
        buyer
            .items
            .entry(sku.to_owned())
            .or_default()
            .add(weight, at, half_life);
        if let Some(category) = category {
            buyer
                .categories
                .entry(category)
                .or_default()
                .add(weight, at, half_life);
        }
    }

    /// Where a buyer's orders last went.
    pub fn home_of(&self, user_id: &str) -> Option<(f64, f64)> {
        self.buyers.get(user_id).and_then(|b| b.home)
    }

    /// Up to `limit` recommendations for `user_id` (at `point`, or where their orders go) in
    /// `context`, best first; `allowed` says whether an item may be shown to them (active and
    /// deliverable to them), `category_of` names an item's top category.
    pub fn recommend(
        &self,
        user_id: &str,
        point: Option<(f64, f64)>,
        context: &Context,
        limit: usize,
        allowed: impl Fn(&str) -> bool,
        category_of: impl Fn(&str) -> Option<String>,
    ) -> Vec<Recommendation> {
        let Some(now) = self.latest else {
            return Vec::new();
        };
        let s = self.settings;
        let value = |d: &Decayed| d.value_at(now, s.half_life_days);
        let buyer = self.buyers.get(user_id);
        let point = point.or(buyer.and_then(|b| b.home));
        let exclude: BTreeSet<String> = match context {
            Context::Home => BTreeSet::new(),
            Context::Product(sku) => BTreeSet::from([sku.clone()]),
            Context::Cart(skus) => skus.iter().cloned().collect(),
        };
        // Per item: the signals' sum, the strongest single signal, and its reason.
        let mut best: HashMap<String, (f64, f64, Reason)> = HashMap::new();
        let mut offer = |sku: &str, score: f64, reason: Reason| {
            if score <= 0.0 || exclude.contains(sku) {
                return;
            }
            let entry = best
                .entry(sku.to_owned())
                .or_insert((0.0, 0.0, reason.clone()));
            entry.0 += score;
            if score > entry.1 {
                entry.1 = score;
                entry.2 = reason;
            }
        };
        // Normalises a signal's scores to 0..=1 so the weights mean the same for every buyer.
        let normalised = |items: Vec<(String, f64)>| -> Vec<(String, f64)> {
            let top = items.iter().map(|(_, v)| *v).fold(0.0, f64::max);
            if top <= 0.0 {
                return Vec::new();
            }
            items.into_iter().map(|(k, v)| (k, v / top)).collect()
        };

        // Bought together with what the context is about (the buyer's own recent items on the
        // home screen).
        let anchors: Vec<(String, f64)> = match context {
            Context::Product(sku) => vec![(sku.clone(), 1.0)],
            Context::Cart(skus) => skus.iter().map(|s| (s.clone(), 1.0)).collect(),
            Context::Home => buyer.map_or_else(Vec::new, |b| {
                normalised(b.items.iter().map(|(k, d)| (k.clone(), value(d))).collect())
            }),
        };
        for (anchor, anchor_weight) in &anchors {
            if let Some(partners) = self.together.get(anchor) {
                let partners = normalised(
                    partners
                        .iter()
                        .map(|(k, d)| (k.clone(), value(d)))
                        .collect(),
                );
                for (sku, v) in partners {
                    offer(
                        &sku,
                        s.bought_with * anchor_weight * v,
                        Reason::BoughtWith(anchor.clone()),
                    );
                }
            }
        }
        if let (Context::Home, Some(buyer)) = (context, buyer) {
            for (sku, v) in normalised(
                buyer
                    .items
                    .iter()
                    .map(|(k, d)| (k.clone(), value(d)))
                    .collect(),
            ) {
                offer(&sku, s.buy_again * v, Reason::BuyAgain);
            }
        }
        let near: Vec<(String, f64)> = point
            .and_then(|p| self.cells.get(&geohash(p, s.cell_precision)))
            .map(|items| normalised(items.iter().map(|(k, d)| (k.clone(), value(d))).collect()))
            .unwrap_or_default();
        let favourite: HashMap<String, f64> = buyer
            .map(|b| {
                normalised(
                    b.categories
                        .iter()
                        .map(|(k, d)| (k.clone(), value(d)))
                        .collect(),
                )
                .into_iter()
                .collect()
            })
            .unwrap_or_default();
        for (sku, v) in &near {
            offer(sku, s.near_you * v, Reason::PopularNearYou);
        }
        let everywhere = normalised(
            self.everywhere
                .iter()
                .map(|(k, d)| (k.clone(), value(d)))
                .collect(),
        );
        for (sku, v) in &everywhere {
            if let Some(category) = category_of(sku)
                && let Some(liking) = favourite.get(&category)
            {
                offer(
                    sku,
                    s.category * liking * v,
                    Reason::YourCategory(category.clone()),
                );
            }
            offer(sku, s.popular * v, Reason::Popular);
        }

        let mut ranked: Vec<Recommendation> = best
            .into_iter()
            .filter(|(sku, _)| allowed(sku))
            .map(|(sku, (score, _, reason))| Recommendation { sku, score, reason })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.sku.cmp(&b.sku)));
        ranked.truncate(limit);
        ranked
    }

    /// The plain popularity ranking (the baseline a recommender must beat).
    pub fn popular(&self, limit: usize, allowed: impl Fn(&str) -> bool) -> Vec<String> {
        let Some(now) = self.latest else {
            return Vec::new();
        };
        let mut items: Vec<(&String, f64)> = self
            .everywhere
            .iter()
            .filter(|(sku, _)| allowed(sku))
            .map(|(sku, d)| (sku, d.value_at(now, self.settings.half_life_days)))
            .collect();
        items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        items
            .into_iter()
            .take(limit)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Forgets a buyer's own history (their opt-out); what they bought still counts, anonymously,
    /// in what sells together and where.
    pub fn forget_buyer(&mut self, user_id: &str) {
        self.buyers.remove(user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn purchase(user: &str, day: u32, point: (f64, f64), skus: &[&str]) -> Purchase {
        Purchase {
            user_id: user.into(),
            point: Some(point),
            at: Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap(),
            skus: skus.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    const BERLIN: (f64, f64) = (52.52, 13.40);
    const MUNICH: (f64, f64) = (48.14, 11.58);

    fn category(sku: &str) -> Option<String> {
        Some(sku.split('-').next().unwrap_or_default().to_owned())
    }

    fn trained() -> Recommender {
        let mut r = Recommender::new(Settings::default());
        for day in 1..=9 {
            r.learn(
                &purchase(
                    &format!("b{day}"),
                    day,
                    BERLIN,
                    &["outdoor-tent", "outdoor-bag"],
                ),
                category,
            );
            r.learn(
                &purchase(&format!("m{day}"), day, MUNICH, &["kitchen-pan"]),
                category,
            );
        }
        r.learn(&purchase("ada", 10, BERLIN, &["books-novel"]), category);
        r
    }

    #[test]
    fn geohash_cells_are_the_standard_ones() {
        assert_eq!(geohash(BERLIN, 5), "u33db");
        assert_eq!(geohash((-33.87, 151.21), 4), "r3gx");
    }

    #[test]
    fn bought_together_and_why() {
        let r = trained();
        let recs = r.recommend(
            "ada",
            None,
            &Context::Product("outdoor-tent".into()),
            3,
            |_| true,
            category,
        );
        assert_eq!(recs[0].sku, "outdoor-bag");
        assert_eq!(recs[0].reason, Reason::BoughtWith("outdoor-tent".into()));
        assert!(
            recs.iter().all(|r| r.sku != "outdoor-tent"),
            "not the product itself"
        );
        let cart = r.recommend(
            "ada",
            None,
            &Context::Cart(vec!["outdoor-bag".into()]),
            1,
            |_| true,
            category,
        );
        assert_eq!(cart[0].sku, "outdoor-tent");
    }

    #[test]
    fn near_you_again_and_never_what_cannot_come() {
        let r = trained();
        let home = r.recommend("ada", None, &Context::Home, 10, |_| true, category);
        let reasons: HashMap<&str, &Reason> =
            home.iter().map(|r| (r.sku.as_str(), &r.reason)).collect();
        assert_eq!(reasons["books-novel"], &Reason::BuyAgain);
        assert_eq!(
            reasons["outdoor-tent"],
            &Reason::PopularNearYou,
            "Berlin buys tents"
        );
        let berlin = home.iter().position(|r| r.sku == "outdoor-tent");
        let munich = home.iter().position(|r| r.sku == "kitchen-pan");
        assert!(berlin < munich, "{home:?}");
        let without_tents = r.recommend(
            "ada",
            None,
            &Context::Home,
            10,
            |sku| sku != "outdoor-tent",
            category,
        );
        assert!(without_tents.iter().all(|r| r.sku != "outdoor-tent"));
    }

    #[test]
    fn a_new_buyer_gets_what_sells_and_a_forgotten_one_is_new() {
        let mut r = trained();
        let stranger = r.recommend("zoe", Some(MUNICH), &Context::Home, 1, |_| true, category);
        assert_eq!(stranger[0].sku, "kitchen-pan", "popular near Munich");
        r.forget_buyer("ada");
        let home = r.recommend("ada", None, &Context::Home, 10, |_| true, category);
        assert!(
            home.iter().all(|r| r.reason != Reason::BuyAgain),
            "{home:?}"
        );
        assert!(
            Recommender::default()
                .recommend("ada", None, &Context::Home, 10, |_| true, category)
                .is_empty()
        );
    }
}
