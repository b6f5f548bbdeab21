//! Request validation: every field checked, every problem reported at once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use oms_platform::{
    error::{ApiError, Violations},
    events::from_timestamp,
    money::{Currency, Money},
};
use oms_proto::{common::v1 as common, fulfillment::v1 as pb};

use super::{Center, Line, Method, MethodOffer, carriers::CARRIERS, routing::Window};

/// Most lines routed at once.
pub const MAX_LINES: usize = 100;
/// Most units of a line.
pub const MAX_QUANTITY: u32 = 100_000;

/// Where an order goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// The point routing measures to.
    pub point: common::GeoPoint,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 3166-2, may be empty.
    pub region: String,
}

/// A validated plan or quote request.
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// Lines in request order.
    pub lines: Vec<Line>,
    /// Unit price per SKU, in `currency`.
    pub prices: BTreeMap<String, Money>,
    /// Where.
    pub destination: Destination,
    /// A method the buyer insists on.
    pub method: Option<Method>,
    /// A window the arrival must fall in.
    pub window: Option<Window>,
    /// The order's currency.
    pub currency: Currency,
    /// Centers not to use.
    pub exclude: BTreeSet<String>,
    /// The buyer (their cart holds count as stock).
    pub user_id: String,
}

/// Checks the parts shared by `PlanFulfillment` and `QuoteDelivery`.
pub fn plan_input(
    lines: &[pb::PlanLine],
    destination: Option<&common::Address>,
    preference: Option<&common::DeliveryPreference>,
    currency_code: &str,
    exclude: &[String],
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<PlanInput, ApiError> {
    let mut v = Violations::new();
    let currency = Currency::parse(currency_code);
    if currency.is_none() {
        v.add(
            "currency_code",
            format!("{currency_code:?} is not an ISO 4217 currency this system accepts"),
        );
    }
    if lines.is_empty() {
        v.add("lines", "at least one line is required");
    }
    if lines.len() > MAX_LINES {
        v.add("lines", format!("at most {MAX_LINES} lines"));
    }
    let mut checked = Vec::new();
    let mut prices = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (i, line) in lines.iter().take(MAX_LINES).enumerate() {
        let at = format!("lines[{i}]");
        v.id(format!("{at}.sku"), &line.sku);
        if line.quantity == 0 || line.quantity > MAX_QUANTITY {
            v.add(
                format!("{at}.quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            );
        }
        if !seen.insert(line.sku.as_str()) {
            v.add(at.clone(), format!("duplicate line for {}", line.sku));
        }
        match line.unit_price.as_ref().map(Money::parse) {
            None => v.add(
                format!("{at}.unit_price"),
                "required (taxes and duties are computed from it)",
            ),
            Some(Err(error)) => v.add(format!("{at}.unit_price"), error.to_string()),
            Some(Ok(price)) if Some(price.currency()) != currency => v.add(
                format!("{at}.unit_price.currency_code"),
                format!(
                    "{} differs from the order's {currency_code}",
                    price.currency()
                ),
            ),
            Some(Ok(price)) => {
                prices.insert(line.sku.clone(), price);
            }
        }
        checked.push(Line {
            sku: line.sku.clone(),
            quantity: i64::from(line.quantity),
        });
    }
    let destination = self::destination(&mut v, "destination", destination);
    let (method, window) = preference_of(&mut v, preference, now);
    if exclude.len() > 100 {
        v.add("exclude_center_ids", "at most 100");
    }
    for (i, id) in exclude.iter().enumerate().take(100) {
        v.id(format!("exclude_center_ids[{i}]"), id);
    }
    if !user_id.is_empty() {
        v.id("user_id", user_id);
    }
    v.into_result()?;
    match (currency, destination) {
        (Some(currency), Some(destination)) => Ok(PlanInput {
            lines: checked,
            prices,
            destination,
            method,
            window,
            currency,
            exclude: exclude.iter().cloned().collect(),
            user_id: user_id.to_owned(),
        }),
        _ => Err(ApiError::invalid("destination", "required")),
    }
}

/// Checks an address that routing must measure to: country, optional region, a point.
pub fn destination(
    v: &mut Violations,
    field: &str,
    address: Option<&common::Address>,
) -> Option<Destination> {
    let Some(address) = address else {
        v.add(field, "required");
        return None;
    };
    let before = v.is_empty();
    v.address(field, address);
    if address.location.is_none() {
        v.add(
            format!("{field}.location"),
            "required: routing measures distance to it (geocode the address first)",
        );
    }
    (before && v.is_empty()).then(|| Destination {
        point: address.location.unwrap_or_default(),
        country: address.country_code.clone(),
        region: address.region.clone(),
    })
}

fn preference_of(
    v: &mut Violations,
    preference: Option<&common::DeliveryPreference>,
    now: DateTime<Utc>,
) -> (Option<Method>, Option<Window>) {
    let Some(preference) = preference else {
        return (None, None);
    };
    let method = match preference.method {
        0 => None,
        value => {
            let method = Method::from_proto(value);
            if method.is_none() {
                v.add("preference.method", format!("unknown method {value}"));
            }
            method
        }
    };
    let window = preference.window.as_ref().and_then(|window| {
        let start = window.start.as_ref().and_then(from_timestamp);
        let end = window.end.as_ref().and_then(from_timestamp);
        match (start, end) {
            (Some(start), Some(end)) if start < end && end > now => Some(Window { start, end }),
            (Some(_), Some(end)) if end <= now => {
                v.add("preference.window.end", "the window has already ended");
                None
            }
            (Some(_), Some(_)) => {
                v.add("preference.window", "start must be before end");
                None
            }
            _ => {
                v.add("preference.window", "start and end are both required");
                None
            }
        }
    });
    (method, window)
}

/// Checks a center definition and returns it in domain terms.
pub fn center(center: Option<&pb::FulfillmentCenter>) -> Result<Center, ApiError> {
    let Some(center) = center else {
        return Err(ApiError::invalid("center", "required"));
    };
    let mut v = Violations::new();
    v.id("center.center_id", &center.center_id);
    v.text("center.name", &center.name, 200, true);
    match &center.point {
        Some(point) => v.point("center.point", point),
        None => v.add("center.point", "required"),
    }
    v.country("center.country_code", &center.country_code);
    v.region("center.region", &center.region, &center.country_code);
    if center.daily_capacity == 0 || center.daily_capacity > 1_000_000 {
        v.add(
            "center.daily_capacity",
            "between 1 and 1,000,000 orders a day",
        );
    }
    if center.handling_hours > 240 {
        v.add("center.handling_hours", "at most 240");
    }
    if center.cutoff_minute_utc >= 24 * 60 {
        v.add(
            "center.cutoff_minute_utc",
            "minutes after midnight: 0 to 1439",
        );
    }
    if center.methods.is_empty() || center.methods.len() > 3 {
        v.add("center.methods", "one to three methods");
    }
    let mut methods = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, offer) in center.methods.iter().take(3).enumerate() {
        let at = format!("center.methods[{i}]");
        let Some(method) = Method::from_proto(offer.method) else {
            v.add(format!("{at}.method"), "STANDARD, EXPRESS or SAME_DAY");
            continue;
        };
        if !seen.insert(method) {
            v.add(format!("{at}.method"), format!("{method} is offered twice"));
        }
        if !CARRIERS.contains(&offer.carrier.as_str()) {
            v.add(
                format!("{at}.carrier"),
                format!("one of {}", CARRIERS.join(", ")),
            );
        }
        if offer.base_hours > 720 {
            v.add(format!("{at}.base_hours"), "at most 720");
        }
        if !offer.per_100km_hours.is_finite() || !(0.0..=100.0).contains(&offer.per_100km_hours) {
            v.add(format!("{at}.per_100km_hours"), "between 0 and 100");
        }
        if !offer.max_km.is_finite() || !(0.0..=40_000.0).contains(&offer.max_km) {
            v.add(format!("{at}.max_km"), "between 0 (no limit) and 40,000");
        }
        match offer.base_price.as_ref().map(Money::parse) {
            Some(Ok(price)) => methods.push(MethodOffer {
                method,
                carrier: offer.carrier.clone(),
                base_hours: offer.base_hours,
                per_100km_hours: offer.per_100km_hours,
                max_km: offer.max_km,
                base_price: price,
            }),
            Some(Err(error)) => v.add(format!("{at}.base_price"), error.to_string()),
            None => v.add(format!("{at}.base_price"), "required"),
        }
    }
    v.into_result()?;
    Ok(Center {
        center_id: center.center_id.clone(),
        name: center.name.clone(),
        point: center.point.unwrap_or_default(),
        country_code: center.country_code.clone(),
        region: center.region.clone(),
        daily_capacity: center.daily_capacity,
        current_load: center.current_load,
        handling_hours: center.handling_hours,
        cutoff_minute_utc: center.cutoff_minute_utc,
        methods,
        active: center.active,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::now;

    fn usd(amount: &str) -> Option<common::Money> {
        Some(common::Money {
            currency_code: "USD".into(),
            amount: amount.into(),
        })
    }

    fn address() -> common::Address {
        common::Address {
            country_code: "US".into(),
            region: "US-CA".into(),
            location: Some(common::GeoPoint {
                lat: 37.77,
                lng: -122.42,
            }),
            ..Default::default()
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
    fn a_good_request_passes() {
        let lines = [pb::PlanLine {
            sku: "A".into(),
            quantity: 2,
            unit_price: usd("19.99"),
        }];
        let input = plan_input(&lines, Some(&address()), None, "USD", &[], "", now()).unwrap();
        assert_eq!(input.lines[0].quantity, 2);
        assert_eq!(input.prices["A"].to_proto().amount, "19.99");
        assert_eq!(input.destination.region, "US-CA");
    }

    #[test]
    fn bad_requests_name_every_bad_field() {
        let good = pb::PlanLine {
            sku: "A".into(),
            quantity: 1,
            unit_price: usd("1.00"),
        };
        let wrong_currency = pb::PlanLine {
            unit_price: Some(common::Money {
                currency_code: "EUR".into(),
                amount: "1".into(),
            }),
            ..good.clone()
        };
        let mut no_point = address();
        no_point.location = None;
        let mut bad_region = address();
        bad_region.region = "DE-BY".into();
        let past = common::DeliveryPreference {
            method: 0,
            window: Some(common::TimeWindow {
                start: Some(oms_platform::events::to_timestamp(
                    now() - chrono::Duration::days(2),
                )),
                end: Some(oms_platform::events::to_timestamp(
                    now() - chrono::Duration::days(1),
                )),
            }),
        };
        // (lines, destination, preference, currency, the fields reported bad)
        type Case<'a> = (
            Vec<pb::PlanLine>,
            common::Address,
            Option<common::DeliveryPreference>,
            &'a str,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (vec![], address(), None, "USD", vec!["lines"]),
            (
                vec![good.clone()],
                address(),
                None,
                "XYZ",
                vec!["currency_code", "lines[0].unit_price.currency_code"],
            ),
            (
                vec![wrong_currency],
                address(),
                None,
                "USD",
                vec!["lines[0].unit_price.currency_code"],
            ),
            (
                vec![pb::PlanLine {
                    quantity: 0,
                    ..good.clone()
                }],
                address(),
                None,
                "USD",
                vec!["lines[0].quantity"],
            ),
            (
                vec![good.clone(), good.clone()],
                address(),
                None,
                "USD",
                vec!["lines[1]"],
            ),
            (
                vec![pb::PlanLine {
                    unit_price: None,
                    ..good.clone()
                }],
                address(),
                None,
                "USD",
                vec!["lines[0].unit_price"],
            ),
            (
                vec![good.clone()],
                no_point,
                None,
                "USD",
                vec!["destination.location"],
            ),
            (
                vec![good.clone()],
                bad_region,
                None,
                "USD",
                vec!["destination.region"],
            ),
            (
                vec![good.clone()],
                address(),
                Some(past),
                "USD",
                vec!["preference.window.end"],
            ),
            (
                vec![good],
                address(),
                Some(common::DeliveryPreference {
                    method: 99,
                    window: None,
                }),
                "USD",
                vec!["preference.method"],
            ),
        ];
        for (lines, address, preference, currency, expected) in cases {
            let error = plan_input(
                &lines,
                Some(&address),
                preference.as_ref(),
                currency,
                &[],
                "",
                now(),
            )
            .unwrap_err();
            assert_eq!(fields(error), expected);
        }
    }

    #[test]
    fn centers_are_checked_whole() {
        let center = pb::FulfillmentCenter {
            center_id: "fc-1".into(),
            name: "One".into(),
            point: Some(common::GeoPoint { lat: 1.0, lng: 1.0 }),
            country_code: "DE".into(),
            daily_capacity: 0,
            cutoff_minute_utc: 2000,
            methods: vec![pb::MethodOffer {
                method: 2,
                carrier: "pigeon".into(),
                base_price: usd("5"),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            fields(super::center(Some(&center)).unwrap_err()),
            [
                "center.daily_capacity",
                "center.cutoff_minute_utc",
                "center.methods[0].carrier"
            ]
        );
    }
}
