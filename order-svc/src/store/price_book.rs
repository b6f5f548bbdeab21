//! The price list kept in memory for a moment: a placement prices its lines without a round
//! trip to the database. A price changed through this process is seen at once; one changed
//! through another replica within [`FRESH_FOR`] — the usual lag of a price change reaching
//! shop windows, and short next to how long a buyer looks at a price before ordering.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use oms_platform::money::{Currency, Money};

/// How long a looked-up entry (or its absence) is trusted.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// A SKU's name and unit price in one currency, or `None`: not sold in it.
pub type Entry = Option<(String, Money)>;

/// Looked-up entries by (currency, SKU).
#[derive(Debug, Default)]
pub struct PriceBook {
    entries: Mutex<HashMap<(Currency, String), (Entry, Instant)>>,
}

impl PriceBook {
    /// The fresh entries of `skus`, and the SKUs that must be looked up.
    pub fn lookup<'a>(
        &self,
        currency: Currency,
        skus: &[&'a str],
    ) -> (Vec<(String, Entry)>, Vec<&'a str>) {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut known = Vec::with_capacity(skus.len());
        let mut missing = Vec::new();
        for sku in skus {
            match entries.get(&(currency, (*sku).to_owned())) {
                Some((entry, at)) if at.elapsed() < FRESH_FOR => {
                    known.push(((*sku).to_owned(), entry.clone()));
                }
                _ => missing.push(*sku),
            }
        }
        (known, missing)
    }

    /// Remembers what the database said about `sku`.
    pub fn remember(&self, currency: Currency, sku: &str, entry: Entry) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((currency, sku.to_owned()), (entry, Instant::now()));
    }

    /// Forgets `sku` in `currency` (its price changed here).
    pub fn forget(&self, currency: Currency, sku: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(currency, sku.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_known_until_forgotten_and_absences_are_remembered_too() {
        let book = PriceBook::default();
        let eur = Currency::parse("EUR").unwrap();
        let (known, missing) = book.lookup(eur, &["CAP", "HAT"]);
        assert!(known.is_empty());
        assert_eq!(missing, ["CAP", "HAT"]);
        book.remember(eur, "CAP", Some(("Cap".into(), Money::new(eur, 15.into()))));
        book.remember(eur, "HAT", None);
        let (known, missing) = book.lookup(eur, &["CAP", "HAT"]);
        assert_eq!(known.len(), 2);
        assert!(missing.is_empty());
        book.forget(eur, "CAP");
        assert_eq!(book.lookup(eur, &["CAP"]).1, ["CAP"]);
    }
}
