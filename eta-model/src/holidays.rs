//! Public holidays per country, for the history's `holiday` column and for predictions.
//!
//! Read from a JSON file in the shape of Nager.Date's public-holiday API (`GET
//! /api/v3/PublicHolidays/{year}/{countryCode}` answers an array of `{"date": "2025-12-25",
//! "countryCode": "DE", "global": true, …}`); the answers for several years and countries are
//! concatenated into one array. Only nationwide holidays count (`global: true`, or `global`
//! absent): a regional one closes part of a country, which the history cannot tell apart.
//! `eta-model/data/holidays-de-2025-2027.json` is the sample world's.

use std::{collections::HashSet, path::Path};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Deserialize;

use crate::EtaError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Holiday {
    date: NaiveDate,
    country_code: String,
    #[serde(default = "nationwide")]
    global: bool,
}

fn nationwide() -> bool {
    true
}

/// The nationwide public holidays of some countries.
#[derive(Debug, Clone, Default)]
pub struct HolidayCalendar {
    days: HashSet<(String, NaiveDate)>,
    /// The (country, year) pairs the calendar has any holiday for.
    covered: HashSet<(String, i32)>,
}

impl HolidayCalendar {
    /// A calendar from Nager.Date-shaped JSON.
    pub fn from_json(text: &str) -> Result<Self, EtaError> {
        let holidays: Vec<Holiday> = serde_json::from_str(text)
            .map_err(|e| EtaError::Calendar(format!("not a list of holidays: {e}")))?;
        let days: HashSet<(String, NaiveDate)> = holidays
            .into_iter()
            .filter(|h| h.global)
            .map(|h| (h.country_code.to_ascii_uppercase(), h.date))
            .collect();
        let covered = days
            .iter()
            .map(|(country, date)| (country.clone(), date.year()))
            .collect();
        Ok(Self { days, covered })
    }

    /// Reads a calendar file.
    pub fn open(path: &Path) -> Result<Self, EtaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EtaError::Calendar(format!("{}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| EtaError::Calendar(format!("{}: {e}", path.display())))
    }

    /// Whether `date` is a nationwide holiday in `country` (ISO 3166-1 alpha-2).
    pub fn is_holiday(&self, country: &str, date: NaiveDate) -> bool {
        self.days.contains(&(country.to_ascii_uppercase(), date))
    }

    /// Whether it is a holiday at `at` at a place of `country` at longitude `lng` (its date in
    /// the solar time of that longitude, as the model's hour of the week). `None` when the
    /// calendar knows nothing of the country or of that year — unknown, not "no holiday".
    pub fn holiday_at(&self, country: &str, lng: f64, at: DateTime<Utc>) -> Option<bool> {
        let date = (at + Duration::hours((lng / 15.0).round() as i64)).date_naive();
        let country = country.to_ascii_uppercase();
        if !self.covered.contains(&(country.clone(), date.year())) {
            return None;
        }
        Some(self.days.contains(&(country, date)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> HolidayCalendar {
        HolidayCalendar::from_json(include_str!("../data/holidays-de-2025-2027.json")).unwrap()
    }

    #[test]
    fn the_sample_calendar_knows_germanys_nationwide_holidays() {
        let calendar = sample();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(calendar.is_holiday("DE", day(2026, 12, 25)));
        assert!(
            calendar.is_holiday("de", day(2027, 3, 26)),
            "Good Friday 2027"
        );
        assert!(!calendar.is_holiday("DE", day(2026, 12, 24)));
        assert!(!calendar.is_holiday("FR", day(2026, 12, 25)));
    }

    #[test]
    fn a_country_or_year_the_calendar_does_not_cover_is_unknown() {
        let calendar = sample();
        let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        assert_eq!(
            calendar.holiday_at("DE", 13.4, at(2026, 10, 3, 9)),
            Some(true)
        );
        assert_eq!(
            calendar.holiday_at("DE", 13.4, at(2026, 10, 5, 9)),
            Some(false)
        );
        // 23:00 UTC on 2 October is already the 3rd in Berlin's solar time.
        let late = at(2026, 10, 2, 23);
        assert_eq!(calendar.holiday_at("DE", 13.4, late), Some(true));
        assert_eq!(calendar.holiday_at("FR", 2.3, at(2026, 10, 3, 9)), None);
        assert_eq!(calendar.holiday_at("DE", 13.4, at(2030, 10, 3, 9)), None);
    }

    #[test]
    fn regional_holidays_do_not_count_and_bad_files_are_refused() {
        let calendar = HolidayCalendar::from_json(
            r#"[{"date":"2026-01-06","countryCode":"DE","global":false,"counties":["DE-BY"]},
                {"date":"2026-07-14","countryCode":"FR"}]"#,
        )
        .unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert!(!calendar.is_holiday("DE", day(1, 6)));
        assert!(calendar.is_holiday("FR", day(7, 14)));
        assert!(HolidayCalendar::from_json(r#"{"date":"2026-01-01"}"#).is_err());
        assert!(HolidayCalendar::from_json(r#"[{"date":"1 May","countryCode":"DE"}]"#).is_err());
    }
}
