//! Routing: which centers ship an order, by which method, with which items.
//!
//! Pure and deterministic: the same centers, stock, destination, window, time and weights
//! always give the same plan. A center is a candidate when it is active, not excluded, below
//! the capacity cut-off, and offers a method that reaches the destination inside the window;
//! candidates are scored by distance, load and method (weights from configuration). One
//! shipment from the best-scored center that holds everything is preferred; otherwise the
//! order is split over the fewest centers that together hold every line (up to
//! [`MAX_SHIPMENTS`]), best total score first. When nothing works, every center's reason is
//! reported.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use oms_proto::common::v1::GeoPoint;

use super::{
    Center, Line, Method, MethodOffer,
    schedule::{Promise, promise},
};

/// Most shipments an order is split into.
pub const MAX_SHIPMENTS: usize = 4;
/// Candidates considered for splits (the best-scored ones), to bound the search.
const SPLIT_CANDIDATES: usize = 12;

/// The scoring weights (lower score wins).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Score per kilometre to the destination.
    pub per_km: f64,
    /// Score for a fully loaded center (scaled by the load ratio).
    pub load: f64,
    /// Score per step up from standard to express to same-day (when no method was asked for).
    pub faster_method: f64,
    /// Score added per extra shipment of a split.
    pub per_extra_shipment: f64,
    /// Centers at or above this share of their daily capacity are skipped.
    pub capacity_cutoff: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            per_km: 1.0,
            load: 200.0,
            faster_method: 150.0,
            per_extra_shipment: 300.0,
            capacity_cutoff: 0.95,
        }
    }
}

/// The delivery window the buyer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Not before.
    pub start: DateTime<Utc>,
    /// Arrival promised by this time at the latest.
    pub end: DateTime<Utc>,
}

/// What to route.
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    /// The order's lines.
    pub lines: &'a [Line],
    /// Where it goes.
    pub destination: GeoPoint,
    /// A method the buyer insists on.
    pub method: Option<Method>,
    /// A window the arrival must fall in.
    pub window: Option<Window>,
    /// Centers not to use (a re-plan after a reservation conflict).
    pub exclude: &'a BTreeSet<String>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Available units per (sku, center).
pub type Stock = BTreeMap<(String, String), i64>;

/// One parcel of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The center.
    pub center_id: String,
    /// How it travels.
    pub offer: MethodOffer,
    /// What it carries, in SKU order.
    pub items: Vec<(String, i64)>,
    /// When it arrives.
    pub promise: Promise,
    /// Kilometres from the center to the destination.
    pub distance_km: f64,
    /// The center's load ratio (0..1).
    pub load_ratio: f64,
    /// Why this center and method.
    pub reason: String,
}

/// A routed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The parcels.
    pub shipments: Vec<Allocation>,
    /// Why the plan has this shape.
    pub reason: String,
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no center can ship this order: {}", .reasons.join("; "))]
pub struct NoPlan {
    /// One reason per center, and for the split search.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
struct Candidate<'a> {
    center: &'a Center,
    offer: MethodOffer,
    promise: Promise,
    distance_km: f64,
    load_ratio: f64,
    score: f64,
}

/// Routes `request` over `centers` holding `stock`.
pub fn route(
    request: &RouteRequest<'_>,
    centers: &[Center],
    stock: &Stock,
    weights: &Weights,
) -> Result<Plan, NoPlan> {
    let mut reasons = Vec::new();
    let mut candidates: Vec<Candidate<'_>> = centers
        .iter()
        .filter_map(|center| match candidate(request, center, weights) {
            Ok(candidate) => Some(candidate),
            Err(reason) => {
                reasons.push(format!("{}: {reason}", center.center_id));
                None
            }
        })
        .collect();
    candidates.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then_with(|| a.center.center_id.cmp(&b.center.center_id))
    });

    // One shipment from the best center that holds everything.
    if let Some((rank, whole)) = candidates
        .iter()
        .enumerate()
        .find(|(_, c)| holds_all(request.lines, &c.center.center_id, stock))
    {
        let mut why = describe(whole, "holds every item");
        if rank > 0 {
            let better: Vec<&str> = candidates[..rank]
                .iter()
                .map(|c| c.center.center_id.as_str())
                .collect();
            why.push_str(&format!(
                "; better-placed {} lack some items",
                better.join(", ")
            ));
        }
        let items = request
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity))
            .collect();
        return Ok(Plan {
            shipments: vec![allocation(whole, items, why)],
            reason: "one shipment".into(),
        });
    }
    for candidate in &candidates {
        let missing: Vec<String> = request
            .lines
            .iter()
            .filter(|l| available(stock, &l.sku, &candidate.center.center_id) < l.quantity)
            .map(|l| {
                format!(
                    "{} ({} of {})",
                    l.sku,
                    available(stock, &l.sku, &candidate.center.center_id),
                    l.quantity
                )
            })
            .collect();
        reasons.push(format!(
            "{}: short of {}",
            candidate.center.center_id,
            missing.join(", ")
        ));
    }

    // The fewest centers that together hold every line.
    let pool: Vec<&Candidate<'_>> = candidates.iter().take(SPLIT_CANDIDATES).collect();
    for size in 2..=MAX_SHIPMENTS.min(pool.len()) {
        let mut best: Option<(f64, Vec<Allocation>)> = None;
        for combination in combinations(pool.len(), size) {
            let chosen: Vec<&Candidate<'_>> = combination.iter().map(|&i| pool[i]).collect();
            let Some(split) = allocate(request.lines, &chosen, stock) else {
                continue;
            };
            let score: f64 = chosen.iter().map(|c| c.score).sum::<f64>()
                + weights.per_extra_shipment * (size - 1) as f64;
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, split));
            }
        }
        if let Some((_, shipments)) = best {
            return Ok(Plan {
                reason: format!("split into {size} shipments: no single center holds every item"),
                shipments,
            });
        }
    }
    if candidates.is_empty() {
        reasons.push("no center can reach the destination in time".into());
    } else {
        reasons.push(format!(
            "no combination of up to {MAX_SHIPMENTS} centers holds every item"
        ));
    }
    Err(NoPlan { reasons })
}

fn available(stock: &Stock, sku: &str, center: &str) -> i64 {
    stock
        .get(&(sku.to_owned(), center.to_owned()))
        .copied()
        .unwrap_or(0)
        .max(0)
}

fn holds_all(lines: &[Line], center: &str, stock: &Stock) -> bool {
    lines
        .iter()
        .all(|l| available(stock, &l.sku, center) >= l.quantity)
}

/// The best method of a center for this request, or why the center cannot serve it.
fn candidate<'a>(
    request: &RouteRequest<'_>,
    center: &'a Center,
    weights: &Weights,
) -> Result<Candidate<'a>, String> {
    if !center.active {
        return Err("inactive".into());
    }
    if request.exclude.contains(&center.center_id) {
        return Err("excluded".into());
    }
    if center.daily_capacity == 0 {
        return Err("no daily capacity".into());
    }
    let load_ratio = f64::from(center.current_load) / f64::from(center.daily_capacity);
    if load_ratio >= weights.capacity_cutoff {
        return Err(format!(
            "at {:.0}% of its daily capacity of {}",
            load_ratio * 100.0,
            center.daily_capacity
        ));
    }
    let distance_km = oms_platform::geo::distance_km(&center.point, &request.destination);
    let mut refusals = Vec::new();
    let mut offers: Vec<&MethodOffer> = center.methods.iter().collect();
    offers.sort_by_key(|o| o.method.rank());
    for offer in offers {
        if request.method.is_some_and(|m| m != offer.method) {
            continue;
        }
        if offer.max_km > 0.0 && distance_km > offer.max_km {
            refusals.push(format!(
                "{} reaches {:.0} km, destination is {:.0} km",
                offer.method, offer.max_km, distance_km
            ));
            continue;
        }
        let mut promised = promise(
            request.now,
            center.handling_hours,
            center.cutoff_minute_utc,
            offer.method,
            offer.base_hours,
            offer.per_100km_hours,
            distance_km,
        );
        if let Some(window) = request.window {
            if promised.latest > window.end {
                refusals.push(format!(
                    "{} arrives by {}, the window ends {}",
                    offer.method,
                    promised.latest.format("%Y-%m-%d %H:%M UTC"),
                    window.end.format("%Y-%m-%d %H:%M UTC")
                ));
                continue;
            }
            // Early parcels are scheduled into the window, not delivered before it.
            if promised.earliest < window.start {
                let shift = window.start - promised.earliest;
                promised.earliest += shift;
                promised.latest = (promised.latest + shift).min(window.end);
            }
        }
        let score = distance_km * weights.per_km
            + load_ratio * weights.load
            + f64::from(offer.method.rank()) * weights.faster_method;
        return Ok(Candidate {
            center,
            offer: offer.clone(),
            promise: promised,
            distance_km,
            load_ratio,
            score,
        });
    }
    Err(match (refusals.is_empty(), request.method) {
        (false, _) => refusals.join(", "),
        (true, Some(method)) => format!("does not offer {method}"),
        (true, None) => "offers no shipping method".into(),
    })
}

fn describe(candidate: &Candidate<'_>, what: &str) -> String {
    format!(
        "{} {what}: {:.0} km away, {:.0}% of daily capacity used, {} via {} by {}",
        candidate.center.center_id,
        candidate.distance_km,
        candidate.load_ratio * 100.0,
        candidate.offer.method,
        candidate.offer.carrier,
        candidate.promise.latest.format("%Y-%m-%d %H:%M UTC")
    )
}

fn allocation(candidate: &Candidate<'_>, items: Vec<(String, i64)>, reason: String) -> Allocation {
    Allocation {
        center_id: candidate.center.center_id.clone(),
        offer: candidate.offer.clone(),
        items,
        promise: candidate.promise,
        distance_km: candidate.distance_km,
        load_ratio: candidate.load_ratio,
        reason,
    }
}

/// Splits the lines over `chosen` (best-scored first takes first); `None` when they do not hold
/// every line or one of them would carry nothing (a smaller split would then do).
fn allocate(lines: &[Line], chosen: &[&Candidate<'_>], stock: &Stock) -> Option<Vec<Allocation>> {
    let mut items: Vec<BTreeMap<String, i64>> = vec![BTreeMap::new(); chosen.len()];
    for line in lines {
        let mut needed = line.quantity;
        for (slot, candidate) in chosen.iter().enumerate() {
            if needed == 0 {
                break;
            }
            let take = available(stock, &line.sku, &candidate.center.center_id).min(needed);
            if take > 0 {
                *items[slot].entry(line.sku.clone()).or_default() += take;
                needed -= take;
            }
        }
        if needed > 0 {
            return None;
        }
    }
    if items.iter().any(BTreeMap::is_empty) {
        return None;
    }
    Some(
        chosen
            .iter()
            .zip(items)
            .map(|(candidate, items)| {
                let carried: Vec<String> = items
                    .iter()
                    .map(|(sku, q)| format!("{q} x {sku}"))
                    .collect();
                let reason = describe(candidate, &format!("ships {}", carried.join(", ")));
                allocation(candidate, items.into_iter().collect(), reason)
            })
            .collect(),
    )
}

/// Every `size`-subset of `0..n`, in lexicographic order.
fn combinations(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(size);
    fn walk(
        start: usize,
        n: usize,
        size: usize,
        current: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if current.len() == size {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            current.push(i);
            walk(i + 1, n, size, current, out);
            current.pop();
        }
    }
    walk(0, n, size, &mut current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::{center, line, now, stock};

    const BERLIN: GeoPoint = GeoPoint {
        lat: 52.52,
        lng: 13.40,
    };

    fn route_simple(lines: &[Line], centers: &[Center], stock: &Stock) -> Result<Plan, NoPlan> {
        let exclude = BTreeSet::new();
        let request = RouteRequest {
            lines,
            destination: BERLIN,
            method: None,
            window: None,
            exclude: &exclude,
            now: now(),
        };
        route(&request, centers, stock, &Weights::default())
    }

    #[test]
    fn the_nearest_center_with_stock_wins() {
        let centers = [
            center("fc-berlin", 52.50, 13.30, 0),
            center("fc-munich", 48.14, 11.58, 0),
        ];
        let stock = stock(&[("A", "fc-berlin", 5), ("A", "fc-munich", 5)]);
        let plan = route_simple(&[line("A", 2)], &centers, &stock).unwrap();
        assert_eq!(plan.shipments.len(), 1);
        assert_eq!(plan.shipments[0].center_id, "fc-berlin");
        assert_eq!(
            plan.shipments[0].offer.method,
            Method::Standard,
            "cheapest method when none asked"
        );
        assert!(
            plan.shipments[0]
                .reason
                .contains("fc-berlin holds every item"),
            "{}",
            plan.shipments[0].reason
        );
    }

    #[test]
    fn a_full_center_is_skipped_and_a_busy_one_penalised() {
        let centers = [
            center("fc-berlin", 52.50, 13.30, 97),
            center("fc-munich", 48.14, 11.58, 0),
        ];
        let berlin_or_munich = stock(&[("A", "fc-berlin", 5), ("A", "fc-munich", 5)]);
        let plan = route_simple(&[line("A", 1)], &centers, &berlin_or_munich).unwrap();
        assert_eq!(plan.shipments[0].center_id, "fc-munich");
        // 90% loaded is not skipped, but a close idle center beats it.
        let centers = [
            center("fc-a", 52.50, 13.30, 90),
            center("fc-b", 52.40, 13.10, 0),
        ];
        let stock = stock(&[("A", "fc-a", 5), ("A", "fc-b", 5)]);
        assert_eq!(
            route_simple(&[line("A", 1)], &centers, &stock)
                .unwrap()
                .shipments[0]
                .center_id,
            "fc-b"
        );
    }

    #[test]
    fn a_tight_window_is_met_only_by_a_farther_express_center() {
        // The near center offers standard only; the far one offers express, which fits.
        let mut near = center("fc-near", 52.50, 13.30, 0);
        near.methods.retain(|m| m.method == Method::Standard);
        let far = center("fc-far", 48.14, 11.58, 0);
        let stock = stock(&[("A", "fc-near", 5), ("A", "fc-far", 5)]);
        let exclude = BTreeSet::new();
        let lines = [line("A", 1)];
        let window = Window {
            start: now(),
            end: now() + chrono::Duration::hours(40),
        };
        let request = RouteRequest {
            lines: &lines,
            destination: BERLIN,
            method: None,
            window: Some(window),
            exclude: &exclude,
            now: now(),
        };
        let plan = route(&request, &[near, far], &stock, &Weights::default()).unwrap();
        assert_eq!(plan.shipments[0].center_id, "fc-far");
        assert_eq!(plan.shipments[0].offer.method, Method::Express);
        assert!(plan.shipments[0].promise.latest <= window.end);
    }

    #[test]
    fn a_forced_split_uses_the_fewest_shipments() {
        let centers = [
            center("fc-a", 52.50, 13.30, 0),
            center("fc-b", 51.34, 12.37, 0),
            center("fc-c", 50.11, 8.68, 0),
            center("fc-d", 48.14, 11.58, 0),
        ];
        // A only at a and b (not enough at either alone); B only at c; C at d and c.
        let stock = stock(&[
            ("A", "fc-a", 2),
            ("A", "fc-b", 2),
            ("B", "fc-c", 1),
            ("C", "fc-c", 1),
            ("C", "fc-d", 9),
        ]);
        let lines = [line("A", 2), line("B", 1), line("C", 1)];
        let plan = route_simple(&lines, &centers, &stock).unwrap();
        assert_eq!(plan.shipments.len(), 2, "{plan:#?}");
        let used: Vec<&str> = plan
            .shipments
            .iter()
            .map(|s| s.center_id.as_str())
            .collect();
        assert!(used.contains(&"fc-c"), "only fc-c has B");
        assert!(plan.reason.starts_with("split into 2 shipments"));
        // A line may itself be split when no center has enough of it.
        let plan = route_simple(&[line("A", 4)], &centers, &stock).unwrap();
        assert_eq!(plan.shipments.len(), 2);
        assert!(
            plan.shipments
                .iter()
                .all(|s| s.items == [("A".to_owned(), 2)])
        );
    }

    #[test]
    fn no_feasible_plan_says_why_for_every_center() {
        let mut slow = center("fc-slow", 48.14, 11.58, 0);
        slow.methods.retain(|m| m.method == Method::Standard);
        let full = center("fc-full", 52.50, 13.30, 100);
        let stock = stock(&[("A", "fc-slow", 5), ("A", "fc-full", 5)]);
        let exclude = BTreeSet::new();
        let lines = [line("A", 1)];
        let window = Window {
            start: now(),
            end: now() + chrono::Duration::hours(20),
        };
        let request = RouteRequest {
            lines: &lines,
            destination: BERLIN,
            method: None,
            window: Some(window),
            exclude: &exclude,
            now: now(),
        };
        let error = route(&request, &[slow, full], &stock, &Weights::default()).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("fc-full: at 100% of its daily capacity"),
            "{text}"
        );
        assert!(text.contains("fc-slow: standard arrives by"), "{text}");
        assert!(text.contains("the window ends"), "{text}");
        let none_in_stock = route_simple(
            &[line("Z", 1)],
            &[center("fc-a", 52.5, 13.3, 0)],
            &Stock::new(),
        )
        .unwrap_err();
        assert!(
            none_in_stock
                .to_string()
                .contains("fc-a: short of Z (0 of 1)"),
            "{none_in_stock}"
        );
    }

    #[test]
    fn same_input_same_plan() {
        let centers = [
            center("fc-a", 52.0, 13.0, 10),
            center("fc-b", 52.0, 13.0, 10),
        ];
        let stock = stock(&[("A", "fc-a", 5), ("A", "fc-b", 5)]);
        let first = route_simple(&[line("A", 1)], &centers, &stock).unwrap();
        for _ in 0..5 {
            assert_eq!(
                route_simple(&[line("A", 1)], &centers, &stock).unwrap(),
                first
            );
        }
        assert_eq!(
            first.shipments[0].center_id, "fc-a",
            "ties break by center id"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn plans_never_exceed_stock_or_capacity_and_cover_every_line_exactly(
                quantities in proptest::collection::vec(1..6i64, 1..4),
                holdings in proptest::collection::vec(proptest::collection::vec(0..6i64, 4), 1..4),
                loads in proptest::collection::vec(0..110u32, 4),
            ) {
                let names = ["fc-a", "fc-b", "fc-c", "fc-d"];
                let centers: Vec<Center> = names.iter().zip(&loads).enumerate()
                    .map(|(i, (name, load))| center(name, 50.0 + i as f64, 10.0 + i as f64, *load))
                    .collect();
                let lines: Vec<Line> = quantities.iter().enumerate().map(|(i, q)| line(&format!("S{i}"), *q)).collect();
                let mut given = Stock::new();
                for (i, per_center) in holdings.iter().enumerate() {
                    for (c, units) in per_center.iter().enumerate() {
                        given.insert((format!("S{i}"), names[c].to_owned()), *units);
                    }
                }
                let Ok(plan) = route_simple(&lines, &centers, &given) else { return Ok(()); };
                let mut allocated: BTreeMap<(String, String), i64> = BTreeMap::new();
                for shipment in &plan.shipments {
                    let used = centers.iter().find(|c| c.center_id == shipment.center_id).unwrap();
                    prop_assert!(f64::from(used.current_load) / f64::from(used.daily_capacity) < Weights::default().capacity_cutoff);
                    for (sku, q) in &shipment.items {
                        *allocated.entry((sku.clone(), shipment.center_id.clone())).or_default() += q;
                    }
                }
                for ((sku, center), q) in &allocated {
                    prop_assert!(*q <= available(&given, sku, center), "{sku}@{center}: {q} allocated");
                }
                for l in &lines {
                    let total: i64 = allocated.iter().filter(|((s, _), _)| *s == l.sku).map(|(_, q)| *q).sum();
                    prop_assert_eq!(total, l.quantity, "{} covered exactly", &l.sku);
                }
                prop_assert!(plan.shipments.len() <= MAX_SHIPMENTS);
            }
        }
    }
}
