//! Request validation: every field checked, every problem reported at once, nothing changed
//! before the request is known to be well-formed.

use std::{collections::BTreeSet, time::Duration};

use oms_platform::{
    error::{ApiError, Violations},
    idempotency,
};
use oms_proto::inventory::v1 as pb;

use super::{LineRequest, MAX_LINE_QUANTITY, MAX_LINES, MAX_REASON_LEN, MAX_RECEIPT_QUANTITY};

/// Longest reservation TTL a caller may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);
/// Most units of one SKU in a cart.
pub const MAX_CART_QUANTITY: u32 = 1_000;
/// Most SKUs in one availability or sync query.
pub const MAX_QUERY_SKUS: usize = 500;

/// A validated `Reserve`.
#[derive(Debug, Clone)]
pub struct ReserveCommand {
    /// The order.
    pub order_id: String,
    /// Lines sorted in lock order.
    pub lines: Vec<LineRequest>,
    /// `None` = the server default.
    pub ttl: Option<Duration>,
    /// Never expires: the caller releases it (`ttl` does not apply).
    pub until_released: bool,
    /// Whose holds convert.
    pub user_id: Option<String>,
    /// A retry with this key returns the first reservation.
    pub idempotency_key: String,
}

/// A validated cart line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    /// The SKU.
    pub sku: String,
    /// Units wanted (0 = remove).
    pub quantity: i64,
    /// The SKU version the app last saw (0 = unknown).
    pub seen_version: i64,
    /// The app's id for this edit.
    pub client_op_id: String,
}

fn lines(
    violations: &mut Violations,
    field: &str,
    lines: &[pb::ReservationLine],
    required: bool,
) -> Vec<LineRequest> {
    if required && lines.is_empty() {
        violations.add(field, "at least one line is required");
    }
    if lines.len() > MAX_LINES {
        violations.add(field, format!("at most {MAX_LINES} lines"));
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    let mut valid = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let at = format!("{field}[{i}]");
        violations.id(format!("{at}.sku"), &line.sku);
        violations.id(format!("{at}.location_id"), &line.location_id);
        if line.quantity == 0 {
            violations.add(format!("{at}.quantity"), "must be at least 1");
        } else if line.quantity > MAX_LINE_QUANTITY {
            violations.add(
                format!("{at}.quantity"),
                format!("at most {MAX_LINE_QUANTITY}"),
            );
        }
        if !seen.insert((line.sku.as_str(), line.location_id.as_str())) {
            violations.add(
                at,
                format!("duplicate line for {} at {}", line.sku, line.location_id),
            );
        }
        valid.push(LineRequest {
            sku: line.sku.clone(),
            location_id: line.location_id.clone(),
            quantity: i64::from(line.quantity),
        });
    }
    valid.sort();
    valid
}

/// Checks `Reserve`.
pub fn reserve(request: &pb::ReserveRequest) -> Result<ReserveCommand, ApiError> {
    let mut v = Violations::new();
    v.id("order_id", &request.order_id);
    let lines = lines(&mut v, "lines", &request.lines, true);
    let ttl = match request.ttl_seconds {
        0 => None,
        seconds => Some(Duration::from_secs(u64::from(seconds))),
    };
    if ttl.is_some_and(|ttl| ttl > MAX_TTL) {
        v.add(
            "ttl_seconds",
            format!("at most {} seconds", MAX_TTL.as_secs()),
        );
    }
    if !request.user_id.is_empty() {
        v.id("user_id", &request.user_id);
    }
    v.into_result()?;
    idempotency::check_key("idempotency_key", &request.idempotency_key)?;
    Ok(ReserveCommand {
        order_id: request.order_id.clone(),
        lines,
        ttl,
        until_released: request.until_released,
        user_id: (!request.user_id.is_empty()).then(|| request.user_id.clone()),
        idempotency_key: request.idempotency_key.clone(),
    })
}

/// Checks the reservation id, optional lines and key of `Commit` / `Release`.
pub fn settle(
    reservation_id: &str,
    request_lines: &[pb::ReservationLine],
    idempotency_key: &str,
    reason: Option<&str>,
) -> Result<Vec<LineRequest>, ApiError> {
    let mut v = Violations::new();
    if reservation_id.is_empty() || reservation_id.len() > 80 {
        v.add("reservation_id", "required, at most 80 characters");
    }
    let lines = lines(&mut v, "lines", request_lines, false);
    if let Some(reason) = reason {
        v.text("reason", reason, MAX_REASON_LEN, false);
    }
    v.into_result()?;
    idempotency::check_key("idempotency_key", idempotency_key)?;
    Ok(lines)
}

/// Checks an order id given to find its reservation.
pub fn order_id(order_id: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.id("order_id", order_id);
    v.into_result()
}

/// Checks `Receive`.
pub fn receive(request: &pb::ReceiveRequest) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.id("sku", &request.sku);
    v.id("location_id", &request.location_id);
    if request.quantity == 0 || i64::from(request.quantity) > MAX_RECEIPT_QUANTITY {
        v.add(
            "quantity",
            format!("must be between 1 and {MAX_RECEIPT_QUANTITY}"),
        );
    }
    v.text("reason", &request.reason, MAX_REASON_LEN, true);
    v.into_result()?;
    idempotency::check_key("idempotency_key", &request.idempotency_key)
}

/// Checks `Adjust`.
pub fn adjust(request: &pb::AdjustRequest) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.id("sku", &request.sku);
    v.id("location_id", &request.location_id);
    if request.delta == 0 || request.delta.unsigned_abs() > MAX_RECEIPT_QUANTITY.unsigned_abs() {
        v.add(
            "delta",
            format!("must be non-zero and at most {MAX_RECEIPT_QUANTITY} either way"),
        );
    }
    v.text("reason", &request.reason, MAX_REASON_LEN, true);
    v.into_result()?;
    idempotency::check_key("idempotency_key", &request.idempotency_key)
}

/// Checks `Restock`.
pub fn restock(request: &pb::RestockRequest) -> Result<(), ApiError> {
    let mut v = Violations::new();
    v.id("order_id", &request.order_id);
    v.id("return_id", &request.return_id);
    if request.lines.is_empty() {
        v.add("lines", "at least one line is required");
    }
    if request.lines.len() > MAX_LINES {
        v.add("lines", format!("at most {MAX_LINES} lines"));
    }
    let mut seen = BTreeSet::new();
    for (i, line) in request.lines.iter().enumerate() {
        let at = format!("lines[{i}]");
        v.id(format!("{at}.sku"), &line.sku);
        v.id(format!("{at}.location_id"), &line.location_id);
        if line.quantity == 0 || line.quantity > MAX_LINE_QUANTITY {
            v.add(
                format!("{at}.quantity"),
                format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            );
        }
        if !matches!(
            pb::ItemCondition::try_from(line.condition),
            Ok(pb::ItemCondition::Sellable | pb::ItemCondition::Damaged)
        ) {
            v.add(format!("{at}.condition"), "must be SELLABLE or DAMAGED");
        }
        if !seen.insert((line.sku.as_str(), line.location_id.as_str(), line.condition)) {
            v.add(at, "duplicate line");
        }
    }
    v.into_result()?;
    idempotency::check_key("idempotency_key", &request.idempotency_key)
}

/// Checks a SKU definition.
pub fn sku(sku: Option<&pb::Sku>) -> Result<pb::Sku, ApiError> {
    let Some(sku) = sku else {
        return Err(ApiError::invalid("sku", "required"));
    };
    let mut v = Violations::new();
    v.id("sku.sku", &sku.sku);
    v.text("sku.name", &sku.name, 200, true);
    if sku.weight_grams > 1_000_000 {
        v.add("sku.weight_grams", "at most 1,000,000 g");
    }
    let hs_digits = sku
        .hs_code
        .chars()
        .filter(|c| c != &'.')
        .collect::<String>();
    if !sku.hs_code.is_empty()
        && (!(6..=10).contains(&hs_digits.len()) || !hs_digits.chars().all(|c| c.is_ascii_digit()))
    {
        v.add("sku.hs_code", "6 to 10 digits (dots allowed)");
    }
    if !sku.origin_country.is_empty() {
        v.country("sku.origin_country", &sku.origin_country);
    }
    if sku.low_stock_threshold > MAX_RECEIPT_QUANTITY as u32 {
        v.add("sku.low_stock_threshold", "too large");
    }
    v.into_result()?;
    Ok(pb::Sku {
        hs_code: hs_digits,
        ..sku.clone()
    })
}

/// Checks a location definition.
pub fn location(location: Option<&pb::Location>) -> Result<pb::Location, ApiError> {
    let Some(location) = location else {
        return Err(ApiError::invalid("location", "required"));
    };
    let mut v = Violations::new();
    v.id("location.location_id", &location.location_id);
    v.text("location.name", &location.name, 200, true);
    match &location.point {
        Some(point) => v.point("location.point", point),
        None => v.add("location.point", "required"),
    }
    v.country("location.country_code", &location.country_code);
    v.into_result()?;
    Ok(location.clone())
}

/// Checks a list of SKUs for a query (`required`: at least one).
pub fn query_skus(skus: &[String], required: bool) -> Result<(), ApiError> {
    let mut v = Violations::new();
    if required && skus.is_empty() {
        v.add("skus", "at least one SKU is required");
    }
    if skus.len() > MAX_QUERY_SKUS {
        v.add("skus", format!("at most {MAX_QUERY_SKUS}"));
    } else {
        for (i, sku) in skus.iter().enumerate() {
            v.id(format!("skus[{i}]"), sku);
        }
    }
    v.into_result()
}

/// Checks `GetAvailability`.
pub fn availability(request: &pb::GetAvailabilityRequest) -> Result<(), ApiError> {
    query_skus(&request.skus, true)?;
    let mut v = Violations::new();
    if let Some(near) = &request.near {
        v.point("near", near);
    }
    if request.location_ids.len() > MAX_LINES {
        v.add("location_ids", format!("at most {MAX_LINES}"));
    }
    for (i, id) in request.location_ids.iter().enumerate() {
        v.id(format!("location_ids[{i}]"), id);
    }
    if !request.user_id.is_empty() {
        v.id("user_id", &request.user_id);
    }
    v.into_result()
}

/// Checks `SyncCart` and returns the cart lines.
pub fn cart(request: &pb::SyncCartRequest) -> Result<Vec<CartLine>, ApiError> {
    let mut v = Violations::new();
    v.id("user_id", &request.user_id);
    if request.lines.len() > MAX_LINES {
        v.add("lines", format!("at most {MAX_LINES} lines"));
    }
    if let Some(near) = &request.near {
        v.point("near", near);
    }
    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(request.lines.len());
    for (i, line) in request.lines.iter().take(MAX_LINES).enumerate() {
        let at = format!("lines[{i}]");
        v.id(format!("{at}.sku"), &line.sku);
        if line.quantity > MAX_CART_QUANTITY {
            v.add(
                format!("{at}.quantity"),
                format!("at most {MAX_CART_QUANTITY}"),
            );
        }
        if line.seen_version < 0 {
            v.add(format!("{at}.seen_version"), "must not be negative");
        }
        v.text(format!("{at}.client_op_id"), &line.client_op_id, 128, false);
        if !seen.insert(line.sku.as_str()) {
            v.add(at, format!("duplicate line for {}", line.sku));
        }
        lines.push(CartLine {
            sku: line.sku.clone(),
            quantity: i64::from(line.quantity),
            seen_version: line.seen_version,
            client_op_id: line.client_op_id.clone(),
        });
    }
    v.into_result()?;
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(lines)
}

/// Checks `SyncInventory`; returns the page size.
pub fn sync(request: &pb::SyncInventoryRequest) -> Result<u64, ApiError> {
    let mut v = Violations::new();
    if request.since_seq < 0 {
        v.add("since_seq", "must not be negative");
    }
    if request.limit > 5000 {
        v.add("limit", "at most 5000");
    }
    v.into_result()?;
    query_skus(&request.skus, false)?;
    Ok(match request.limit {
        0 => 500,
        limit => u64::from(limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::common::v1::GeoPoint;

    fn reserve_request(lines: Vec<pb::ReservationLine>) -> pb::ReserveRequest {
        pb::ReserveRequest {
            order_id: "ord-1".into(),
            lines,
            ttl_seconds: 60,
            idempotency_key: "key-1".into(),
            user_id: String::new(),
            until_released: false,
        }
    }

    fn line(sku: &str, location: &str, quantity: u32) -> pb::ReservationLine {
        pb::ReservationLine {
            sku: sku.into(),
            location_id: location.into(),
            quantity,
        }
    }

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn a_good_reservation_passes_sorted() {
        let command = reserve(&reserve_request(vec![
            line("B", "L1", 1),
            line("A", "L2", 2),
        ]))
        .unwrap();
        assert_eq!(command.lines[0].sku, "A");
        assert_eq!(command.ttl, Some(Duration::from_secs(60)));
        assert_eq!(command.user_id, None);
    }

    #[test]
    fn bad_reservations_name_every_bad_field() {
        let table: Vec<(pb::ReserveRequest, Vec<&str>)> = vec![
            (reserve_request(vec![]), vec!["lines"]),
            (
                reserve_request(vec![line("A", "L", 0)]),
                vec!["lines[0].quantity"],
            ),
            (
                reserve_request(vec![line("A", "L", MAX_LINE_QUANTITY + 1)]),
                vec!["lines[0].quantity"],
            ),
            (
                reserve_request(vec![line("", "L", 1)]),
                vec!["lines[0].sku"],
            ),
            (
                reserve_request(vec![line(&"S".repeat(65), "L", 1)]),
                vec!["lines[0].sku"],
            ),
            (
                reserve_request(vec![line("A", "bad location", 1)]),
                vec!["lines[0].location_id"],
            ),
            (
                reserve_request(vec![line("A", "L", 1), line("A", "L", 2)]),
                vec!["lines[1]"],
            ),
            (
                pb::ReserveRequest {
                    order_id: String::new(),
                    ..reserve_request(vec![line("A", "L", 1)])
                },
                vec!["order_id"],
            ),
            (
                pb::ReserveRequest {
                    ttl_seconds: u32::MAX,
                    ..reserve_request(vec![line("A", "L", 1)])
                },
                vec!["ttl_seconds"],
            ),
        ];
        for (request, expected) in table {
            assert_eq!(
                fields(reserve(&request).unwrap_err()),
                expected,
                "{request:?}"
            );
        }
        let too_many = (0..=MAX_LINES)
            .map(|i| line(&format!("S{i}"), "L", 1))
            .collect();
        assert_eq!(
            fields(reserve(&reserve_request(too_many)).unwrap_err()),
            ["lines"]
        );
    }

    #[test]
    fn a_missing_idempotency_key_is_refused() {
        let request = pb::ReserveRequest {
            idempotency_key: String::new(),
            ..reserve_request(vec![line("A", "L", 1)])
        };
        assert_eq!(fields(reserve(&request).unwrap_err()), ["idempotency_key"]);
    }

    #[test]
    fn adjustments_need_a_reason_and_a_sane_delta() {
        let good = pb::AdjustRequest {
            sku: "A".into(),
            location_id: "L".into(),
            delta: -3,
            reason: "cycle count".into(),
            idempotency_key: "k".into(),
        };
        assert!(adjust(&good).is_ok());
        let bad = pb::AdjustRequest {
            delta: 0,
            reason: String::new(),
            ..good.clone()
        };
        assert_eq!(fields(adjust(&bad).unwrap_err()), ["delta", "reason"]);
        let huge = pb::AdjustRequest {
            delta: i64::MIN,
            ..good
        };
        assert_eq!(fields(adjust(&huge).unwrap_err()), ["delta"]);
    }

    #[test]
    fn carts_allow_zero_to_remove_but_not_duplicates() {
        let request = pb::SyncCartRequest {
            user_id: "u1".into(),
            lines: vec![
                pb::CartLine {
                    sku: "B".into(),
                    quantity: 0,
                    ..Default::default()
                },
                pb::CartLine {
                    sku: "A".into(),
                    quantity: 2,
                    ..Default::default()
                },
            ],
            near: None,
        };
        let lines = cart(&request).unwrap();
        assert_eq!(lines[0].sku, "A");
        let duplicate = pb::SyncCartRequest {
            lines: vec![
                pb::CartLine {
                    sku: "A".into(),
                    quantity: 1,
                    ..Default::default()
                },
                pb::CartLine {
                    sku: "A".into(),
                    quantity: 2,
                    ..Default::default()
                },
            ],
            ..request
        };
        assert_eq!(fields(cart(&duplicate).unwrap_err()), ["lines[1]"]);
    }

    #[test]
    fn locations_need_a_valid_point_and_country() {
        let location = pb::Location {
            location_id: "fc-1".into(),
            name: "Berlin".into(),
            point: Some(GeoPoint {
                lat: 95.0,
                lng: f64::NAN,
            }),
            country_code: "de".into(),
        };
        assert_eq!(
            fields(super::location(Some(&location)).unwrap_err()),
            [
                "location.point.lat",
                "location.point.lng",
                "location.country_code"
            ]
        );
    }

    #[test]
    fn hs_codes_are_digits() {
        let mut sku = pb::Sku {
            sku: "A".into(),
            name: "Shoe".into(),
            hs_code: "6403.99".into(),
            ..Default::default()
        };
        assert_eq!(super::sku(Some(&sku)).unwrap().hs_code, "640399");
        sku.hs_code = "64A3".into();
        assert_eq!(fields(super::sku(Some(&sku)).unwrap_err()), ["sku.hs_code"]);
    }
}
