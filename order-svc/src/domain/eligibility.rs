//! May this buyer place this order? Account state, open-order and value limits, blocked
//! destinations, and the high-value step-up. Pure: the caller looks up the facts.

use std::collections::BTreeMap;

use oms_platform::money::Money;
use oms_proto::{
    common::v1::Address,
    order::v1::{AccountState, Customer},
};
use rust_decimal::Decimal;

/// The configured rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// Open orders a customer may have when their record sets no limit.
    pub default_max_open_orders: u32,
    /// Country ("KP") or region ("UA-43") codes nothing ships to.
    pub blocked_destinations: Vec<String>,
    /// Orders above these totals (by currency) need the buyer's step-up verification.
    pub high_value_thresholds: BTreeMap<String, Decimal>,
}

/// What the buyer's standing allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Accept,
    /// Hold for step-up verification, for this reason.
    RequiresVerification(String),
}

/// The facts about the buyer and the order.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The customer's record; `None` is a customer never configured (active, default limits).
    pub customer: Option<&'a Customer>,
    /// Their orders still moving goods.
    pub open_orders: u64,
    /// The order's total.
    pub total: &'a Money,
    /// Where it goes.
    pub destination: &'a Address,
}

/// Decides, or says why not.
pub fn check(facts: &Facts<'_>, policy: &Policy) -> Result<Verdict, String> {
    let state = facts.customer.map_or(AccountState::Active, |c| {
        AccountState::try_from(c.state).unwrap_or(AccountState::Active)
    });
    match state {
        AccountState::Suspended => return Err("the account is suspended".into()),
        AccountState::Closed => return Err("the account is closed".into()),
        AccountState::Active | AccountState::Unspecified => {}
    }
    let destination = facts.destination;
    if let Some(blocked) = policy
        .blocked_destinations
        .iter()
        .find(|code| **code == destination.country_code || **code == destination.region)
    {
        return Err(format!("we do not ship to {blocked}"));
    }
    let max_open = facts
        .customer
        .map(|c| c.max_open_orders)
        .filter(|limit| *limit > 0)
        .unwrap_or(policy.default_max_open_orders);
    if facts.open_orders >= u64::from(max_open) {
        return Err(format!(
            "{} open orders already (the limit is {max_open})",
            facts.open_orders
        ));
    }
    let total = facts.total;
    if let Some(limit) = facts.customer.and_then(|c| c.max_order_value.as_ref())
        && limit.currency_code == total.currency().code()
    {
        let limit: Decimal = limit.amount.parse().unwrap_or(Decimal::ZERO);
        if total.amount() > limit {
            return Err(format!(
                "the total {total} exceeds the account's limit of {limit} {}",
                total.currency()
            ));
        }
    }
    match policy.high_value_thresholds.get(total.currency().code()) {
        Some(threshold) if total.amount() > *threshold => {
            Ok(Verdict::RequiresVerification(format!(
                "the total {total} is above {threshold} {}: confirm with your device's biometrics",
                total.currency()
            )))
        }
        _ => Ok(Verdict::Accept),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_platform::money::Currency;
    use oms_proto::common::v1 as common;

    fn policy() -> Policy {
        Policy {
            default_max_open_orders: 3,
            blocked_destinations: vec!["KP".into(), "UA-43".into()],
            high_value_thresholds: BTreeMap::from([("EUR".into(), Decimal::from(1000))]),
        }
    }

    fn eur(amount: i64) -> Money {
        Money::new(Currency::parse("EUR").unwrap(), Decimal::from(amount))
    }

    fn berlin() -> Address {
        Address {
            country_code: "DE".into(),
            region: "DE-BE".into(),
            ..Default::default()
        }
    }

    fn verdict(
        customer: Option<&Customer>,
        open_orders: u64,
        total: i64,
        destination: &Address,
    ) -> Result<Verdict, String> {
        check(
            &Facts {
                customer,
                open_orders,
                total: &eur(total),
                destination,
            },
            &policy(),
        )
    }

    #[test]
    fn an_unknown_customer_is_active_with_default_limits() {
        assert_eq!(verdict(None, 0, 100, &berlin()), Ok(Verdict::Accept));
        assert!(
            verdict(None, 3, 100, &berlin())
                .unwrap_err()
                .contains("limit is 3")
        );
    }

    #[test]
    fn suspended_and_closed_accounts_may_not_order() {
        for (state, word) in [
            (AccountState::Suspended, "suspended"),
            (AccountState::Closed, "closed"),
        ] {
            let customer = Customer {
                user_id: "ada".into(),
                state: state.into(),
                ..Default::default()
            };
            assert!(
                verdict(Some(&customer), 0, 10, &berlin())
                    .unwrap_err()
                    .contains(word)
            );
        }
    }

    #[test]
    fn blocked_countries_and_regions_are_refused() {
        let pyongyang = Address {
            country_code: "KP".into(),
            ..Default::default()
        };
        assert_eq!(
            verdict(None, 0, 10, &pyongyang),
            Err("we do not ship to KP".into())
        );
        let crimea = Address {
            country_code: "UA".into(),
            region: "UA-43".into(),
            ..Default::default()
        };
        assert!(verdict(None, 0, 10, &crimea).is_err());
        let kyiv = Address {
            country_code: "UA".into(),
            region: "UA-30".into(),
            ..Default::default()
        };
        assert!(verdict(None, 0, 10, &kyiv).is_ok());
    }

    #[test]
    fn the_customer_record_overrides_limits() {
        let customer = Customer {
            user_id: "ada".into(),
            state: AccountState::Active.into(),
            max_open_orders: 10,
            max_order_value: Some(common::Money {
                currency_code: "EUR".into(),
                amount: "500".into(),
            }),
        };
        assert_eq!(
            verdict(Some(&customer), 5, 400, &berlin()),
            Ok(Verdict::Accept)
        );
        assert!(
            verdict(Some(&customer), 5, 600, &berlin())
                .unwrap_err()
                .contains("exceeds the account's limit")
        );
    }

    #[test]
    fn high_value_orders_need_step_up() {
        assert_eq!(
            verdict(None, 0, 1000, &berlin()),
            Ok(Verdict::Accept),
            "at the threshold is fine"
        );
        assert!(matches!(
            verdict(None, 0, 1001, &berlin()),
            Ok(Verdict::RequiresVerification(_))
        ));
    }
}
