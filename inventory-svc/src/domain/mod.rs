//! Inventory rules without I/O: request validation, reservation states, hold planning,
//! low-stock crossings and the audit comparison. The store applies what these decide.

pub mod audit;
pub mod holds;
pub mod validate;

use std::collections::BTreeMap;

use oms_platform::error::{ApiError, PreconditionViolation};
use oms_proto::inventory::v1 as pb;

/// Most lines in one reservation or cart.
pub const MAX_LINES: usize = 100;
/// Most units of one line of a reservation.
pub const MAX_LINE_QUANTITY: u32 = 100_000;
/// Most units received or adjusted in one call.
pub const MAX_RECEIPT_QUANTITY: i64 = 10_000_000;
/// Longest reason text.
pub const MAX_REASON_LEN: usize = 500;

/// Why stock moved (the ledger's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// Goods arrived.
    Receipt,
    /// A count, damage or loss corrected on-hand stock.
    Adjustment,
    /// Stock was held for an order or a cart.
    Reserve,
    /// Held stock was given back.
    Release,
    /// A hold lapsed.
    Expire,
    /// Held stock shipped.
    Commit,
    /// Returned goods went back on the shelf.
    ReturnRestock,
    /// Returned goods were damaged and did not.
    WriteOff,
}

impl MovementKind {
    /// The ledger's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Adjustment => "adjustment",
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Expire => "expire",
            Self::Commit => "commit",
            Self::ReturnRestock => "return_restock",
            Self::WriteOff => "write_off",
        }
    }

    /// Reads the ledger's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Receipt,
            Self::Adjustment,
            Self::Reserve,
            Self::Release,
            Self::Expire,
            Self::Commit,
            Self::ReturnRestock,
            Self::WriteOff,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// The wire enum.
    pub fn to_proto(self) -> pb::MovementKind {
        match self {
            Self::Receipt => pb::MovementKind::Receipt,
            Self::Adjustment => pb::MovementKind::Adjustment,
            Self::Reserve => pb::MovementKind::Reserve,
            Self::Release => pb::MovementKind::Release,
            Self::Expire => pb::MovementKind::Expire,
            Self::Commit => pb::MovementKind::Commit,
            Self::ReturnRestock => pb::MovementKind::ReturnRestock,
            Self::WriteOff => pb::MovementKind::WriteOff,
        }
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Everything still held.
    Active,
    /// Some units committed or released, some still held.
    Partial,
    /// Nothing held any more, something shipped.
    Committed,
    /// Nothing held any more, nothing shipped.
    Released,
    /// The sweeper gave the stock back after the TTL.
    Expired,
}

impl ReservationStatus {
    /// The table's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Partial => "partial",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    /// Reads the table's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Partial,
            Self::Committed,
            Self::Released,
            Self::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Whether stock is still held under it.
    pub fn holds_stock(self) -> bool {
        matches!(self, Self::Active | Self::Partial)
    }

    /// The wire enum.
    pub fn to_proto(self) -> pb::ReservationStatus {
        match self {
            Self::Active => pb::ReservationStatus::Active,
            Self::Partial => pb::ReservationStatus::Partial,
            Self::Committed => pb::ReservationStatus::Committed,
            Self::Released => pb::ReservationStatus::Released,
            Self::Expired => pb::ReservationStatus::Expired,
        }
    }
}

/// Quantities of one reservation line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineProgress {
    /// Units reserved.
    pub quantity: i64,
    /// Units shipped.
    pub committed: i64,
    /// Units given back.
    pub released: i64,
}

/// The status a reservation has after its lines moved on (expiry is decided elsewhere).
pub fn status_after(lines: &[LineProgress]) -> ReservationStatus {
    let remaining: i64 = lines
        .iter()
        .map(|l| l.quantity - l.committed - l.released)
        .sum();
    let committed: i64 = lines.iter().map(|l| l.committed).sum();
    let released: i64 = lines.iter().map(|l| l.released).sum();
    match (remaining, committed, released) {
        (0, c, _) if c > 0 => ReservationStatus::Committed,
        (0, _, _) => ReservationStatus::Released,
        (_, 0, 0) => ReservationStatus::Active,
        _ => ReservationStatus::Partial,
    }
}

/// Whether available stock crossed the low-stock threshold: `Some(true)` when it fell to or
/// below it, `Some(false)` when it rose above it again, `None` when nothing crossed.
pub fn low_stock_crossing(before: i64, after: i64, threshold: i64) -> Option<bool> {
    if threshold <= 0 {
        return None;
    }
    match (before > threshold, after > threshold) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// How many rows of a sync page to return. `seqs` are the change sequences of the rows fetched
/// (ascending; one more than `limit` when there is more). Rows sharing a sequence come from one
/// sequencer batch and the cursor is the last row's sequence, so a page never ends inside a
/// batch. Returns (rows to return, more follow); `(0, true)` means the first batch alone is
/// larger than `limit` and must be returned whole.
pub fn sync_page(seqs: &[i64], limit: usize) -> (usize, bool) {
    if seqs.len() <= limit {
        return (seqs.len(), false);
    }
    let boundary = seqs[limit];
    let whole_batches = seqs[..limit].iter().filter(|seq| **seq < boundary).count();
    (whole_batches, true)
}

/// One line of a reservation request, validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineRequest {
    /// The SKU.
    pub sku: String,
    /// Where.
    pub location_id: String,
    /// Units, at least 1.
    pub quantity: i64,
}

/// A line that could not be reserved in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The SKU.
    pub sku: String,
    /// Where.
    pub location_id: String,
    /// Units asked for.
    pub requested: i64,
    /// Units that were available.
    pub available: i64,
}

/// A cart hold line of the buyer, to be converted at checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldUnits {
    /// The SKU.
    pub sku: String,
    /// Where it is held.
    pub location_id: String,
    /// Units still held.
    pub remaining: i64,
}

/// How a reservation with hold conversion changes the levels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReservationDeltas {
    /// Net change of `reserved` per (sku, location), in lock order.
    pub net: BTreeMap<(String, String), i64>,
    /// Hold units released per (sku, location): every hold on an ordered SKU ends at checkout.
    pub hold_releases: BTreeMap<(String, String), i64>,
}

/// The level changes of reserving `lines` for a buyer holding `holds`: the buyer's holds on
/// the ordered SKUs are released in the same transaction, so their units can serve the order
/// without anyone else taking them in between.
pub fn reservation_deltas(lines: &[LineRequest], holds: &[HeldUnits]) -> ReservationDeltas {
    let mut deltas = ReservationDeltas::default();
    for line in lines {
        *deltas
            .net
            .entry((line.sku.clone(), line.location_id.clone()))
            .or_default() += line.quantity;
    }
    for hold in holds {
        if hold.remaining <= 0 || !lines.iter().any(|l| l.sku == hold.sku) {
            continue;
        }
        let key = (hold.sku.clone(), hold.location_id.clone());
        *deltas.net.entry(key.clone()).or_default() -= hold.remaining;
        *deltas.hold_releases.entry(key).or_default() += hold.remaining;
    }
    deltas
}

/// What can go wrong, in inventory's words.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The request is malformed.
    #[error(transparent)]
    Invalid(#[from] ApiError),
    /// No such SKU.
    #[error("sku {0} not found")]
    UnknownSku(String),
    /// No such location.
    #[error("location {0} not found")]
    UnknownLocation(String),
    /// No such reservation.
    #[error("reservation {0} not found")]
    UnknownReservation(String),
    /// Some lines do not fit; nothing was reserved.
    #[error("out of stock")]
    OutOfStock(Vec<Shortfall>),
    /// The reservation no longer holds stock.
    #[error("reservation {id} is {status}")]
    NotActive {
        /// The reservation.
        id: String,
        /// Its status.
        status: String,
    },
    /// Commit or release of more than the line still holds.
    #[error(
        "reservation {reservation} holds {remaining} of {sku} at {location_id}, not {requested}"
    )]
    ExceedsHeld {
        /// The reservation.
        reservation: String,
        /// The SKU.
        sku: String,
        /// Where.
        location_id: String,
        /// Units asked for.
        requested: i64,
        /// Units still held.
        remaining: i64,
    },
    /// An adjustment would leave less on hand than is reserved (or below zero).
    #[error(
        "adjusting {sku} at {location_id} by {delta} would leave {on_hand_after} on hand with {reserved} reserved"
    )]
    BelowReserved {
        /// The SKU.
        sku: String,
        /// Where.
        location_id: String,
        /// The change asked for.
        delta: i64,
        /// What would be left.
        on_hand_after: i64,
        /// What is reserved.
        reserved: i64,
    },
    /// An event could not be built (a bug: ids are validated before).
    #[error("event: {0}")]
    Event(#[from] oms_platform::bus::BusError),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Invalid(api) => api,
            InventoryError::UnknownSku(sku) => ApiError::NotFound(format!("sku {sku}")),
            InventoryError::UnknownLocation(location) => {
                ApiError::NotFound(format!("location {location}"))
            }
            InventoryError::UnknownReservation(id) => {
                ApiError::NotFound(format!("reservation {id}"))
            }
            InventoryError::OutOfStock(shortfalls) => {
                let summary = shortfalls
                    .iter()
                    .map(|s| {
                        format!(
                            "{} at {}: {} requested, {} available",
                            s.sku, s.location_id, s.requested, s.available
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::FailedPrecondition {
                    message: format!("out of stock: {summary}"),
                    violations: shortfalls
                        .into_iter()
                        .map(|s| PreconditionViolation {
                            kind: "OUT_OF_STOCK".into(),
                            subject: format!("sku/{}/location/{}", s.sku, s.location_id),
                            description: format!(
                                "short by {} ({} requested, {} available)",
                                s.requested - s.available,
                                s.requested,
                                s.available
                            ),
                        })
                        .collect(),
                }
            }
            error @ (InventoryError::NotActive { .. }
            | InventoryError::ExceedsHeld { .. }
            | InventoryError::BelowReserved { .. }) => ApiError::FailedPrecondition {
                message: error.to_string(),
                violations: Vec::new(),
            },
            InventoryError::Db(db) if oms_platform::db::is_unique_violation(&db) => {
                ApiError::Aborted("a concurrent request changed the same data; retry".into())
            }
            InventoryError::Db(db) => ApiError::internal(db),
            InventoryError::Event(event) => ApiError::internal(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(quantity: i64, committed: i64, released: i64) -> LineProgress {
        LineProgress {
            quantity,
            committed,
            released,
        }
    }

    #[test]
    fn status_follows_the_lines() {
        use ReservationStatus::*;
        let table = [
            (vec![progress(3, 0, 0)], Active),
            (vec![progress(3, 1, 0)], Partial),
            (vec![progress(3, 0, 1)], Partial),
            (vec![progress(3, 3, 0)], Committed),
            (vec![progress(3, 2, 1)], Committed),
            (vec![progress(3, 0, 3)], Released),
            (vec![progress(3, 3, 0), progress(2, 0, 0)], Partial),
            (vec![progress(3, 3, 0), progress(2, 0, 2)], Committed),
        ];
        for (lines, expected) in table {
            assert_eq!(status_after(&lines), expected, "{lines:?}");
        }
    }

    #[test]
    fn low_stock_fires_on_crossings_only() {
        assert_eq!(low_stock_crossing(11, 10, 10), Some(true));
        assert_eq!(low_stock_crossing(11, 0, 10), Some(true));
        assert_eq!(low_stock_crossing(10, 9, 10), None);
        assert_eq!(low_stock_crossing(5, 11, 10), Some(false));
        assert_eq!(low_stock_crossing(20, 15, 10), None);
        assert_eq!(low_stock_crossing(20, 0, 0), None, "no threshold, no alert");
    }

    fn line(sku: &str, location: &str, quantity: i64) -> LineRequest {
        LineRequest {
            sku: sku.into(),
            location_id: location.into(),
            quantity,
        }
    }

    fn hold(sku: &str, location: &str, remaining: i64) -> HeldUnits {
        HeldUnits {
            sku: sku.into(),
            location_id: location.into(),
            remaining,
        }
    }

    #[test]
    fn checkout_converts_the_buyers_holds_on_ordered_skus() {
        let lines = [line("A", "L1", 3), line("B", "L2", 1)];
        let holds = [hold("A", "L1", 2), hold("A", "L3", 1), hold("C", "L1", 5)];
        let deltas = reservation_deltas(&lines, &holds);
        let net: Vec<_> = deltas
            .net
            .iter()
            .map(|((s, l), d)| (s.as_str(), l.as_str(), *d))
            .collect();
        // A@L1: +3 ordered -2 hold; A@L3: the other hold on A ends; B untouched by holds;
        // the hold on C (not ordered) stays.
        assert_eq!(net, [("A", "L1", 1), ("A", "L3", -1), ("B", "L2", 1)]);
        let released: Vec<_> = deltas
            .hold_releases
            .iter()
            .map(|((s, l), q)| (s.as_str(), l.as_str(), *q))
            .collect();
        assert_eq!(released, [("A", "L1", 2), ("A", "L3", 1)]);
    }

    #[test]
    fn deltas_are_in_lock_order() {
        let lines = [line("Z", "L1", 1), line("A", "L2", 1), line("A", "L1", 1)];
        let deltas = reservation_deltas(&lines, &[]);
        let keys: Vec<_> = deltas.net.keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn out_of_stock_names_each_short_line() {
        let error = ApiError::from(InventoryError::OutOfStock(vec![Shortfall {
            sku: "A".into(),
            location_id: "L".into(),
            requested: 5,
            available: 2,
        }]));
        let ApiError::FailedPrecondition {
            message,
            violations,
        } = error
        else {
            panic!("expected FailedPrecondition");
        };
        assert!(
            message.contains("A at L: 5 requested, 2 available"),
            "{message}"
        );
        assert_eq!(
            violations[0].description,
            "short by 3 (5 requested, 2 available)"
        );
    }

    #[test]
    fn sync_pages_never_end_inside_a_batch() {
        assert_eq!(sync_page(&[1, 2, 3], 5), (3, false));
        assert_eq!(sync_page(&[1, 2, 3], 3), (3, false));
        assert_eq!(sync_page(&[1, 2, 3, 4], 3), (3, true));
        assert_eq!(
            sync_page(&[1, 2, 2, 2], 3),
            (1, true),
            "batch 2 continues past the limit"
        );
        assert_eq!(
            sync_page(&[5, 5, 5, 5], 3),
            (0, true),
            "one batch larger than the page"
        );
        assert_eq!(sync_page(&[], 3), (0, false));
    }

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in [
            "receipt",
            "adjustment",
            "reserve",
            "release",
            "expire",
            "commit",
            "return_restock",
            "write_off",
        ] {
            assert_eq!(MovementKind::parse(kind).unwrap().as_str(), kind);
        }
        for status in ["active", "partial", "committed", "released", "expired"] {
            assert_eq!(ReservationStatus::parse(status).unwrap().as_str(), status);
        }
        assert!(MovementKind::parse("teleport").is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn reservation_deltas_conserve_units(
                ordered in proptest::collection::btree_map((0..3u8, 0..3u8), 1..50i64, 1..6),
                held in proptest::collection::btree_map((0..3u8, 0..3u8), 0..50i64, 0..6),
            ) {
                let lines: Vec<LineRequest> = ordered.iter().map(|((s, l), q)| line(&format!("S{s}"), &format!("L{l}"), *q)).collect();
                let holds: Vec<HeldUnits> = held.iter().map(|((s, l), q)| hold(&format!("S{s}"), &format!("L{l}"), *q)).collect();
                let deltas = reservation_deltas(&lines, &holds);
                let ordered_total: i64 = lines.iter().map(|l| l.quantity).sum();
                let released: i64 = deltas.hold_releases.values().sum();
                let net: i64 = deltas.net.values().sum();
                prop_assert_eq!(net, ordered_total - released);
                // Only holds on ordered SKUs end, and all of them do.
                let expected: i64 = holds.iter().filter(|h| lines.iter().any(|l| l.sku == h.sku)).map(|h| h.remaining).sum();
                prop_assert_eq!(released, expected);
            }
        }
    }
}
