//! The audit: every stored level recomputed from the ledger and the active reservations.
//!
//! `on_hand` must equal the sum of the level's ledger `on_hand_delta`s, `reserved` the sum of
//! its `reserved_delta`s and also what the active reservations and holds still hold, and
//! `0 <= reserved <= on_hand` must hold. Any difference is a mismatch; there must be none.

use std::collections::{BTreeMap, BTreeSet};

use oms_proto::inventory::v1::AuditMismatch;

/// Per (sku, location): a pair of sums.
pub type LevelSums = BTreeMap<(String, String), (i64, i64)>;

/// The levels that disagree with the ledger or the reservations.
///
/// `stored`: (on_hand, reserved) as stored; `ledger`: sums of (on_hand_delta, reserved_delta);
/// `active`: units held by active reservations (second value unused).
pub fn mismatches(
    stored: &LevelSums,
    ledger: &LevelSums,
    active: &LevelSums,
) -> Vec<AuditMismatch> {
    let keys: BTreeSet<&(String, String)> = stored
        .keys()
        .chain(ledger.keys())
        .chain(active.keys())
        .collect();
    keys.into_iter()
        .filter_map(|key| {
            let (stored_on_hand, stored_reserved) = stored.get(key).copied().unwrap_or_default();
            let (ledger_on_hand, ledger_reserved) = ledger.get(key).copied().unwrap_or_default();
            let active_reserved = active.get(key).map_or(0, |(held, _)| *held);
            let consistent = stored_on_hand == ledger_on_hand
                && stored_reserved == ledger_reserved
                && stored_reserved == active_reserved
                && (0..=stored_on_hand).contains(&stored_reserved);
            (!consistent).then(|| AuditMismatch {
                sku: key.0.clone(),
                location_id: key.1.clone(),
                stored_on_hand,
                ledger_on_hand,
                stored_reserved,
                active_reserved,
                ledger_reserved,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(entries: &[(&str, i64, i64)]) -> LevelSums {
        entries
            .iter()
            .map(|(sku, a, b)| ((sku.to_string(), "L".to_string()), (*a, *b)))
            .collect()
    }

    #[test]
    fn a_consistent_store_has_no_mismatch() {
        let stored = sums(&[("A", 10, 3), ("B", 0, 0)]);
        let ledger = sums(&[("A", 10, 3), ("B", 0, 0)]);
        let active = sums(&[("A", 3, 0)]);
        assert!(mismatches(&stored, &ledger, &active).is_empty());
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let stored = sums(&[
            ("on_hand", 10, 0),
            ("reserved", 10, 2),
            ("held", 10, 2),
            ("over", 1, 2),
            ("ghost", 0, 0),
        ]);
        let ledger = sums(&[
            ("on_hand", 9, 0),
            ("reserved", 10, 3),
            ("held", 10, 2),
            ("over", 1, 2),
            ("ghost", 5, 0),
            ("missing", 4, 0),
        ]);
        let active = sums(&[("reserved", 2, 0), ("held", 1, 0), ("over", 2, 0)]);
        let found: Vec<_> = mismatches(&stored, &ledger, &active)
            .into_iter()
            .map(|m| m.sku)
            .collect();
        assert_eq!(
            found,
            ["ghost", "held", "missing", "on_hand", "over", "reserved"]
        );
    }
}
