//! Tax and customs for landed-cost quotes: given where a shipment goes and what it holds, the duty
//! and the tax (domestic sales tax / VAT, or import VAT / GST) a customer should expect, each
//! decision explained in plain words. Pure arithmetic over a seeded, cited rule table
//! (`data/tax_rules.json`) and reference exchange rates (`data/fx_rates.json`); no I/O. It gives
//! estimates for checkout, not customs declarations: what each rule simplifies is in its `source`.

use std::collections::{BTreeMap, BTreeSet};

use oms_platform::money::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

const SEEDED_RULES: &str = include_str!("../../data/tax_rules.json");
const SEEDED_FX: &str = include_str!("../../data/fx_rates.json");

/// How many leading digits of an HS code name a subheading (the unit the EU's flat low-value duty
/// counts).
const SUBHEADING_DIGITS: usize = 6;

/// The duty rate for goods whose HS code starts with `hs_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyRate {
    /// Leading digits of the HS code ("6109", "640411"); dots and spaces are ignored.
    pub hs_prefix: String,
    /// Ad valorem rate, a fraction ("0.12").
    pub rate: Decimal,
}

/// Tax and customs rules for a country, or for one subdivision of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRule {
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// "" for the country-wide rule, or an ISO 3166-2 subdivision ("US-CA", "CA-ON").
    pub region: String,
    /// Domestic sales tax / VAT, a fraction ("0.20").
    pub sales_tax_rate: Decimal,
    /// Import VAT / GST, charged on goods + shipping + duty.
    pub import_vat_rate: Decimal,
    /// Duty is charged when the goods value exceeds this, in `de_minimis_currency`.
    pub de_minimis: Decimal,
    /// ISO 4217 code of `de_minimis` (and of `low_value_duty_per_item`).
    pub de_minimis_currency: String,
    /// Duty rate for goods no `duty_rates` entry matches.
    pub default_duty_rate: Decimal,
    /// Duty rates by HS prefix; the longest matching prefix wins.
    pub duty_rates: Vec<DutyRate>,
    /// The domestic tax base includes shipping.
    pub tax_shipping: bool,
    /// Import VAT is charged below the duty de minimis too (EU IOSS, UK, Australia).
    pub vat_below_de_minimis: bool,
    /// Flat duty per distinct 6-digit HS subheading when the goods value does not exceed
    /// `de_minimis`, in `de_minimis_currency`; 0 for none. The EU charges EUR 3 from 1 July 2026.
    #[serde(default)]
    pub low_value_duty_per_item: Decimal,
    /// Where the numbers come from: publisher, URL, as-of date, and what is simplified.
    pub source: String,
}

impl TaxRule {
    /// The entry with the longest prefix of `hs_code`, if any; `None` means `default_duty_rate`.
    pub fn duty_rate_for(&self, hs_code: &str) -> Option<&DutyRate> {
        let code = hs_digits(hs_code);
        self.duty_rates
            .iter()
            .map(|entry| (hs_digits(&entry.hs_prefix), entry))
            .filter(|(prefix, _)| !prefix.is_empty() && code.starts_with(prefix.as_str()))
            // On equal lengths the first entry wins, so the table's order breaks ties.
            .fold(
                None::<(usize, &DutyRate)>,
                |best, (prefix, entry)| match best {
                    Some((length, _)) if length >= prefix.len() => best,
                    _ => Some((prefix.len(), entry)),
                },
            )
            .map(|(_, entry)| entry)
    }

    fn place(&self) -> &str {
        if self.region.is_empty() {
            &self.country_code
        } else {
            &self.region
        }
    }
}

/// The rules in force, looked up by destination.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaxTable {
    rules: Vec<TaxRule>,
}

/// The layout of `tax_rules.json`; its other keys document the file.
#[derive(Deserialize)]
struct SeedRules {
    rules: Vec<TaxRule>,
}

impl TaxTable {
    /// A table of `rules`, taken as they are (see [`TaxTable::check`]).
    pub fn new(rules: Vec<TaxRule>) -> Self {
        Self { rules }
    }

    /// The cited rules shipped with the service, checked.
    pub fn seeded() -> Result<Self, TaxError> {
        let seed: SeedRules = serde_json::from_str(SEEDED_RULES)
            .map_err(|error| TaxError::BadData(format!("tax_rules.json: {error}")))?;
        let table = Self::new(seed.rules);
        table.check()?;
        Ok(table)
    }

    /// The rule for `region` of `country` if there is one, else the country-wide rule.
    pub fn rule(&self, country: &str, region: &str) -> Option<&TaxRule> {
        let in_country = |rule: &&TaxRule| rule.country_code.eq_ignore_ascii_case(country);
        let regional = (!region.is_empty())
            .then(|| {
                self.rules
                    .iter()
                    .filter(in_country)
                    .find(|rule| rule.region.eq_ignore_ascii_case(region))
            })
            .flatten();
        regional.or_else(|| {
            self.rules
                .iter()
                .filter(in_country)
                .find(|rule| rule.region.is_empty())
        })
    }

    /// Every rule, in table order.
    pub fn rules(&self) -> &[TaxRule] {
        &self.rules
    }

    /// Refuses data the calculator would misread: codes that are not ISO, rates outside 0..=1,
    /// unknown currencies, empty prefixes or sources, duplicates, and region rules whose customs
    /// fields differ from their country's (customs are national, so they must agree).
    pub fn check(&self) -> Result<(), TaxError> {
        let mut seen = BTreeSet::new();
        for rule in &self.rules {
            check_rule(rule)?;
            if !seen.insert((rule.country_code.as_str(), rule.region.as_str())) {
                return Err(bad(rule, "appears twice"));
            }
        }
        for rule in self.rules.iter().filter(|rule| !rule.region.is_empty()) {
            let country = self
                .rules
                .iter()
                .find(|other| other.country_code == rule.country_code && other.region.is_empty())
                .ok_or_else(|| bad(rule, "has no country-wide rule"))?;
            let same_customs = rule.de_minimis == country.de_minimis
                && rule.de_minimis_currency == country.de_minimis_currency
                && rule.default_duty_rate == country.default_duty_rate
                && rule.duty_rates == country.duty_rates
                && rule.low_value_duty_per_item == country.low_value_duty_per_item;
            if !same_customs {
                return Err(bad(rule, "customs fields differ from the country rule"));
            }
        }
        Ok(())
    }
}

fn check_rule(rule: &TaxRule) -> Result<(), TaxError> {
    let iso_country =
        rule.country_code.len() == 2 && rule.country_code.bytes().all(|b| b.is_ascii_uppercase());
    if !iso_country {
        return Err(bad(rule, "country code is not ISO 3166-1 alpha-2"));
    }
    if !rule.region.is_empty() && !rule.region.starts_with(&format!("{}-", rule.country_code)) {
        return Err(bad(rule, "region is not an ISO 3166-2 code of its country"));
    }
    let fractions = [
        rule.sales_tax_rate,
        rule.import_vat_rate,
        rule.default_duty_rate,
    ]
    .into_iter()
    .chain(rule.duty_rates.iter().map(|entry| entry.rate));
    if fractions
        .into_iter()
        .any(|rate| rate < Decimal::ZERO || rate > Decimal::ONE)
    {
        return Err(bad(rule, "has a rate outside 0..=1"));
    }
    if rule.de_minimis < Decimal::ZERO || rule.low_value_duty_per_item < Decimal::ZERO {
        return Err(bad(rule, "has a negative amount"));
    }
    if Currency::parse(&rule.de_minimis_currency).is_none() {
        return Err(bad(rule, "de minimis currency is unknown"));
    }
    if rule
        .duty_rates
        .iter()
        .any(|entry| hs_digits(&entry.hs_prefix).is_empty())
    {
        return Err(bad(rule, "has a duty rate without an HS prefix"));
    }
    if rule.source.trim().is_empty() {
        return Err(bad(rule, "has no source"));
    }
    Ok(())
}

fn bad(rule: &TaxRule, problem: &str) -> TaxError {
    TaxError::BadData(format!("rule {}: {problem}", rule.place()))
}

/// Reference exchange rates: units of each currency per one unit of a base currency.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FxRates {
    base: String,
    as_of: String,
    source: String,
    rates: BTreeMap<String, Decimal>,
}

impl FxRates {
    /// Rates as units of each currency per one `base`; the base itself must be listed at 1.
    #[cfg(test)]
    pub fn new(
        base: &str,
        as_of: &str,
        source: &str,
        rates: BTreeMap<String, Decimal>,
    ) -> Result<Self, TaxError> {
        let fx = Self {
            base: base.to_owned(),
            as_of: as_of.to_owned(),
            source: source.to_owned(),
            rates,
        };
        fx.check()?;
        Ok(fx)
    }

    /// The cited reference rates shipped with the service, checked.
    pub fn seeded() -> Result<Self, TaxError> {
        let fx: Self = serde_json::from_str(SEEDED_FX)
            .map_err(|error| TaxError::BadData(format!("fx_rates.json: {error}")))?;
        fx.check()?;
        Ok(fx)
    }

    /// `amount` in `from` expressed in `to`, unrounded (callers round where money is final).
    pub fn convert(&self, amount: Decimal, from: &str, to: &str) -> Result<Decimal, TaxError> {
        if from == to {
            return Ok(amount);
        }
        let from_rate = self.rate(from)?;
        let to_rate = self.rate(to)?;
        amount
            .checked_div(from_rate)
            .and_then(|in_base| in_base.checked_mul(to_rate))
            .ok_or(TaxError::Overflow)
    }

    /// The date the rates were published.
    pub fn as_of(&self) -> &str {
        &self.as_of
    }

    /// Where the rates come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn rate(&self, code: &str) -> Result<Decimal, TaxError> {
        self.rates
            .get(code)
            .copied()
            .ok_or_else(|| TaxError::NoFxRate(code.to_owned()))
    }

    fn check(&self) -> Result<(), TaxError> {
        if self.rates.get(&self.base) != Some(&Decimal::ONE) {
            return Err(TaxError::BadData(format!(
                "fx rates: base {} is not listed at 1",
                self.base
            )));
        }
        if let Some((code, _)) = self.rates.iter().find(|(_, rate)| **rate <= Decimal::ZERO) {
            return Err(TaxError::BadData(format!(
                "fx rates: {code} is not positive"
            )));
        }
        if self.source.trim().is_empty() || self.as_of.trim().is_empty() {
            return Err(TaxError::BadData(
                "fx rates: source and date are required".into(),
            ));
        }
        Ok(())
    }
}

/// One line of a shipment as customs sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodsLine {
    /// Harmonized System code ("6109.10", "610910").
    pub hs_code: String,
    /// Unit price × quantity, in the shipment's currency.
    pub value: Decimal,
}

/// What a shipment is worth and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentValue {
    /// ISO 3166-1 alpha-2 of the shipping center.
    pub origin_country: String,
    /// ISO 3166-1 alpha-2 of the customer.
    pub destination_country: String,
    /// ISO 3166-2 of the customer ("US-CA"), or "".
    pub destination_region: String,
    /// The order's currency: every amount in and out is in it.
    pub currency: Currency,
    /// The goods.
    pub lines: Vec<GoodsLine>,
    /// What the customer pays for delivery.
    pub shipping: Decimal,
}

/// What the customer pays, by component, each rounded to the order currency.
#[derive(Debug, Clone, PartialEq)]
pub struct LandedCost {
    /// Sum of the lines.
    pub goods: Decimal,
    /// Delivery.
    pub shipping: Decimal,
    /// Customs duty (0 for domestic shipments).
    pub duty: Decimal,
    /// Domestic sales tax / VAT, or import VAT / GST.
    pub tax: Decimal,
    /// goods + shipping + duty + tax.
    pub total: Decimal,
    /// The shipment crosses a border.
    pub cross_border: bool,
    /// Why each component is what it is, in plain words.
    pub notes: Vec<String>,
}

/// Why a landed cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    /// No rule for the destination country.
    #[error("no tax rule for country {0:?}")]
    UnknownCountry(String),
    /// A currency missing from the reference rates.
    #[error("no reference exchange rate for {0:?}")]
    NoFxRate(String),
    /// Rules or rates that cannot be used.
    #[error("bad tax data: {0}")]
    BadData(String),
    /// A shipment that makes no sense (negative amounts).
    #[error("invalid shipment: {0}")]
    InvalidShipment(String),
    /// Too large to compute with.
    #[error("amount out of range")]
    Overflow,
}

/// Duty and tax for `shipment`, with notes explaining each decision.
pub fn landed_cost(
    table: &TaxTable,
    fx: &FxRates,
    shipment: &ShipmentValue,
) -> Result<LandedCost, TaxError> {
    check_shipment(shipment)?;
    let destination = &shipment.destination_country;
    let rule = table
        .rule(destination, &shipment.destination_region)
        .ok_or_else(|| TaxError::UnknownCountry(destination.clone()))?;
    let currency = shipment.currency;
    let goods = in_minor_units(
        currency,
        shipment
            .lines
            .iter()
            .try_fold(Decimal::ZERO, |sum, line| add(sum, line.value))?,
    );
    let shipping = in_minor_units(currency, shipment.shipping);
    let mut notes = Vec::new();
    if !shipment.destination_region.is_empty() && rule.region.is_empty() {
        notes.push(format!(
            "no rule for region {}: the {} country-wide rule applies",
            shipment.destination_region, rule.country_code
        ));
    }
    let cross_border = !shipment.origin_country.eq_ignore_ascii_case(destination);
    let (duty, tax) = if cross_border {
        import_charges(rule, fx, shipment, goods, shipping, &mut notes)?
    } else {
        (
            Decimal::ZERO,
            domestic_tax(rule, currency, goods, shipping, &mut notes)?,
        )
    };
    // Zero components come back as a bare 0: give every amount the currency's minor units.
    let (duty, tax) = (
        in_minor_units(currency, duty),
        in_minor_units(currency, tax),
    );
    let total = add(add(add(goods, shipping)?, duty)?, tax)?;
    Ok(LandedCost {
        goods,
        shipping,
        duty,
        tax,
        total,
        cross_border,
        notes,
    })
}

fn check_shipment(shipment: &ShipmentValue) -> Result<(), TaxError> {
    if shipment.shipping < Decimal::ZERO {
        return Err(TaxError::InvalidShipment("shipping is negative".into()));
    }
    if let Some(line) = shipment
        .lines
        .iter()
        .find(|line| line.value < Decimal::ZERO)
    {
        return Err(TaxError::InvalidShipment(format!(
            "line {} has a negative value",
            line.hs_code
        )));
    }
    Ok(())
}

fn domestic_tax(
    rule: &TaxRule,
    currency: Currency,
    goods: Decimal,
    shipping: Decimal,
    notes: &mut Vec<String>,
) -> Result<Decimal, TaxError> {
    if rule.sales_tax_rate.is_zero() {
        notes.push(format!("domestic {}: no sales tax", rule.place()));
        return Ok(Decimal::ZERO);
    }
    let (base, base_words) = if rule.tax_shipping {
        (add(goods, shipping)?, "goods + shipping")
    } else {
        (goods, "goods only (shipping not taxed)")
    };
    notes.push(format!(
        "domestic {}: sales tax/VAT {} on {base_words}",
        rule.place(),
        percent(rule.sales_tax_rate)
    ));
    Ok(in_minor_units(currency, mul(rule.sales_tax_rate, base)?))
}

fn import_charges(
    rule: &TaxRule,
    fx: &FxRates,
    shipment: &ShipmentValue,
    goods: Decimal,
    shipping: Decimal,
    notes: &mut Vec<String>,
) -> Result<(Decimal, Decimal), TaxError> {
    let currency = shipment.currency;
    let country = &rule.country_code;
    let threshold_code = rule.de_minimis_currency.as_str();
    let goods_at_threshold = fx.convert(goods, currency.code(), threshold_code)?;
    if currency.code() != threshold_code {
        notes.push(format!(
            "goods {} = {} at the {} reference rate",
            money_text(goods, currency.code()),
            money_text(goods_at_threshold, threshold_code),
            fx.as_of()
        ));
    }
    let threshold = money_text(rule.de_minimis, threshold_code);
    let over = goods_at_threshold > rule.de_minimis;

    let duty = if over {
        let mut owed = Decimal::ZERO;
        for line in &shipment.lines {
            let entry = rule.duty_rate_for(&line.hs_code);
            let rate = entry.map_or(rule.default_duty_rate, |entry| entry.rate);
            let why = entry.map_or_else(
                || "default rate".to_owned(),
                |entry| format!("rate for HS {}", entry.hs_prefix),
            );
            notes.push(format!(
                "over {country} de minimis of {threshold}: duty {} on {} ({why})",
                percent(rate),
                line.hs_code
            ));
            owed = add(owed, mul(line.value, rate)?)?;
        }
        in_minor_units(currency, owed)
    } else if rule.low_value_duty_per_item > Decimal::ZERO && !shipment.lines.is_empty() {
        let subheadings: BTreeSet<String> = shipment
            .lines
            .iter()
            .map(|line| subheading(&line.hs_code))
            .collect();
        let items = Decimal::from(subheadings.len());
        let flat = mul(rule.low_value_duty_per_item, items)?;
        let owed = in_minor_units(currency, fx.convert(flat, threshold_code, currency.code())?);
        let converted = if currency.code() == threshold_code {
            String::new()
        } else {
            format!(" = {}", money_text(owed, currency.code()))
        };
        notes.push(format!(
            "under {country} de minimis of {threshold}: flat low-value duty {} x {} tariff subheading(s) ({}) = {}{converted}",
            money_text(rule.low_value_duty_per_item, threshold_code),
            subheadings.len(),
            subheadings.into_iter().collect::<Vec<_>>().join(", "),
            money_text(flat, threshold_code)
        ));
        owed
    } else {
        notes.push(format!(
            "under {country} de minimis of {threshold}: no duty"
        ));
        Decimal::ZERO
    };

    let tax = if rule.import_vat_rate.is_zero() {
        notes.push(format!("{} charges no import VAT/GST", rule.place()));
        Decimal::ZERO
    } else if over || rule.vat_below_de_minimis {
        notes.push(format!(
            "import VAT {} on goods + shipping + duty",
            percent(rule.import_vat_rate)
        ));
        if !over {
            notes.push(format!(
                "{country} charges VAT below the de minimis too (usually collected by the seller)"
            ));
        }
        in_minor_units(
            currency,
            mul(rule.import_vat_rate, add(add(goods, shipping)?, duty)?)?,
        )
    } else {
        notes.push(format!(
            "under {country} de minimis of {threshold}: no import VAT"
        ));
        Decimal::ZERO
    };
    Ok((duty, tax))
}

/// The digits of an HS code, so "6109.10.00" and "61091000" match the same prefixes.
fn hs_digits(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

fn subheading(code: &str) -> String {
    hs_digits(code).chars().take(SUBHEADING_DIGITS).collect()
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, TaxError> {
    a.checked_add(b).ok_or(TaxError::Overflow)
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, TaxError> {
    a.checked_mul(b).ok_or(TaxError::Overflow)
}

/// `amount` rounded with [`Currency::round`] and written with exactly the currency's minor units,
/// so "5" shows as "5.00" and a JPY amount has no decimals.
fn in_minor_units(currency: Currency, amount: Decimal) -> Decimal {
    let mut rounded = currency.round(amount);
    rounded.rescale(currency.minor_units());
    rounded
}

/// "0.09975" -> "9.975%".
fn percent(rate: Decimal) -> String {
    rate.checked_mul(Decimal::ONE_HUNDRED).map_or_else(
        || rate.to_string(),
        |value| format!("{}%", value.normalize()),
    )
}

/// An amount with its currency's minor units ("135.00 GBP", "10000 JPY").
fn money_text(amount: Decimal, code: &str) -> String {
    match Currency::parse(code) {
        Some(currency) => {
            format!("{} {code}", in_minor_units(currency, amount))
        }
        None => format!("{amount} {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn shipment(
        route: (&str, &str, &str),
        currency: &str,
        lines: &[(&str, &str)],
        shipping: &str,
    ) -> ShipmentValue {
        let (origin, destination, region) = route;
        ShipmentValue {
            origin_country: origin.into(),
            destination_country: destination.into(),
            destination_region: region.into(),
            currency: Currency::parse(currency).unwrap(),
            lines: lines
                .iter()
                .map(|(hs_code, value)| GoodsLine {
                    hs_code: (*hs_code).into(),
                    value: dec(value),
                })
                .collect(),
            shipping: dec(shipping),
        }
    }

    fn quote(shipment: &ShipmentValue) -> LandedCost {
        let table = TaxTable::seeded().unwrap();
        let fx = FxRates::seeded().unwrap();
        landed_cost(&table, &fx, shipment).unwrap()
    }

    /// (goods, shipping, duty, tax, total) as decimals, for one-line assertions.
    fn parts(cost: &LandedCost) -> [Decimal; 5] {
        [cost.goods, cost.shipping, cost.duty, cost.tax, cost.total]
    }

    fn expect(values: [&str; 5]) -> [Decimal; 5] {
        values.map(dec)
    }

    fn has_note(cost: &LandedCost, words: &str) -> bool {
        cost.notes.iter().any(|note| note.contains(words))
    }

    // ----- United States -----

    #[test]
    fn us_domestic_state_rates() {
        // goods 100.00, shipping 10.00, base state rates only (local taxes are not included):
        // US-CA 7.25% on goods only (separately stated shipping is exempt) = 7.25
        // US-NY 4% on 110.00 = 4.40; US-TX 6.25% on 110.00 = 6.875 -> 6.88 (half away from zero)
        // US-WA 6.5% on 110.00 = 7.15; US-OR no sales tax = 0
        // US with no state: no federal sales tax = 0
        let cases = [
            ("US-CA", "7.25"),
            ("US-NY", "4.40"),
            ("US-TX", "6.88"),
            ("US-WA", "7.15"),
            ("US-OR", "0"),
            ("", "0"),
        ];
        for (region, tax) in cases {
            let cost = quote(&shipment(
                ("US", "US", region),
                "USD",
                &[("610910", "100.00")],
                "10.00",
            ));
            assert_eq!(cost.tax, dec(tax), "{region}: {:?}", cost.notes);
            assert_eq!(cost.total, dec("110.00") + dec(tax), "{region}");
            assert!(!cost.cross_border && cost.duty.is_zero());
        }
    }

    #[test]
    fn us_unknown_state_falls_back_to_the_country_rule() {
        let cost = quote(&shipment(
            ("US", "US", "US-FL"),
            "USD",
            &[("610910", "100.00")],
            "0",
        ));
        assert_eq!(cost.tax, Decimal::ZERO);
        assert!(
            has_note(&cost, "no rule for region US-FL"),
            "{:?}",
            cost.notes
        );
    }

    #[test]
    fn us_import_below_the_old_800_dollars_pays_duty() {
        // De minimis suspended (threshold 0 USD), so a 50.00 T-shirt pays duty:
        // 6109 cotton T-shirt 16.5% x 50.00 = 8.25; no import VAT in the US; shipping 5.00
        // total = 50.00 + 5.00 + 8.25 = 63.25
        let cost = quote(&shipment(
            ("CN", "US", "US-CA"),
            "USD",
            &[("6109.10.0012", "50.00")],
            "5.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["50.00", "5.00", "8.25", "0", "63.25"])
        );
        assert!(
            has_note(
                &cost,
                "over US de minimis of 0.00 USD: duty 16.5% on 6109.10.0012"
            ),
            "{:?}",
            cost.notes
        );
        assert!(has_note(&cost, "US-CA charges no import VAT/GST"));
    }

    #[test]
    fn us_import_mixed_order_uses_the_longest_prefix() {
        // laptop 8471.30 Free: 1200.00 x 0 = 0
        // man-made-fibre T-shirt 6109.90.10 matches "61099010" (32%) over "6109" (16.5%): 40.00 x 0.32 = 12.80
        // sports shoes 6404.11 20%: 80.00 x 0.20 = 16.00
        // duty 28.80; total = 1320.00 + 20.00 + 28.80 = 1368.80
        let lines = [
            ("847130", "1200.00"),
            ("6109.90.1009", "40.00"),
            ("640411", "80.00"),
        ];
        let cost = quote(&shipment(("CN", "US", ""), "USD", &lines, "20.00"));
        assert_eq!(
            parts(&cost),
            expect(["1320.00", "20.00", "28.80", "0", "1368.80"])
        );
        assert!(
            has_note(&cost, "duty 32% on 6109.90.1009 (rate for HS 61099010)"),
            "{:?}",
            cost.notes
        );
    }

    // ----- Canada -----

    #[test]
    fn ca_domestic_provinces() {
        // goods 100.00 + shipping 10.00 = 110.00 taxable everywhere in Canada
        // ON HST 13% = 14.30; NS HST 14% (since 1 Apr 2025) = 15.40; NB/NL/PE HST 15% = 16.50
        // QC GST 5% + QST 9.975% = 14.975% x 110 = 16.4725 -> 16.47; BC GST 5% + PST 7% = 13.20
        // AB has no rule of its own: GST 5% = 5.50
        let cases = [
            ("CA-ON", "14.30"),
            ("CA-NS", "15.40"),
            ("CA-NB", "16.50"),
            ("CA-NL", "16.50"),
            ("CA-PE", "16.50"),
            ("CA-QC", "16.47"),
            ("CA-BC", "13.20"),
            ("CA-AB", "5.50"),
        ];
        for (region, tax) in cases {
            let cost = quote(&shipment(
                ("CA", "CA", region),
                "CAD",
                &[("610910", "100.00")],
                "10.00",
            ));
            assert_eq!(cost.tax, dec(tax), "{region}: {:?}", cost.notes);
        }
    }

    #[test]
    fn ca_import_at_or_under_20_cad_is_free() {
        // 18.00 CAD <= 20 CAD: no duty, no GST/HST; total = 18.00 + 5.00 = 23.00
        let cost = quote(&shipment(
            ("CN", "CA", "CA-ON"),
            "CAD",
            &[("950300", "18.00")],
            "5.00",
        ));
        assert_eq!(parts(&cost), expect(["18.00", "5.00", "0", "0", "23.00"]));
        assert!(
            has_note(&cost, "under CA de minimis of 20.00 CAD: no duty"),
            "{:?}",
            cost.notes
        );
        assert!(has_note(
            &cost,
            "under CA de minimis of 20.00 CAD: no import VAT"
        ));
    }

    #[test]
    fn ca_import_over_20_cad() {
        // T-shirt 6109 18%: 60.00 x 0.18 = 10.80
        // ON HST 13% x (60.00 + 10.00 + 10.80 = 80.80) = 10.504 -> 10.50
        // total = 60.00 + 10.00 + 10.80 + 10.50 = 91.30
        let cost = quote(&shipment(
            ("CN", "CA", "CA-ON"),
            "CAD",
            &[("610910", "60.00")],
            "10.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["60.00", "10.00", "10.80", "10.50", "91.30"])
        );
    }

    // ----- United Kingdom -----

    #[test]
    fn gb_domestic() {
        // VAT 20% x (100.00 + 5.00) = 21.00; total 126.00
        let cost = quote(&shipment(
            ("GB", "GB", ""),
            "GBP",
            &[("610910", "100.00")],
            "5.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["100.00", "5.00", "0", "21.00", "126.00"])
        );
    }

    #[test]
    fn gb_import_under_135_pays_vat_but_no_duty() {
        // 100.00 GBP <= 135: no duty; VAT 20% x (100.00 + 10.00) = 22.00 (seller-collected); total 132.00
        let cost = quote(&shipment(
            ("CN", "GB", ""),
            "GBP",
            &[("610910", "100.00")],
            "10.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["100.00", "10.00", "0", "22.00", "132.00"])
        );
        assert!(
            has_note(&cost, "under GB de minimis of 135.00 GBP: no duty"),
            "{:?}",
            cost.notes
        );
        assert!(has_note(&cost, "import VAT 20% on goods + shipping + duty"));
    }

    #[test]
    fn gb_import_over_135() {
        // T-shirts 6109 12%: 150.00 x 0.12 = 18.00
        // VAT 20% x (150.00 + 10.00 + 18.00 = 178.00) = 35.60; total 213.60
        let cost = quote(&shipment(
            ("CN", "GB", ""),
            "GBP",
            &[("610910", "150.00")],
            "10.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["150.00", "10.00", "18.00", "35.60", "213.60"])
        );
        assert!(
            has_note(
                &cost,
                "over GB de minimis of 135.00 GBP: duty 12% on 610910 (rate for HS 6109)"
            ),
            "{:?}",
            cost.notes
        );
    }

    #[test]
    fn bhd_order_to_gb() {
        // BHD has 3 decimals. 0.376 BHD = 1 USD (peg); 0.753377 GBP = 1 USD (ECB 2025-05-09).
        // Over: 70.125 BHD = 70.125 / 0.376 x 0.753377 = 140.51 GBP > 135
        //   duty 12% x 70.125 = 8.415; VAT 20% x (70.125 + 4.750 + 8.415 = 83.290) = 16.658
        //   total = 70.125 + 4.750 + 8.415 + 16.658 = 99.948
        let over = quote(&shipment(
            ("BH", "GB", ""),
            "BHD",
            &[("610910", "70.125")],
            "4.750",
        ));
        assert_eq!(
            parts(&over),
            expect(["70.125", "4.750", "8.415", "16.658", "99.948"])
        );
        assert!(
            has_note(&over, "goods 70.125 BHD = 140.51 GBP"),
            "{:?}",
            over.notes
        );
        // Under: 50.000 BHD = 100.18 GBP <= 135: no duty; VAT 20% x (50.000 + 4.750) = 10.950
        //   total = 50.000 + 4.750 + 10.950 = 65.700
        let under = quote(&shipment(
            ("BH", "GB", ""),
            "BHD",
            &[("610910", "50.000")],
            "4.750",
        ));
        assert_eq!(
            parts(&under),
            expect(["50.000", "4.750", "0", "10.950", "65.700"])
        );
    }

    // ----- Germany and France (EU) -----

    #[test]
    fn de_domestic() {
        // VAT 19% x (100.00 + 4.90 = 104.90) = 19.931 -> 19.93; total 124.83
        let cost = quote(&shipment(
            ("DE", "DE", ""),
            "EUR",
            &[("610910", "100.00")],
            "4.90",
        ));
        assert_eq!(
            parts(&cost),
            expect(["100.00", "4.90", "0", "19.93", "124.83"])
        );
    }

    #[test]
    fn de_import_under_150_pays_the_flat_eur_3_per_subheading() {
        // goods 20.00 + 15.00 (both 6109.10) + 40.00 (6404.11) = 75.00 EUR <= 150
        // flat duty: 2 distinct subheadings (610910, 640411) x 3.00 EUR = 6.00
        // VAT 19% x (75.00 + 5.00 + 6.00 = 86.00) = 16.34; total 75 + 5 + 6 + 16.34 = 102.34
        let lines = [
            ("6109.10.00", "20.00"),
            ("610910", "15.00"),
            ("640411", "40.00"),
        ];
        let cost = quote(&shipment(("CN", "DE", ""), "EUR", &lines, "5.00"));
        assert_eq!(
            parts(&cost),
            expect(["75.00", "5.00", "6.00", "16.34", "102.34"])
        );
        assert!(
            has_note(
                &cost,
                "under DE de minimis of 150.00 EUR: flat low-value duty 3.00 EUR x 2 tariff subheading(s) (610910, 640411) = 6.00 EUR"
            ),
            "{:?}",
            cost.notes
        );
    }

    #[test]
    fn de_import_over_150() {
        // sports shoes 6404.11 16.9%: 200.00 x 0.169 = 33.80
        // other textile shoes 6404.19 matches "640419" (17%) over "6404": 50.00 x 0.17 = 8.50
        // duty 42.30; VAT 19% x (250.00 + 10.00 + 42.30 = 302.30) = 57.437 -> 57.44
        // total = 250.00 + 10.00 + 42.30 + 57.44 = 359.74
        let cost = quote(&shipment(
            ("CN", "DE", ""),
            "EUR",
            &[("640411", "200.00"), ("640419", "50.00")],
            "10.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["250.00", "10.00", "42.30", "57.44", "359.74"])
        );
    }

    #[test]
    fn fr_domestic() {
        // VAT 20% x (50.00 + 5.00) = 11.00; total 66.00
        let cost = quote(&shipment(
            ("FR", "FR", ""),
            "EUR",
            &[("330499", "50.00")],
            "5.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["50.00", "5.00", "0", "11.00", "66.00"])
        );
    }

    #[test]
    fn fr_import_under_150_in_usd() {
        // 60.00 USD x 0.888731 = 53.32 EUR <= 150: flat duty 3.00 EUR for 1 subheading
        // 3.00 EUR / 0.888731 = 3.3756 USD -> 3.38
        // VAT 20% x (60.00 + 8.00 + 3.38 = 71.38) = 14.276 -> 14.28; total 85.66
        let cost = quote(&shipment(
            ("US", "FR", ""),
            "USD",
            &[("950300", "60.00")],
            "8.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["60.00", "8.00", "3.38", "14.28", "85.66"])
        );
    }

    #[test]
    fn fr_import_over_150_duty_free_goods() {
        // smartphone 8517.13 0% and cosmetics 3304 0%: duty 0 although over 150 EUR
        // VAT 20% x (400.00 + 30.00 + 12.00 = 442.00) = 88.40; total 530.40
        let cost = quote(&shipment(
            ("CN", "FR", ""),
            "EUR",
            &[("851713", "400.00"), ("330499", "30.00")],
            "12.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["430.00", "12.00", "0", "88.40", "530.40"])
        );
        assert!(
            has_note(&cost, "over FR de minimis of 150.00 EUR: duty 0% on 851713"),
            "{:?}",
            cost.notes
        );
    }

    // ----- Japan (JPY has no decimals) -----

    #[test]
    fn jp_domestic_rounds_to_whole_yen() {
        // consumption tax 10% x (5485 + 660 = 6145) = 614.5 -> 615 (half away from zero); total 6760
        let cost = quote(&shipment(
            ("JP", "JP", ""),
            "JPY",
            &[("610910", "5485")],
            "660",
        ));
        assert_eq!(parts(&cost), expect(["5485", "660", "0", "615", "6760"]));
    }

    #[test]
    fn jp_import_at_or_under_10000_yen_is_free() {
        // 8000 JPY <= 10000: no duty, no consumption tax; total 9500
        let cost = quote(&shipment(
            ("US", "JP", ""),
            "JPY",
            &[("610910", "8000")],
            "1500",
        ));
        assert_eq!(parts(&cost), expect(["8000", "1500", "0", "0", "9500"]));
        assert!(
            has_note(&cost, "under JP de minimis of 10000 JPY: no duty"),
            "{:?}",
            cost.notes
        );
    }

    #[test]
    fn jp_import_over_10000_yen() {
        // knitted apparel (chapter 61) 10.9%: 29999 x 0.109 = 3269.891 -> 3270
        // consumption tax 10% x (29999 + 1500 + 3270 = 34769) = 3476.9 -> 3477
        // total = 29999 + 1500 + 3270 + 3477 = 38246
        let cost = quote(&shipment(
            ("CN", "JP", ""),
            "JPY",
            &[("610910", "29999")],
            "1500",
        ));
        assert_eq!(
            parts(&cost),
            expect(["29999", "1500", "3270", "3477", "38246"])
        );
    }

    // ----- Australia -----

    #[test]
    fn au_domestic() {
        // GST 10% x (80.00 + 9.95 = 89.95) = 8.995 -> 9.00; total 98.95
        let cost = quote(&shipment(
            ("AU", "AU", ""),
            "AUD",
            &[("610910", "80.00")],
            "9.95",
        ));
        assert_eq!(
            parts(&cost),
            expect(["80.00", "9.95", "0", "9.00", "98.95"])
        );
    }

    #[test]
    fn au_import_under_1000_pays_gst_only() {
        // 900.00 AUD <= 1000: no duty; vendor-collected GST 10% x (900.00 + 20.00) = 92.00; total 1012.00
        let cost = quote(&shipment(
            ("CN", "AU", ""),
            "AUD",
            &[("610910", "900.00")],
            "20.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["900.00", "20.00", "0", "92.00", "1012.00"])
        );
    }

    #[test]
    fn au_import_over_1000() {
        // footwear 6404 5%: 1200.00 x 0.05 = 60.00
        // GST 10% x (1200.00 + 50.00 + 60.00 = 1310.00) = 131.00; total 1441.00
        let cost = quote(&shipment(
            ("CN", "AU", ""),
            "AUD",
            &[("640411", "1200.00")],
            "50.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["1200.00", "50.00", "60.00", "131.00", "1441.00"])
        );
    }

    // ----- India -----

    #[test]
    fn in_domestic() {
        // GST 18% x (1000.00 + 50.00) = 189.00; total 1239.00
        let cost = quote(&shipment(
            ("IN", "IN", ""),
            "INR",
            &[("610910", "1000.00")],
            "50.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["1000.00", "50.00", "0", "189.00", "1239.00"])
        );
    }

    #[test]
    fn in_import_has_no_de_minimis() {
        // personal-import duty 10% (default): 500.00 x 0.10 = 50.00
        // IGST 18% x (500.00 + 100.00 + 50.00 = 650.00) = 117.00; total 767.00
        let cost = quote(&shipment(
            ("CN", "IN", ""),
            "INR",
            &[("610910", "500.00")],
            "100.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["500.00", "100.00", "50.00", "117.00", "767.00"])
        );
        assert!(
            has_note(
                &cost,
                "over IN de minimis of 0.00 INR: duty 10% on 610910 (default rate)"
            ),
            "{:?}",
            cost.notes
        );
    }

    #[test]
    fn in_import_priced_in_usd() {
        // laptop, personal-import duty 10%: 800.00 x 0.10 = 80.00
        // IGST 18% x (800.00 + 30.00 + 80.00 = 910.00) = 163.80; total 1073.80 USD
        let cost = quote(&shipment(
            ("US", "IN", ""),
            "USD",
            &[("847130", "800.00")],
            "30.00",
        ));
        assert_eq!(
            parts(&cost),
            expect(["800.00", "30.00", "80.00", "163.80", "1073.80"])
        );
    }

    #[test]
    fn amounts_carry_the_currency_minor_units() {
        // Decimal equality ignores scale, so check the written form too: zeros and whole
        // amounts are shown with 2 decimals for USD, 3 for BHD and none for JPY.
        let usd = quote(&shipment(
            ("CN", "US", ""),
            "USD",
            &[("847130", "100")],
            "5",
        ));
        let written = [usd.goods, usd.shipping, usd.duty, usd.tax, usd.total]
            .map(|amount| amount.to_string());
        assert_eq!(written, ["100.00", "5.00", "0.00", "0.00", "105.00"]);
        let bhd = quote(&shipment(
            ("BH", "GB", ""),
            "BHD",
            &[("610910", "50")],
            "4.75",
        ));
        assert_eq!(
            (bhd.duty.to_string(), bhd.tax.to_string()),
            ("0.000".to_owned(), "10.950".to_owned())
        );
        let jpy = quote(&shipment(
            ("JP", "JP", ""),
            "JPY",
            &[("610910", "5485")],
            "660",
        ));
        assert_eq!(jpy.tax.to_string(), "615");
    }

    // ----- Rules, rates and errors -----

    fn plain_rule(country: &str, region: &str) -> TaxRule {
        TaxRule {
            country_code: country.into(),
            region: region.into(),
            sales_tax_rate: dec("0.10"),
            import_vat_rate: dec("0.10"),
            de_minimis: Decimal::ZERO,
            de_minimis_currency: "USD".into(),
            default_duty_rate: dec("0.05"),
            duty_rates: Vec::new(),
            tax_shipping: true,
            vat_below_de_minimis: false,
            low_value_duty_per_item: Decimal::ZERO,
            source: "test".into(),
        }
    }

    #[test]
    fn longest_hs_prefix_wins() {
        let mut rule = plain_rule("XX", "");
        rule.duty_rates = vec![
            DutyRate {
                hs_prefix: "61".into(),
                rate: dec("0.10"),
            },
            DutyRate {
                hs_prefix: "610910".into(),
                rate: dec("0.15"),
            },
            DutyRate {
                hs_prefix: "6109".into(),
                rate: dec("0.12"),
            },
        ];
        let rate = |code: &str| rule.duty_rate_for(code).map(|entry| entry.rate);
        assert_eq!(rate("6109.10.0012"), Some(dec("0.15")));
        assert_eq!(rate("610990"), Some(dec("0.12")));
        assert_eq!(rate("6101"), Some(dec("0.10")));
        assert_eq!(rate("9999"), None, "no match: the default rate applies");
        assert_eq!(
            rate("6"),
            None,
            "a code shorter than every prefix matches none"
        );
    }

    #[test]
    fn unknown_destination_is_an_error() {
        let table = TaxTable::seeded().unwrap();
        let fx = FxRates::seeded().unwrap();
        let error = landed_cost(
            &table,
            &fx,
            &shipment(("US", "ZZ", ""), "USD", &[("6109", "10")], "0"),
        )
        .unwrap_err();
        assert_eq!(error, TaxError::UnknownCountry("ZZ".into()));
    }

    #[test]
    fn missing_exchange_rate_is_an_error() {
        let table = TaxTable::seeded().unwrap();
        let fx = FxRates::new(
            "USD",
            "2026-11-25",
            "test",
            BTreeMap::from([("USD".to_owned(), Decimal::ONE)]),
        )
        .unwrap();
        let error = landed_cost(
            &table,
            &fx,
            &shipment(("US", "GB", ""), "USD", &[("6109", "10")], "0"),
        )
        .unwrap_err();
        assert_eq!(error, TaxError::NoFxRate("GBP".into()));
    }

    #[test]
    fn negative_amounts_are_refused() {
        let table = TaxTable::seeded().unwrap();
        let fx = FxRates::seeded().unwrap();
        let negative_shipping = shipment(("US", "US", ""), "USD", &[("6109", "10")], "-1");
        assert!(matches!(
            landed_cost(&table, &fx, &negative_shipping),
            Err(TaxError::InvalidShipment(_))
        ));
        let negative_line = shipment(("US", "US", ""), "USD", &[("6109", "-10")], "0");
        assert!(matches!(
            landed_cost(&table, &fx, &negative_line),
            Err(TaxError::InvalidShipment(_))
        ));
    }

    #[test]
    fn seeded_rules_load_and_every_rule_is_cited() {
        let table = TaxTable::seeded().unwrap();
        assert!(!table.rules().is_empty());
        for rule in table.rules() {
            assert!(
                rule.source.contains("http"),
                "{} has no URL in its source",
                rule.place()
            );
            assert!(
                !rule.source.trim().is_empty(),
                "{} has no source",
                rule.place()
            );
        }
    }

    #[test]
    fn every_required_country_and_region_is_seeded() {
        let table = TaxTable::seeded().unwrap();
        for country in ["US", "CA", "GB", "DE", "FR", "JP", "AU", "IN"] {
            let rule = table
                .rule(country, "")
                .unwrap_or_else(|| panic!("{country} missing"));
            assert!(rule.region.is_empty());
        }
        for region in [
            "US-CA", "US-NY", "US-TX", "US-WA", "US-OR", "CA-ON", "CA-NS", "CA-NB", "CA-NL",
            "CA-PE", "CA-QC", "CA-BC",
        ] {
            let rule = table
                .rule(&region[..2], region)
                .unwrap_or_else(|| panic!("{region} missing"));
            assert_eq!(rule.region, region);
        }
    }

    #[test]
    fn seeded_thresholds_and_rates_are_the_researched_ones() {
        let table = TaxTable::seeded().unwrap();
        let threshold = |country: &str| {
            let rule = table.rule(country, "").unwrap();
            (
                rule.de_minimis,
                rule.de_minimis_currency.as_str(),
                rule.import_vat_rate,
            )
        };
        assert_eq!(threshold("US"), (dec("0"), "USD", dec("0")));
        assert_eq!(threshold("CA"), (dec("20"), "CAD", dec("0.05")));
        assert_eq!(threshold("GB"), (dec("135"), "GBP", dec("0.20")));
        assert_eq!(threshold("DE"), (dec("150"), "EUR", dec("0.19")));
        assert_eq!(threshold("FR"), (dec("150"), "EUR", dec("0.20")));
        assert_eq!(threshold("JP"), (dec("10000"), "JPY", dec("0.10")));
        assert_eq!(threshold("AU"), (dec("1000"), "AUD", dec("0.10")));
        assert_eq!(threshold("IN"), (dec("0"), "INR", dec("0.18")));
        assert_eq!(
            table.rule("DE", "").unwrap().low_value_duty_per_item,
            dec("3")
        );
        assert_eq!(
            table.rule("CA", "CA-NS").unwrap().sales_tax_rate,
            dec("0.14")
        );
    }

    #[test]
    fn check_refuses_inconsistent_region_rules() {
        let country = plain_rule("XX", "");
        let mut region = plain_rule("XX", "XX-AA");
        assert_eq!(
            TaxTable::new(vec![country.clone(), region.clone()]).check(),
            Ok(())
        );
        region.de_minimis = dec("10");
        let error = TaxTable::new(vec![country.clone(), region])
            .check()
            .unwrap_err();
        assert!(
            error.to_string().contains("customs fields differ"),
            "{error}"
        );
        let orphan = plain_rule("YY", "YY-AA");
        assert!(TaxTable::new(vec![orphan]).check().is_err());
        let mut no_source = country;
        no_source.source = " ".into();
        assert!(TaxTable::new(vec![no_source]).check().is_err());
    }

    #[test]
    fn seeded_fx_rates_convert_through_the_dollar() {
        let fx = FxRates::seeded().unwrap();
        assert_eq!(fx.as_of(), "2025-05-09");
        assert!(fx.source().contains("European Central Bank"));
        for code in [
            "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "INR", "CHF", "CNY", "BHD",
        ] {
            assert!(
                fx.convert(Decimal::ONE, code, "USD").is_ok(),
                "{code} missing"
            );
        }
        assert_eq!(
            fx.convert(dec("12.34"), "EUR", "EUR").unwrap(),
            dec("12.34")
        );
        // 0.376 BHD = 1 USD
        assert_eq!(
            fx.convert(dec("0.376"), "BHD", "USD").unwrap(),
            Decimal::ONE
        );
        // 100 EUR = 100 / 0.888731 x 0.753377 GBP = 84.77 GBP (ECB EUR/GBP 0.8477)
        let gbp = fx.convert(dec("100"), "EUR", "GBP").unwrap();
        assert_eq!(gbp.round_dp(2), dec("84.77"));
        assert_eq!(
            fx.convert(Decimal::ONE, "XXX", "USD").unwrap_err(),
            TaxError::NoFxRate("XXX".into())
        );
    }

    #[test]
    fn fx_rates_must_list_their_base_at_one() {
        let rates = BTreeMap::from([("EUR".to_owned(), dec("0.9"))]);
        assert!(FxRates::new("USD", "2026-11-25", "test", rates).is_err());
    }
}
