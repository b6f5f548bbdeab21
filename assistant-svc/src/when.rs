//! A delivery window as the buyer said it ("by tomorrow", "on Saturday", "before 6 pm"), as
//! the half-open interval the planner must fit the promise into. Days are calendar days in
//! UTC; "before 6 pm" means today if that hour is still ahead, else tomorrow.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};

use crate::nlu::Window;

/// The interval `[start, end)` for `window`, said at `now`.
pub fn interval(window: Window, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |at: DateTime<Utc>| at.date_naive().and_time(NaiveTime::MIN).and_utc();
    let today = midnight(now);
    match window {
        Window::Tomorrow => (now, today + Duration::days(2)),
        Window::OnWeekday(day) => {
            let ahead =
                (i64::from(day) - i64::from(now.weekday().num_days_from_monday())).rem_euclid(7);
            // "On Saturday" said on a Saturday means next week's.
            let ahead = if ahead == 0 { 7 } else { ahead };
            let start = today + Duration::days(ahead);
            (start, start + Duration::days(1))
        }
        Window::BeforeHour(hour) => {
            let at_hour = today + Duration::hours(i64::from(hour));
            let end = if at_hour > now {
                at_hour
            } else {
                at_hour + Duration::days(1)
            };
            (now, end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn said_windows_become_intervals() {
        // Monday 30 November 2026, 10:00.
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
        assert_eq!(interval(Window::Tomorrow, now), (now, at(2, 0)));
        assert_eq!(interval(Window::OnWeekday(5), now), (at(5, 0), at(6, 0)));
        assert_eq!(
            interval(Window::OnWeekday(0), now),
            (at(7, 0), at(8, 0)),
            "next Monday"
        );
        assert_eq!(
            interval(Window::BeforeHour(18), now),
            (now, Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap())
        );
        assert_eq!(
            interval(Window::BeforeHour(9), now),
            (now, at(1, 9)),
            "tomorrow's 9:00"
        );
    }
}
