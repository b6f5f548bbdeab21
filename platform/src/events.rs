//! Building event envelopes: a fresh UUIDv7 event id, the time, the subject.

use oms_proto::events::v1::{Envelope, envelope::Payload};

use crate::bus::{Area, BusError, subject};

/// An envelope for `payload` about `entity_id` in `area`, belonging to `user_id`'s stream
/// (empty when it concerns no single user).
pub fn envelope(
    area: Area,
    entity_id: &str,
    event: &str,
    user_id: &str,
    payload: Payload,
) -> Result<Envelope, BusError> {
    Ok(Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        subject: subject(area, entity_id, event)?,
        occurred_at: Some(now()),
        user_id: user_id.to_owned(),
        correlation_id: String::new(),
        payload: Some(payload),
    })
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    to_timestamp(chrono::Utc::now())
}

/// A chrono time as a protobuf timestamp.
pub fn to_timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as a chrono time; `None` when out of range.
pub fn from_timestamp(at: &prost_types::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = u32::try_from(at.nanos).ok()?;
    chrono::DateTime::from_timestamp(at.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::events::v1::AlertRaised;

    #[test]
    fn envelopes_get_unique_time_ordered_ids_and_a_subject() {
        let payload = || Payload::AlertRaised(AlertRaised::default());
        let first = envelope(Area::Tracking, "u1", "alert_raised", "u1", payload()).unwrap();
        let second = envelope(Area::Tracking, "u1", "alert_raised", "u1", payload()).unwrap();
        assert_ne!(first.event_id, second.event_id);
        assert!(first.event_id < second.event_id, "UUIDv7 sorts by time");
        assert_eq!(first.subject, "oms.tracking.u1.alert_raised");
        assert!(envelope(Area::Order, "a.b", "x", "", payload()).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }
}
