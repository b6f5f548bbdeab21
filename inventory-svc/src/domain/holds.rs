//! Cart holds: turning the app's cart into short-lived soft reservations.
//!
//! Given what the user holds now, what the cart asks for, where stock is available and the
//! per-user cap, [`plan`] decides which levels to take units from (nearest first) and which
//! holds to give back (farthest first). The store applies the plan with conditional updates
//! and may get less than planned under contention; [`line_status`] then describes the outcome.

use std::collections::BTreeMap;

use oms_proto::inventory::v1::CartLineStatus;

use super::validate::CartLine;

/// A hold the user has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldLine {
    /// The SKU.
    pub sku: String,
    /// Where.
    pub location_id: String,
    /// Units held.
    pub remaining: i64,
    /// The app's last applied edit of this SKU's line.
    pub client_op_id: String,
}

/// A place a SKU could be held at.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Where.
    pub location_id: String,
    /// Units available there now.
    pub available: i64,
    /// Kilometres from the buyer (0 when unknown).
    pub distance_km: f64,
}

/// One level change of the plan: positive takes, negative gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldChange {
    /// The SKU.
    pub sku: String,
    /// Where.
    pub location_id: String,
    /// Units.
    pub delta: i64,
}

/// What the cart asks for one SKU and what the plan allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTarget {
    /// Units the cart asks for.
    pub requested: i64,
    /// Units the per-user cap allows.
    pub allowed: i64,
    /// The cap cut the request.
    pub capped: bool,
}

/// The changes to make, in lock order, and the target per SKU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HoldPlan {
    /// Level changes sorted by (sku, location).
    pub changes: Vec<HoldChange>,
    /// Per cart SKU.
    pub targets: BTreeMap<String, LineTarget>,
}

/// Plans the holds for `cart` given `current` holds and `candidates` per SKU.
pub fn plan(
    current: &[HoldLine],
    cart: &[CartLine],
    candidates: &BTreeMap<String, Vec<Candidate>>,
    cap: i64,
) -> HoldPlan {
    let mut held: BTreeMap<&str, Vec<&HoldLine>> = BTreeMap::new();
    for line in current.iter().filter(|l| l.remaining > 0) {
        held.entry(line.sku.as_str()).or_default().push(line);
    }
    let mut plan = HoldPlan::default();
    // SKUs no longer in the cart: give everything back.
    for (sku, lines) in &held {
        if !cart.iter().any(|c| c.sku == *sku) {
            for line in lines {
                plan.changes.push(HoldChange {
                    sku: line.sku.clone(),
                    location_id: line.location_id.clone(),
                    delta: -line.remaining,
                });
            }
        }
    }
    let mut cap_left = cap.max(0);
    let no_candidates = Vec::new();
    for line in cart {
        let lines = held.get(line.sku.as_str()).cloned().unwrap_or_default();
        let holding: i64 = lines.iter().map(|l| l.remaining).sum();
        let retried = !line.client_op_id.is_empty()
            && lines.iter().any(|l| l.client_op_id == line.client_op_id);
        // A retried edit that was applied already changes nothing.
        let requested = if retried { holding } else { line.quantity };
        let allowed = requested.min(cap_left);
        cap_left -= allowed;
        plan.targets.insert(
            line.sku.clone(),
            LineTarget {
                requested,
                allowed,
                capped: allowed < requested,
            },
        );
        let places = candidates.get(&line.sku).unwrap_or(&no_candidates);
        if allowed < holding {
            give_back(
                &mut plan.changes,
                &line.sku,
                &lines,
                places,
                holding - allowed,
            );
        } else if allowed > holding {
            take(&mut plan.changes, &line.sku, places, allowed - holding);
        }
    }
    plan.changes
        .sort_by(|a, b| (&a.sku, &a.location_id).cmp(&(&b.sku, &b.location_id)));
    plan
}

fn distance_of(places: &[Candidate], location_id: &str) -> f64 {
    places
        .iter()
        .find(|c| c.location_id == location_id)
        .map_or(f64::MAX, |c| c.distance_km)
}

fn give_back(
    changes: &mut Vec<HoldChange>,
    sku: &str,
    lines: &[&HoldLine],
    places: &[Candidate],
    mut units: i64,
) {
    let mut farthest_first: Vec<&&HoldLine> = lines.iter().collect();
    farthest_first.sort_by(|a, b| {
        distance_of(places, &b.location_id)
            .total_cmp(&distance_of(places, &a.location_id))
            .then_with(|| a.location_id.cmp(&b.location_id))
    });
    for line in farthest_first {
        if units == 0 {
            break;
        }
        let released = line.remaining.min(units);
        units -= released;
        changes.push(HoldChange {
            sku: sku.to_owned(),
            location_id: line.location_id.clone(),
            delta: -released,
        });
    }
}

fn take(changes: &mut Vec<HoldChange>, sku: &str, places: &[Candidate], mut units: i64) {
    let mut nearest_first: Vec<&Candidate> = places.iter().filter(|c| c.available > 0).collect();
    nearest_first.sort_by(|a, b| {
        a.distance_km
            .total_cmp(&b.distance_km)
            .then_with(|| b.available.cmp(&a.available))
            .then_with(|| a.location_id.cmp(&b.location_id))
    });
    for place in nearest_first {
        if units == 0 {
            break;
        }
        let taken = place.available.min(units);
        units -= taken;
        changes.push(HoldChange {
            sku: sku.to_owned(),
            location_id: place.location_id.clone(),
            delta: taken,
        });
    }
}

/// How a cart line came out.
pub fn line_status(target: &LineTarget, held: i64) -> CartLineStatus {
    if held >= target.requested {
        CartLineStatus::Held
    } else if target.capped && held >= target.allowed {
        CartLineStatus::CapReached
    } else if held == 0 {
        CartLineStatus::OutOfStock
    } else {
        CartLineStatus::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart(sku: &str, quantity: i64, op: &str) -> CartLine {
        CartLine {
            sku: sku.into(),
            quantity,
            seen_version: 0,
            client_op_id: op.into(),
        }
    }

    fn hold(sku: &str, location: &str, remaining: i64, op: &str) -> HoldLine {
        HoldLine {
            sku: sku.into(),
            location_id: location.into(),
            remaining,
            client_op_id: op.into(),
        }
    }

    fn place(location: &str, available: i64, distance_km: f64) -> Candidate {
        Candidate {
            location_id: location.into(),
            available,
            distance_km,
        }
    }

    fn changes(plan: &HoldPlan) -> Vec<(&str, &str, i64)> {
        plan.changes
            .iter()
            .map(|c| (c.sku.as_str(), c.location_id.as_str(), c.delta))
            .collect()
    }

    #[test]
    fn new_lines_take_from_the_nearest_locations_first() {
        let candidates = BTreeMap::from([(
            "A".to_owned(),
            vec![
                place("far", 10, 900.0),
                place("near", 2, 5.0),
                place("mid", 10, 50.0),
            ],
        )]);
        let plan = plan(&[], &[cart("A", 5, "op1")], &candidates, 100);
        assert_eq!(changes(&plan), [("A", "mid", 3), ("A", "near", 2)]);
        assert_eq!(
            plan.targets["A"],
            LineTarget {
                requested: 5,
                allowed: 5,
                capped: false
            }
        );
    }

    #[test]
    fn removed_lines_and_smaller_quantities_give_back_farthest_first() {
        let current = [
            hold("A", "near", 2, "op1"),
            hold("A", "far", 3, "op1"),
            hold("B", "near", 1, "op1"),
        ];
        let candidates = BTreeMap::from([(
            "A".to_owned(),
            vec![place("near", 0, 5.0), place("far", 0, 900.0)],
        )]);
        let plan = plan(&current, &[cart("A", 1, "op2")], &candidates, 100);
        assert_eq!(
            changes(&plan),
            [("A", "far", -3), ("A", "near", -1), ("B", "near", -1)]
        );
    }

    #[test]
    fn a_retried_edit_changes_nothing() {
        let current = [hold("A", "near", 2, "op7")];
        let candidates = BTreeMap::from([("A".to_owned(), vec![place("near", 10, 1.0)])]);
        let plan = plan(&current, &[cart("A", 5, "op7")], &candidates, 100);
        assert!(plan.changes.is_empty());
        assert_eq!(plan.targets["A"].requested, 2);
    }

    #[test]
    fn the_per_user_cap_limits_holds_in_cart_order() {
        let candidates = BTreeMap::from([
            ("A".to_owned(), vec![place("L", 100, 0.0)]),
            ("B".to_owned(), vec![place("L", 100, 0.0)]),
        ]);
        let plan = plan(&[], &[cart("A", 8, ""), cart("B", 5, "")], &candidates, 10);
        assert_eq!(changes(&plan), [("A", "L", 8), ("B", "L", 2)]);
        assert!(plan.targets["B"].capped);
        assert_eq!(
            line_status(&plan.targets["B"], 2),
            CartLineStatus::CapReached
        );
        assert_eq!(line_status(&plan.targets["A"], 8), CartLineStatus::Held);
    }

    #[test]
    fn statuses_describe_what_was_got() {
        let target = LineTarget {
            requested: 4,
            allowed: 4,
            capped: false,
        };
        assert_eq!(line_status(&target, 4), CartLineStatus::Held);
        assert_eq!(line_status(&target, 1), CartLineStatus::Partial);
        assert_eq!(line_status(&target, 0), CartLineStatus::OutOfStock);
        let removed = LineTarget {
            requested: 0,
            allowed: 0,
            capped: false,
        };
        assert_eq!(line_status(&removed, 0), CartLineStatus::Held);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn arb_case() -> impl Strategy<
            Value = (
                Vec<HoldLine>,
                Vec<CartLine>,
                BTreeMap<String, Vec<Candidate>>,
                i64,
            ),
        > {
            let skus = ["A", "B", "C"];
            let locations = ["L1", "L2", "L3"];
            let held = proptest::collection::btree_map((0..3usize, 0..3usize), 0..5i64, 0..5);
            let cart = proptest::collection::btree_map(0..3usize, 0..8i64, 0..3);
            let free = proptest::collection::btree_map(
                (0..3usize, 0..3usize),
                (0..6i64, 0..1000u32),
                0..9,
            );
            (held, cart, free, 0..20i64).prop_map(move |(held, cart, free, cap)| {
                let current = held
                    .into_iter()
                    .map(|((s, l), remaining)| hold(skus[s], locations[l], remaining, ""))
                    .collect();
                let lines = cart
                    .into_iter()
                    .map(|(s, quantity)| super::cart(skus[s], quantity, ""))
                    .collect();
                let mut candidates: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
                for ((s, l), (available, km)) in free {
                    candidates
                        .entry(skus[s].to_owned())
                        .or_default()
                        .push(place(locations[l], available, f64::from(km)));
                }
                (current, lines, candidates, cap)
            })
        }

        proptest! {
            #[test]
            fn plans_respect_stock_cap_and_what_is_held((current, cart, candidates, cap) in arb_case()) {
                let plan = plan(&current, &cart, &candidates, cap);
                let mut after: BTreeMap<(String, String), i64> = BTreeMap::new();
                for line in &current {
                    *after.entry((line.sku.clone(), line.location_id.clone())).or_default() += line.remaining;
                }
                for change in &plan.changes {
                    if change.delta > 0 {
                        let free = candidates[&change.sku].iter().find(|c| c.location_id == change.location_id).map_or(0, |c| c.available);
                        prop_assert!(change.delta <= free, "took more than available: {change:?}");
                    }
                    let held = after.entry((change.sku.clone(), change.location_id.clone())).or_default();
                    *held += change.delta;
                    prop_assert!(*held >= 0, "gave back more than held: {change:?}");
                }
                let total: i64 = after.values().sum();
                let held_before: i64 = current.iter().map(|l| l.remaining).sum();
                prop_assert!(total <= cap.max(0) || total <= held_before, "cap exceeded: {total} > {cap}");
                for line in &cart {
                    let held: i64 = after.iter().filter(|((s, _), _)| *s == line.sku).map(|(_, q)| *q).sum();
                    let target = &plan.targets[&line.sku];
                    prop_assert!(held <= target.allowed.max(0), "{}: holds {held} > allowed {}", line.sku, target.allowed);
                    let could: i64 = candidates.get(&line.sku).map_or(0, |c| c.iter().map(|c| c.available.max(0)).sum());
                    let before: i64 = current.iter().filter(|l| l.sku == line.sku).map(|l| l.remaining).sum();
                    prop_assert_eq!(held, target.allowed.min(before + could), "{} reaches its target when stock allows", line.sku);
                }
                for sku in current.iter().map(|l| &l.sku) {
                    if !cart.iter().any(|c| &c.sku == sku) {
                        let held: i64 = after.iter().filter(|((s, _), _)| s == sku).map(|(_, q)| *q).sum();
                        prop_assert_eq!(held, 0, "{} left the cart but is still held", sku);
                    }
                }
            }
        }
    }
}
