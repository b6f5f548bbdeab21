//! Checks of the shape of requests, before anything is looked up: ids, quantities, amounts,
//! addresses. Every bad field is reported at once; nothing has changed when they fail.

use std::collections::BTreeSet;

use oms_platform::{
    error::{ApiError, Violations},
    idempotency::check_key,
    money::{Currency, Money},
};
use oms_proto::{common::v1 as common, order::v1 as pb};

use super::Intake;

/// Most lines on one order.
pub const MAX_LINES: usize = 100;
/// Most units of one line.
pub const MAX_QUANTITY: u32 = 10_000;

/// Checks an intake (from any channel) and returns its currency.
pub fn intake(intake: &Intake) -> Result<Currency, ApiError> {
    check_key("idempotency_key", &intake.idempotency_key)?;
    let mut v = Violations::new();
    v.id("user_id", &intake.user_id);
    let currency = Currency::parse(&intake.currency_code);
    if currency.is_none() {
        v.add(
            "currency_code",
            "an ISO 4217 code this system sells in (\"EUR\")",
        );
    }
    if intake.lines.is_empty() || intake.lines.len() > MAX_LINES {
        v.add("lines", format!("1 to {MAX_LINES} lines"));
    }
    let mut seen = BTreeSet::new();
    for (i, line) in intake.lines.iter().enumerate() {
        v.id(format!("lines[{i}].sku"), &line.sku);
        if !seen.insert(line.sku.as_str()) {
            v.add(
                format!("lines[{i}].sku"),
                "listed twice: put all units on one line",
            );
        }
        if line.quantity == 0 || line.quantity > MAX_QUANTITY {
            v.add(
                format!("lines[{i}].quantity"),
                format!("1 to {MAX_QUANTITY}"),
            );
        }
        if let (Some(price), Some(currency)) = (line.unit_price, currency)
            && (price.is_sign_negative() || currency.round(price) != price)
        {
            v.add(
                format!("lines[{i}].unit_price"),
                format!(
                    "a non-negative amount with at most {} decimals",
                    currency.minor_units()
                ),
            );
        }
    }
    shipping_address(&mut v, "shipping_address", intake.shipping_address.as_ref());
    preference(&mut v, intake.preference.as_ref());
    if !intake.quote_id.is_empty() {
        v.id("quote_id", &intake.quote_id);
    }
    v.text("external_ref", &intake.external_ref, 128, false);
    v.into_result()?;
    currency.ok_or_else(|| ApiError::invalid("currency_code", "unknown currency"))
}

/// A shipping address routing can measure to.
pub fn shipping_address(v: &mut Violations, field: &str, address: Option<&common::Address>) {
    let Some(address) = address else {
        v.add(field, "required");
        return;
    };
    v.address(field, address);
    if address.location.is_none() {
        v.add(
            format!("{field}.location"),
            "required: delivery is routed by distance (geocode the address first)",
        );
    }
}

fn preference(v: &mut Violations, preference: Option<&common::DeliveryPreference>) {
    let Some(preference) = preference else {
        return;
    };
    if common::ShippingMethod::try_from(preference.method).is_err() {
        v.add("preference.method", "unknown shipping method");
    }
    if let Some(window) = &preference.window {
        match (&window.start, &window.end) {
            (Some(start), Some(end)) if (start.seconds, start.nanos) < (end.seconds, end.nanos) => {
            }
            _ => v.add(
                "preference.window",
                "start and end required, start before end",
            ),
        }
    }
}

/// Checks the lines to cancel or return: known line ids, 1..=quantity units each, no line twice.
pub fn line_quantities(
    field: &str,
    lines: &[pb::LineQuantity],
    order: &pb::Order,
    available: impl Fn(&pb::OrderLine) -> u32,
) -> Result<(), ApiError> {
    let mut v = Violations::new();
    let mut seen = BTreeSet::new();
    for (i, requested) in lines.iter().enumerate() {
        let Some(line) = order.lines.iter().find(|l| l.line_id == requested.line_id) else {
            v.add(format!("{field}[{i}].line_id"), "not a line of this order");
            continue;
        };
        if !seen.insert(requested.line_id.as_str()) {
            v.add(format!("{field}[{i}].line_id"), "listed twice");
        }
        let most = available(line);
        if requested.quantity == 0 || requested.quantity > most {
            v.add(
                format!("{field}[{i}].quantity"),
                format!("1 to {most} (the units of this line that can be)"),
            );
        }
    }
    v.into_result()
}

/// Checks a price list entry.
pub fn price(price: Option<&pb::Price>) -> Result<pb::Price, ApiError> {
    let Some(price) = price else {
        return Err(ApiError::invalid("price", "required"));
    };
    let mut v = Violations::new();
    v.id("price.sku", &price.sku);
    v.text("price.name", &price.name, 200, false);
    let unit_price = match price.unit_price.as_ref().map(Money::parse) {
        Some(Ok(money)) => Some(money.to_proto()),
        Some(Err(error)) => {
            v.add("price.unit_price", error.to_string());
            None
        }
        None => {
            v.add("price.unit_price", "required");
            None
        }
    };
    v.into_result()?;
    Ok(pb::Price {
        unit_price,
        ..price.clone()
    })
}

/// Checks a customer record.
pub fn customer(customer: Option<&pb::Customer>) -> Result<pb::Customer, ApiError> {
    let Some(customer) = customer else {
        return Err(ApiError::invalid("customer", "required"));
    };
    let mut v = Violations::new();
    v.id("customer.user_id", &customer.user_id);
    if pb::AccountState::try_from(customer.state).is_err() || customer.state == 0 {
        v.add("customer.state", "ACTIVE, SUSPENDED or CLOSED");
    }
    if let Some(limit) = &customer.max_order_value
        && let Err(error) = Money::parse(limit)
    {
        v.add("customer.max_order_value", error.to_string());
    }
    v.into_result()?;
    Ok(customer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IntakeLine;
    use oms_proto::common::v1::{Address, GeoPoint};
    use rust_decimal::Decimal;

    fn good() -> Intake {
        Intake {
            user_id: "ada".into(),
            idempotency_key: "k1".into(),
            currency_code: "EUR".into(),
            lines: vec![IntakeLine {
                sku: "A".into(),
                quantity: 2,
                unit_price: None,
            }],
            shipping_address: Some(Address {
                country_code: "DE".into(),
                location: Some(GeoPoint {
                    lat: 52.5,
                    lng: 13.4,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn a_good_intake_passes() {
        assert_eq!(intake(&good()).unwrap().code(), "EUR");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = good();
        bad.user_id = "a b".into();
        bad.currency_code = "XXX".into();
        bad.lines = vec![
            IntakeLine {
                sku: "A".into(),
                quantity: 0,
                unit_price: None,
            },
            IntakeLine {
                sku: "A".into(),
                quantity: 20_000,
                unit_price: None,
            },
        ];
        bad.shipping_address.as_mut().unwrap().location = None;
        bad.shipping_address.as_mut().unwrap().country_code = "Germany".into();
        assert_eq!(
            fields(intake(&bad).unwrap_err()),
            [
                "user_id",
                "currency_code",
                "lines[0].quantity",
                "lines[1].sku",
                "lines[1].quantity",
                "shipping_address.country_code",
                "shipping_address.location"
            ]
        );
    }

    #[test]
    fn channel_prices_must_fit_the_currency() {
        let mut yen = good();
        yen.currency_code = "JPY".into();
        yen.lines[0].unit_price = Some(Decimal::new(1999, 2));
        assert_eq!(fields(intake(&yen).unwrap_err()), ["lines[0].unit_price"]);
        yen.lines[0].unit_price = Some(Decimal::from(1999));
        assert!(intake(&yen).is_ok());
    }

    #[test]
    fn an_idempotency_key_is_required() {
        let mut keyless = good();
        keyless.idempotency_key.clear();
        assert_eq!(fields(intake(&keyless).unwrap_err()), ["idempotency_key"]);
    }

    #[test]
    fn cancel_and_return_lines_are_checked_against_the_order() {
        let order = pb::Order {
            lines: vec![pb::OrderLine {
                line_id: "l1".into(),
                quantity: 3,
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = |id: &str, quantity| {
            vec![pb::LineQuantity {
                line_id: id.into(),
                quantity,
            }]
        };
        assert!(line_quantities("lines", &request("l1", 3), &order, |l| l.quantity).is_ok());
        assert_eq!(
            fields(
                line_quantities("lines", &request("l1", 4), &order, |l| l.quantity).unwrap_err()
            ),
            ["lines[0].quantity"]
        );
        assert_eq!(
            fields(
                line_quantities("lines", &request("l9", 1), &order, |l| l.quantity).unwrap_err()
            ),
            ["lines[0].line_id"]
        );
    }
}
