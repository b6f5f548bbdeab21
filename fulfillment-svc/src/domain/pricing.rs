//! Delivery prices: a method's base rate, scaled by distance band and parcel weight, times a
//! load factor for expedited methods (surge when centers and carriers are busy), bounded by a
//! configured floor and cap, in the order's currency rounded to its minor units.

use rust_decimal::Decimal;

use super::Method;

/// Pricing rules (from configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct PricingPolicy {
    /// (up to km, factor) in increasing order; beyond the last band its factor applies.
    pub distance_bands: Vec<(f64, Decimal)>,
    /// Added per kilogram above the first, as a fraction of the base rate.
    pub per_extra_kg: Decimal,
    /// Load share where surge starts.
    pub surge_from_load: f64,
    /// The lowest multiplier.
    pub surge_floor: Decimal,
    /// The highest multiplier (reached at full load).
    pub surge_cap: Decimal,
}

impl Default for PricingPolicy {
    fn default() -> Self {
        Self {
            distance_bands: vec![
                (50.0, Decimal::ONE),
                (200.0, Decimal::new(12, 1)),
                (500.0, Decimal::new(15, 1)),
                (1500.0, Decimal::new(20, 1)),
                (f64::MAX, Decimal::new(30, 1)),
            ],
            per_extra_kg: Decimal::new(15, 2),
            surge_from_load: 0.6,
            surge_floor: Decimal::ONE,
            surge_cap: Decimal::new(25, 1),
        }
    }
}

/// The multiplier for a load share (0..1): 1 up to `surge_from_load`, then rising linearly to
/// the cap at full load; clamped to [floor, cap]. Standard shipping does not surge.
pub fn surge(method: Method, load: f64, policy: &PricingPolicy) -> Decimal {
    let raw = if method == Method::Standard || load <= policy.surge_from_load {
        Decimal::ONE
    } else {
        let span = (1.0 - policy.surge_from_load).max(f64::EPSILON);
        let share = ((load.min(1.0) - policy.surge_from_load) / span).clamp(0.0, 1.0);
        // Two decimals are precision enough for a multiplier.
        let share = Decimal::from((share * 100.0).round() as i64) / Decimal::ONE_HUNDRED;
        Decimal::ONE + (policy.surge_cap - Decimal::ONE) * share
    };
    raw.clamp(policy.surge_floor, policy.surge_cap)
}

/// The distance factor.
pub fn distance_factor(distance_km: f64, policy: &PricingPolicy) -> Decimal {
    policy
        .distance_bands
        .iter()
        .find(|(up_to, _)| distance_km <= *up_to)
        .or(policy.distance_bands.last())
        .map_or(Decimal::ONE, |(_, factor)| *factor)
}

/// The weight factor: 1 for the first kilogram, plus `per_extra_kg` per started kilogram above.
pub fn weight_factor(weight_grams: u64, policy: &PricingPolicy) -> Decimal {
    let extra_kg = weight_grams.div_ceil(1000).saturating_sub(1);
    Decimal::ONE + policy.per_extra_kg * Decimal::from(extra_kg)
}

/// The unrounded price of a parcel: `base × distance × weight × surge` (the caller converts
/// currency and rounds).
pub fn price(
    base: Decimal,
    method: Method,
    distance_km: f64,
    weight_grams: u64,
    load: f64,
    policy: &PricingPolicy,
) -> Decimal {
    base * distance_factor(distance_km, policy)
        * weight_factor(weight_grams, policy)
        * surge(method, load, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_platform::money::Currency;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn surge_rises_with_load_and_stays_within_floor_and_cap() {
        let policy = PricingPolicy::default();
        let mut last = Decimal::ZERO;
        for step in 0..=20 {
            let load = f64::from(step) / 20.0;
            let multiplier = surge(Method::Express, load, &policy);
            assert!(multiplier >= last, "never falls as load rises");
            assert!(multiplier >= policy.surge_floor && multiplier <= policy.surge_cap);
            last = multiplier;
        }
        assert_eq!(surge(Method::Express, 0.3, &policy), d("1"));
        assert_eq!(
            surge(Method::Express, 0.8, &policy),
            d("1.75"),
            "halfway from 60% to 100%"
        );
        assert_eq!(surge(Method::SameDay, 1.0, &policy), d("2.5"));
        assert_eq!(
            surge(Method::SameDay, 7.0, &policy),
            d("2.5"),
            "overloaded is capped"
        );
        assert_eq!(
            surge(Method::Standard, 1.0, &policy),
            d("1"),
            "standard does not surge"
        );
        let floored = PricingPolicy {
            surge_floor: d("1.2"),
            ..policy
        };
        assert_eq!(surge(Method::Express, 0.0, &floored), d("1.2"));
    }

    #[test]
    fn distance_and_weight_scale_the_base() {
        let policy = PricingPolicy::default();
        assert_eq!(distance_factor(10.0, &policy), d("1"));
        assert_eq!(distance_factor(120.0, &policy), d("1.2"));
        assert_eq!(distance_factor(9000.0, &policy), d("3"));
        assert_eq!(weight_factor(800, &policy), d("1"));
        assert_eq!(weight_factor(1000, &policy), d("1"));
        assert_eq!(weight_factor(1001, &policy), d("1.15"));
        assert_eq!(weight_factor(3500, &policy), d("1.45"));
    }

    #[test]
    fn prices_round_to_the_currencys_minor_units() {
        let policy = PricingPolicy::default();
        // 1333 JPY x 1.2 (120 km) x 1.15 (1.5 kg) x 1.75 (80% load) = 3219.195 -> 3219 JPY.
        let yen = price(d("1333"), Method::Express, 120.0, 1500, 0.8, &policy);
        assert_eq!(Currency::parse("JPY").unwrap().round(yen), d("3219"));
        // 1.235 BHD x 1.5 x 1 x 1 = 1.8525 -> 1.853 BHD (three decimals, half away from zero).
        let dinar = price(d("1.235"), Method::Standard, 300.0, 900, 0.9, &policy);
        assert_eq!(Currency::parse("BHD").unwrap().round(dinar), d("1.853"));
        // 4.90 USD x 1 x 1 x 1 = 4.90 USD.
        assert_eq!(
            Currency::parse("USD").unwrap().round(price(
                d("4.90"),
                Method::Standard,
                5.0,
                100,
                0.0,
                &policy
            )),
            d("4.90")
        );
    }
}
