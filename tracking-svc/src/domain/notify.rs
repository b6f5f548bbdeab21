//! What is worth telling the buyer, and when: the text of each status, the user's choice of
//! events, and quiet hours in their time zone (a push due in quiet hours waits for their end;
//! the in-app alert is shown at once).

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use oms_proto::{order::v1::OrderStatus, tracking::v1::NotificationPreferences};

/// Preferences of a user who never set any: everything, no quiet hours, UTC.
pub fn default_preferences(user_id: &str) -> NotificationPreferences {
    NotificationPreferences {
        user_id: user_id.to_owned(),
        push_statuses: Vec::new(),
        push_enabled: true,
        in_app_enabled: true,
        quiet_start_minute: 0,
        quiet_end_minute: 0,
        time_zone: String::new(),
    }
}

/// Checks preferences; the error names the field.
pub fn check_preferences(
    preferences: &NotificationPreferences,
) -> Result<(), (&'static str, String)> {
    if preferences.quiet_start_minute >= 24 * 60 || preferences.quiet_end_minute >= 24 * 60 {
        return Err((
            "preferences.quiet_start_minute",
            "minutes after midnight, 0 to 1439".into(),
        ));
    }
    if !preferences.time_zone.is_empty() && preferences.time_zone.parse::<Tz>().is_err() {
        return Err((
            "preferences.time_zone",
            format!("{:?} is not an IANA time zone", preferences.time_zone),
        ));
    }
    if preferences
        .push_statuses
        .iter()
        .any(|s| OrderStatus::try_from(*s).is_err() || *s == 0)
    {
        return Err(("preferences.push_statuses", "order statuses only".into()));
    }
    Ok(())
}

/// The title and body of a status worth telling, or `None` (PENDING is never news).
pub fn message_for(status: OrderStatus, order_id: &str) -> Option<(String, String)> {
    let short = order_id
        .get(order_id.len().saturating_sub(6)..)
        .unwrap_or(order_id);
    let (title, body) = match status {
        OrderStatus::Confirmed => ("Order confirmed", "We have your order and are packing it."),
        OrderStatus::RequiresVerification => (
            "Confirm your order",
            "Please confirm this order in the app.",
        ),
        OrderStatus::PartiallyShipped => (
            "Part of your order shipped",
            "The first parcel is on its way.",
        ),
        OrderStatus::Shipped => ("Order shipped", "Your order is on its way."),
        OrderStatus::PartiallyDelivered => ("Parcel delivered", "One of your parcels has arrived."),
        OrderStatus::Delivered => ("Order delivered", "Your order has arrived."),
        OrderStatus::Cancelled => ("Order cancelled", "Your order was cancelled."),
        OrderStatus::Rejected => ("Order not placed", "We could not place your order."),
        OrderStatus::ReturnRequested => (
            "Return started",
            "Print your label and send the parcel back.",
        ),
        OrderStatus::ReturnInTransit => ("Return on its way", "Your return is on its way to us."),
        OrderStatus::Returned => ("Return received", "We have received your return."),
        OrderStatus::Refunded => ("Refund issued", "Your refund is on its way."),
        OrderStatus::Pending | OrderStatus::Unspecified => return None,
    };
    Some((title.to_owned(), format!("{body} (order …{short})")))
}

/// Whether the user wants a push for this status at all.
pub fn wants_push(preferences: &NotificationPreferences, status: OrderStatus) -> bool {
    preferences.push_enabled
        && (preferences.push_statuses.is_empty()
            || preferences.push_statuses.contains(&(status as i32)))
}

/// When a push due `now` may go out: `now`, or the end of the user's quiet hours.
pub fn push_time(preferences: &NotificationPreferences, now: DateTime<Utc>) -> DateTime<Utc> {
    let (start, end) = (preferences.quiet_start_minute, preferences.quiet_end_minute);
    if start == end {
        return now;
    }
    let zone: Tz = preferences.time_zone.parse().unwrap_or(Tz::UTC);
    let local = now.with_timezone(&zone);
    let minute = local.hour() * 60 + local.minute();
    let quiet = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    if !quiet {
        return now;
    }
    let wait = (end + 24 * 60 - minute) % (24 * 60);
    let seconds = i64::from(wait) * 60 - i64::from(local.second());
    now + chrono::Duration::seconds(seconds.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_nights() -> NotificationPreferences {
        NotificationPreferences {
            quiet_start_minute: 22 * 60,
            quiet_end_minute: 7 * 60,
            time_zone: "Europe/Berlin".into(),
            ..default_preferences("ada")
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn pushes_wait_for_the_end_of_quiet_hours_in_the_users_zone() {
        let prefs = berlin_nights();
        // 12:00 UTC is 13:00 in Berlin: not quiet.
        assert_eq!(
            push_time(&prefs, utc("2026-11-25T12:00:00Z")),
            utc("2026-11-25T12:00:00Z")
        );
        // 22:30 UTC is 23:30 in Berlin: wait until 07:00 Berlin = 06:00 UTC.
        assert_eq!(
            push_time(&prefs, utc("2026-11-25T22:30:00Z")),
            utc("2026-11-26T06:00:00Z")
        );
        // 05:59 UTC is 06:59 in Berlin: one more minute.
        assert_eq!(
            push_time(&prefs, utc("2026-11-26T05:59:00Z")),
            utc("2026-11-26T06:00:00Z")
        );
        let daytime = NotificationPreferences {
            quiet_start_minute: 9 * 60,
            quiet_end_minute: 17 * 60,
            time_zone: String::new(),
            ..prefs
        };
        assert_eq!(
            push_time(&daytime, utc("2026-11-25T10:00:00Z")),
            utc("2026-11-25T17:00:00Z")
        );
        assert_eq!(
            push_time(&default_preferences("ada"), utc("2026-11-25T03:00:00Z")),
            utc("2026-11-25T03:00:00Z")
        );
    }

    #[test]
    fn users_choose_which_statuses_are_pushed() {
        let mut prefs = default_preferences("ada");
        assert!(wants_push(&prefs, OrderStatus::Shipped));
        prefs.push_statuses = vec![OrderStatus::Delivered as i32];
        assert!(!wants_push(&prefs, OrderStatus::Shipped));
        assert!(wants_push(&prefs, OrderStatus::Delivered));
        prefs.push_enabled = false;
        assert!(!wants_push(&prefs, OrderStatus::Delivered));
        assert!(message_for(OrderStatus::Pending, "o1").is_none());
        assert!(
            message_for(OrderStatus::Shipped, "0123456789")
                .unwrap()
                .1
                .ends_with("(order …456789)")
        );
    }

    #[test]
    fn preferences_are_checked() {
        assert!(check_preferences(&berlin_nights()).is_ok());
        let mut bad = berlin_nights();
        bad.time_zone = "Mars/Olympus".into();
        assert_eq!(
            check_preferences(&bad).unwrap_err().0,
            "preferences.time_zone"
        );
        bad = berlin_nights();
        bad.quiet_end_minute = 1440;
        assert!(check_preferences(&bad).is_err());
    }
}
