//! Money: ISO 4217 currencies with their minor units, exact decimal amounts (`rust_decimal`),
//! rounding half away from zero to the currency's minor units. Never floats.

use std::fmt;

use oms_proto::common::v1 as pb;
use rust_decimal::{Decimal, RoundingStrategy};

/// ISO 4217 codes with their minor units (the currencies this system accepts).
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// A currency this system accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

impl Currency {
    /// The currency with ISO 4217 code `code` (upper case), if accepted.
    pub fn parse(code: &str) -> Option<Self> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(code, minor_units)| Self {
                code,
                minor_units: *minor_units,
            })
    }

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (JPY 0, USD 2, BHD 3).
    pub fn minor_units(self) -> u32 {
        self.minor_units
    }

    /// `amount` rounded half away from zero to this currency's minor units.
    pub fn round(self, amount: Decimal) -> Decimal {
        amount.round_dp_with_strategy(self.minor_units, RoundingStrategy::MidpointAwayFromZero)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount in a currency, always at the currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    amount: Decimal,
}

/// Why a money value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code this system accepts.
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    /// Not a decimal number.
    #[error("{0:?} is not a decimal amount")]
    NotDecimal(String),
    /// More decimals than the currency has.
    #[error("{amount} has more than the {digits} decimals of {currency}")]
    TooPrecise {
        /// The amount given.
        amount: String,
        /// The currency.
        currency: &'static str,
        /// Its minor units.
        digits: u32,
    },
    /// Negative where only zero or more makes sense.
    #[error("{0} is negative")]
    Negative(String),
    /// Two currencies in one sum.
    #[error("cannot combine {0} and {1}")]
    Mixed(&'static str, &'static str),
    /// Too large to compute with.
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    /// `amount` in `currency`, rounded to its minor units.
    pub fn new(currency: Currency, amount: Decimal) -> Self {
        Self {
            currency,
            amount: currency.round(amount),
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(currency, Decimal::ZERO)
    }

    /// Reads a wire value strictly: a known currency, a decimal string with at most the
    /// currency's minor-unit digits, not negative.
    pub fn parse(money: &pb::Money) -> Result<Self, MoneyError> {
        let currency = Currency::parse(&money.currency_code)
            .ok_or_else(|| MoneyError::UnknownCurrency(money.currency_code.clone()))?;
        let text = money.amount.trim();
        if text.is_empty() || text.len() > 32 || text.contains(['e', 'E']) {
            return Err(MoneyError::NotDecimal(money.amount.clone()));
        }
        let amount: Decimal = text
            .parse()
            .map_err(|_| MoneyError::NotDecimal(money.amount.clone()))?;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative(money.amount.clone()));
        }
        if amount.scale() > currency.minor_units {
            let trimmed = amount.normalize();
            if trimmed.scale() > currency.minor_units {
                return Err(MoneyError::TooPrecise {
                    amount: money.amount.clone(),
                    currency: currency.code,
                    digits: currency.minor_units,
                });
            }
        }
        Ok(Self::new(currency, amount))
    }

    /// The wire form, with exactly the currency's minor-unit digits ("12.50", "1200", "1.250").
    pub fn to_proto(&self) -> pb::Money {
        let mut amount = self.amount;
        amount.rescale(self.currency.minor_units);
        pb::Money {
            currency_code: self.currency.code.to_owned(),
            amount: amount.to_string(),
        }
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The sum of two amounts in one currency.
    pub fn plus(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::Mixed(self.currency.code, other.currency.code));
        }
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, sum))
    }

    /// The difference of two amounts in one currency (may be negative).
    pub fn minus(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::Mixed(self.currency.code, other.currency.code));
        }
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, difference))
    }

    /// `quantity` times this amount.
    pub fn times(&self, quantity: u32) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(Decimal::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, product))
    }

    /// This amount times a decimal factor (a rate, a multiplier), rounded.
    pub fn scaled(&self, factor: Decimal) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, product))
    }

    /// The sum of `amounts`, all in `currency`.
    pub fn sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |total, next| total.plus(next))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.to_proto();
        write!(f, "{} {}", wire.amount, wire.currency_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(currency: &str, amount: &str) -> pb::Money {
        pb::Money {
            currency_code: currency.into(),
            amount: amount.into(),
        }
    }

    fn money(currency: &str, amount: &str) -> Money {
        Money::parse(&wire(currency, amount)).unwrap()
    }

    #[test]
    fn minor_units_shape_the_wire_form() {
        assert_eq!(money("USD", "12.5").to_proto().amount, "12.50");
        assert_eq!(money("JPY", "1200").to_proto().amount, "1200");
        assert_eq!(money("BHD", "1.25").to_proto().amount, "1.250");
        assert_eq!(money("USD", "0").to_proto().amount, "0.00");
        assert_eq!(money("EUR", "3.10").to_string(), "3.10 EUR");
    }

    #[test]
    fn rounding_is_half_away_from_zero_at_the_minor_unit() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let bhd = Currency::parse("BHD").unwrap();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(Money::new(usd, d("2.345")).amount(), d("2.35"));
        assert_eq!(Money::new(usd, d("2.344")).amount(), d("2.34"));
        assert_eq!(Money::new(jpy, d("1234.5")).amount(), d("1235"));
        assert_eq!(Money::new(jpy, d("1234.4")).amount(), d("1234"));
        assert_eq!(Money::new(bhd, d("0.0005")).amount(), d("0.001"));
        assert_eq!(Money::new(bhd, d("1.2344")).amount(), d("1.234"));
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        let table = [
            (wire("XXX", "1"), "unknown currency"),
            (wire("usd", "1"), "unknown currency"),
            (wire("USD", ""), "not a decimal"),
            (wire("USD", "ten"), "not a decimal"),
            (wire("USD", "1e3"), "not a decimal"),
            (wire("USD", "1.234"), "more than the 2 decimals"),
            (wire("JPY", "10.5"), "more than the 0 decimals"),
            (wire("USD", "-1.00"), "negative"),
            (wire("USD", &"9".repeat(40)), "not a decimal"),
        ];
        for (input, reason) in table {
            let error = Money::parse(&input).unwrap_err().to_string();
            assert!(error.contains(reason), "{input:?}: {error}");
        }
        assert_eq!(
            money("JPY", "10.0").to_proto().amount,
            "10",
            "trailing zeros are fine"
        );
    }

    #[test]
    fn arithmetic_stays_in_one_currency() {
        let a = money("USD", "10.10");
        let b = money("USD", "0.05");
        assert_eq!(a.plus(&b).unwrap().to_proto().amount, "10.15");
        assert_eq!(a.minus(&b).unwrap().to_proto().amount, "10.05");
        assert_eq!(b.times(3).unwrap().to_proto().amount, "0.15");
        assert_eq!(
            a.scaled("0.0725".parse().unwrap())
                .unwrap()
                .to_proto()
                .amount,
            "0.73"
        );
        assert!(a.plus(&money("EUR", "1")).is_err());
        let total = Money::sum(a.currency(), [&a, &b, &b]).unwrap();
        assert_eq!(total.to_proto().amount, "10.20");
    }
}
