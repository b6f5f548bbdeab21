//! A year of purchases with tastes a recommender can learn and a popularity list cannot: each
//! region (four cities) prefers two categories and a few local specialities, some items are
//! bought together (a tent with a sleeping bag), buyers come back to what they bought and to
//! their own favourite category. Kept apart from the recommender, with its own seed: the
//! recommender learns these from the purchases, never from this code.
//!
//! Stock is placed too: every item at the national center (which reaches everyone) or — a
//! tenth of them — only at one city's center, which reaches that city alone; what no center
//! reaches a buyer must never be recommended to them.

use chrono::{DateTime, Duration, TimeZone, Utc};
use oms_catalog_svc::recommend::Purchase;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

/// Items per category, categories.
const PER_CATEGORY: usize = 50;
const CATEGORIES: [&str; 8] = [
    "outdoor", "kitchen", "garden", "toys", "office", "sports", "beauty", "books",
];
/// The cities, their points, and the categories they prefer.
pub const REGIONS: [(&str, (f64, f64), [usize; 2]); 4] = [
    ("berlin", (52.52, 13.40), [0, 4]),
    ("munich", (48.14, 11.58), [5, 2]),
    ("hamburg", (53.55, 9.99), [1, 7]),
    ("cologne", (50.94, 6.96), [3, 6]),
];

/// The simulated world: items, where they can come from, and the purchases.
pub struct World {
    /// Item → its category.
    pub category: Vec<usize>,
    /// Item → the only region that gets it (`None`: everyone).
    pub regional_only: Vec<Option<usize>>,
    /// User → home region.
    pub home: Vec<usize>,
    /// In time order.
    pub purchases: Vec<Purchase>,
}

/// The SKU of item `i`.
pub fn sku(i: usize) -> String {
    format!("ITEM-{i:04}")
}

/// The item a SKU names.
pub fn item(sku: &str) -> Option<usize> {
    sku.strip_prefix("ITEM-")?.parse().ok()
}

impl World {
    /// Item `i`'s top category.
    pub fn category_of(&self, sku: &str) -> Option<String> {
        item(sku).map(|i| CATEGORIES[self.category[i]].to_owned())
    }

    /// Whether a center with stock reaches `user`'s home.
    pub fn deliverable(&self, user: usize, sku: &str) -> bool {
        item(sku).is_some_and(|i| {
            i < self.regional_only.len()
                && self.regional_only[i].is_none_or(|region| region == self.home[user])
        })
    }
}

/// Popularity of items within a list: a long tail (Zipf-like).
fn zipf(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.random_range(0.0..1.0);
    ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
}

/// A year of purchases by `users` buyers.
pub fn world(users: usize, seed: u64) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = CATEGORIES.len() * PER_CATEGORY;
    let category: Vec<usize> = (0..items).map(|i| i / PER_CATEGORY).collect();
    let regional_only: Vec<Option<usize>> = (0..items)
        .map(|_| (rng.random_range(0..10) == 0).then(|| rng.random_range(0..REGIONS.len())))
        .collect();
    // Each region's specialities: five items it buys far more than others.
    let specialities: Vec<Vec<usize>> = (0..REGIONS.len())
        .map(|_| (0..5).map(|_| rng.random_range(0..items)).collect())
        .collect();
    // Bought together: an item's partners, from its own category or a neighbouring one.
    let partners: Vec<Vec<usize>> = (0..items)
        .map(|i| {
            if rng.random_range(0..3) == 0 {
                let near = (category[i] + rng.random_range(0..2)) % CATEGORIES.len();
                (0..rng.random_range(1..3))
                    .map(|_| near * PER_CATEGORY + rng.random_range(0..PER_CATEGORY))
                    .filter(|p| *p != i)
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let home: Vec<usize> = (0..users)
        .map(|_| rng.random_range(0..REGIONS.len()))
        .collect();
    let favourite: Vec<usize> = (0..users)
        .map(|_| rng.random_range(0..CATEGORIES.len()))
        .collect();
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut purchases = Vec::new();
    for user in 0..users {
        let region = home[user];
        let (_, (lat, lng), liked) = REGIONS[region];
        let point = (
            lat + rng.random_range(-0.05..0.05),
            lng + rng.random_range(-0.05..0.05),
        );
        let mut bought: Vec<usize> = Vec::new();
        let orders = rng.random_range(3..9);
        for _ in 0..orders {
            let at: DateTime<Utc> = start + Duration::minutes(rng.random_range(0..365 * 24 * 60));
            let first = match rng.random_range(0..100) {
                0..=19 if !bought.is_empty() => *bought.choose(&mut rng).unwrap_or(&0),
                0..=44 => favourite[user] * PER_CATEGORY + zipf(&mut rng, PER_CATEGORY),
                45..=69 => {
                    let liked = liked[rng.random_range(0..2)];
                    liked * PER_CATEGORY + zipf(&mut rng, PER_CATEGORY)
                }
                70..=79 => *specialities[region].choose(&mut rng).unwrap_or(&0),
                _ => zipf(&mut rng, items),
            };
            let mut basket = vec![first];
            for partner in &partners[first] {
                if rng.random_range(0..100) < 60 {
                    basket.push(*partner);
                }
            }
            if rng.random_range(0..4) == 0 {
                basket.push(zipf(&mut rng, items));
            }
            basket.retain(|i| regional_only[*i].is_none_or(|r| r == region));
            basket.dedup();
            if basket.is_empty() {
                continue;
            }
            bought.extend(&basket);
            purchases.push(Purchase {
                user_id: format!("user-{user}"),
                point: Some(point),
                at,
                skus: basket.into_iter().map(sku).collect(),
            });
        }
    }
    purchases.sort_by_key(|p| p.at);
    World {
        category,
        regional_only,
        home,
        purchases,
    }
}
