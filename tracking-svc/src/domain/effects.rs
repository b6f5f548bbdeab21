//! What a batch of happenings comes to, before anything is written: shipments to register,
//! timeline entries, items for the buyers' live streams (status changes and in-app alerts)
//! and pushes to queue — decided from the users' preferences and whether they have a device.
//! The consumers apply a whole batch of events with one statement per kind of row.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use oms_proto::{
    fulfillment::v1 as ful,
    order::v1::{OrderStatus, TimelineEntry},
    tracking::v1::{
        Alert, LiveUpdate, NotificationPreferences, OrderStatusUpdate, live_update::Kind,
    },
};
use prost_types::Timestamp;

use super::{
    history::{Dispatch, dispatch_of},
    notify::{self, default_preferences},
};

/// Something tracking is told about.
#[derive(Debug, Clone)]
pub enum Happening {
    /// An order changed status (order-svc's event).
    Status {
        /// The event, which names the timeline entry and the alert.
        event_id: String,
        /// When it happened.
        at: Option<Timestamp>,
        /// Whose order.
        user_id: String,
        /// Which order.
        order_id: String,
        /// The order's version after the change.
        order_version: i64,
        /// Its new status.
        status: OrderStatus,
        /// Why.
        note: String,
    },
    /// A shipment moved (fulfillment's event).
    Shipment {
        /// The event.
        event_id: String,
        /// When it happened.
        at: Option<Timestamp>,
        /// The shipment as it is now.
        shipment: Box<ful::Shipment>,
    },
    /// A fulfillment center was created or changed (where parcels leave from).
    Center(Box<ful::FulfillmentCenter>),
    /// Dispatch gave a shipment to a courier (fulfillment's event).
    Courier {
        /// The event.
        event_id: String,
        /// When it happened.
        at: Option<Timestamp>,
        /// The shipment as it is now, its courier included.
        shipment: Box<ful::Shipment>,
    },
    /// Something to tell the buyer in the app and, if they want it, by push.
    Alert {
        /// Names the alert and its push, so telling twice stores one.
        key: String,
        /// Whose.
        user_id: String,
        /// About which order.
        order_id: String,
        /// The headline.
        title: String,
        /// The text.
        body: String,
        /// The status it is about, for the user's choice of pushes (none: any push).
        status: Option<OrderStatus>,
    },
}

/// A timeline entry to keep (once per event).
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The event it comes from.
    pub event_id: String,
    /// Whose order.
    pub user_id: String,
    /// Which order.
    pub order_id: String,
    /// The entry.
    pub entry: TimelineEntry,
}

/// A push to queue (once per key).
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// `push-<key>`.
    pub notification_id: String,
    /// To whom.
    pub user_id: String,
    /// About which order.
    pub order_id: String,
    /// The headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// Not before (quiet hours).
    pub due: DateTime<Utc>,
}

/// Everything a batch writes.
#[derive(Debug, Default)]
pub struct Effects {
    /// The latest state of each shipment the batch mentions.
    pub shipments: BTreeMap<String, ful::Shipment>,
    /// Timeline entries, in event order.
    pub timeline: Vec<TimelineRow>,
    /// Items for the users' live streams (`user_id`, item), in event order.
    pub feed: Vec<(String, LiveUpdate)>,
    /// Pushes to queue.
    pub pushes: Vec<Push>,
    /// Centers as they are now.
    pub centers: BTreeMap<String, ful::FulfillmentCenter>,
    /// The delivery history's records of the batch's outbound shipments.
    pub dispatches: Vec<Dispatch>,
}

impl Effects {
    /// A shipment's step: an entry on its order's timeline, and the shipment as it is now.
    fn shipment_step(
        &mut self,
        event_id: &str,
        at: Option<Timestamp>,
        shipment: &ful::Shipment,
        step: &str,
    ) {
        self.timeline.push(TimelineRow {
            event_id: event_id.to_owned(),
            user_id: shipment.user_id.clone(),
            order_id: shipment.order_id.clone(),
            entry: TimelineEntry {
                status: OrderStatus::Unspecified.into(),
                at,
                note: format!("shipment {} {step}", shipment.shipment_id),
            },
        });
        self.shipments
            .insert(shipment.shipment_id.clone(), shipment.clone());
    }
}

/// The alert an order status is worth, if any.
pub fn alert_for(
    event_id: &str,
    user_id: &str,
    order_id: &str,
    status: OrderStatus,
) -> Option<Happening> {
    let (title, body) = notify::message_for(status, order_id)?;
    Some(Happening::Alert {
        key: event_id.to_owned(),
        user_id: user_id.to_owned(),
        order_id: order_id.to_owned(),
        title,
        body,
        status: Some(status),
    })
}

/// The happenings with the alerts their status changes are worth, in order.
pub fn with_alerts(happenings: Vec<Happening>) -> Vec<Happening> {
    let mut out = Vec::with_capacity(happenings.len() * 2);
    for happening in happenings {
        let alert = match &happening {
            Happening::Status {
                event_id,
                user_id,
                order_id,
                status,
                ..
            } => alert_for(event_id, user_id, order_id, *status),
            _ => None,
        };
        out.push(happening);
        out.extend(alert);
    }
    out
}

/// The users whose preferences the alerts among `happenings` depend on.
pub fn alerted_users(happenings: &[Happening]) -> BTreeSet<String> {
    happenings
        .iter()
        .filter_map(|h| match h {
            Happening::Alert { user_id, .. } => Some(user_id.clone()),
            _ => None,
        })
        .collect()
}

/// Whether the user wants a push for this alert.
pub fn wants_push(preferences: &NotificationPreferences, status: Option<OrderStatus>) -> bool {
    status.map_or(preferences.push_enabled, |status| {
        notify::wants_push(preferences, status)
    })
}

/// What `happenings` (alerts included) come to, given the alerted users' `preferences`
/// (missing: defaults) and which users have a device for pushes.
pub fn effects(
    happenings: &[Happening],
    preferences: &BTreeMap<String, NotificationPreferences>,
    with_device: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Effects {
    let mut effects = Effects::default();
    for happening in happenings {
        match happening {
            Happening::Status {
                event_id,
                at,
                user_id,
                order_id,
                order_version,
                status,
                note,
            } => {
                effects.timeline.push(TimelineRow {
                    event_id: event_id.clone(),
                    user_id: user_id.clone(),
                    order_id: order_id.clone(),
                    entry: TimelineEntry {
                        status: (*status).into(),
                        at: *at,
                        note: note.clone(),
                    },
                });
                effects.feed.push((
                    user_id.clone(),
                    LiveUpdate {
                        cursor: String::new(),
                        at: *at,
                        kind: Some(Kind::OrderStatus(OrderStatusUpdate {
                            order_id: order_id.clone(),
                            status: (*status).into(),
                            order_version: *order_version,
                            note: note.clone(),
                            shipment_id: String::new(),
                        })),
                    },
                ));
            }
            Happening::Shipment {
                event_id,
                at,
                shipment,
            } => {
                let step = shipment
                    .status()
                    .as_str_name()
                    .trim_start_matches("SHIPMENT_STATUS_")
                    .replace('_', " ")
                    .to_lowercase();
                effects.shipment_step(event_id, *at, shipment, &step);
            }
            Happening::Courier {
                event_id,
                at,
                shipment,
            } => effects.shipment_step(event_id, *at, shipment, "is with a courier"),
            Happening::Center(center) => {
                effects
                    .centers
                    .insert(center.center_id.clone(), (**center).clone());
            }
            Happening::Alert {
                key,
                user_id,
                order_id,
                title,
                body,
                status,
            } => {
                let prefs = preferences
                    .get(user_id)
                    .cloned()
                    .unwrap_or_else(|| default_preferences(user_id));
                if prefs.in_app_enabled {
                    effects.feed.push((
                        user_id.clone(),
                        LiveUpdate {
                            cursor: String::new(),
                            at: Some(oms_platform::events::to_timestamp(now)),
                            kind: Some(Kind::Alert(Alert {
                                alert_id: format!("alert-{key}"),
                                title: title.clone(),
                                body: body.clone(),
                                order_id: order_id.clone(),
                            })),
                        },
                    ));
                }
                if wants_push(&prefs, *status) && with_device.contains(user_id) {
                    effects.pushes.push(Push {
                        notification_id: format!("push-{key}"),
                        user_id: user_id.clone(),
                        order_id: order_id.clone(),
                        title: title.clone(),
                        body: body.clone(),
                        due: notify::push_time(&prefs, now),
                    });
                }
            }
        }
    }
    effects.dispatches = effects.shipments.values().filter_map(dispatch_of).collect();
    effects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed(event_id: &str, user: &str, order: &str) -> Happening {
        Happening::Status {
            event_id: event_id.into(),
            at: None,
            user_id: user.into(),
            order_id: order.into(),
            order_version: 2,
            status: OrderStatus::Confirmed,
            note: "stock reserved".into(),
        }
    }

    fn shipment(id: &str, status: ful::ShipmentStatus) -> Happening {
        Happening::Shipment {
            event_id: format!("e-{id}-{}", status as i32),
            at: None,
            shipment: Box::new(ful::Shipment {
                shipment_id: id.into(),
                order_id: "o1".into(),
                user_id: "ada".into(),
                status: status.into(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_status_change_is_a_timeline_entry_a_stream_item_and_an_alert() {
        let happenings = with_alerts(vec![confirmed("e1", "ada", "o1")]);
        assert_eq!(
            alerted_users(&happenings),
            BTreeSet::from(["ada".to_owned()])
        );
        let with_device = BTreeSet::from(["ada".to_owned()]);
        let effects = effects(&happenings, &BTreeMap::new(), &with_device, Utc::now());
        assert_eq!(effects.timeline.len(), 1);
        let kinds: Vec<_> = effects
            .feed
            .iter()
            .map(|(_, u)| matches!(u.kind, Some(Kind::Alert(_))))
            .collect();
        assert_eq!(kinds, [false, true], "the status first, then its alert");
        assert_eq!(effects.pushes.len(), 1);
        assert_eq!(effects.pushes[0].notification_id, "push-e1");
    }

    #[test]
    fn no_device_no_push_and_in_app_off_no_alert_item() {
        let happenings = with_alerts(vec![confirmed("e1", "ada", "o1")]);
        let quiet = NotificationPreferences {
            in_app_enabled: false,
            ..default_preferences("ada")
        };
        let preferences = BTreeMap::from([("ada".to_owned(), quiet)]);
        let effects = effects(&happenings, &preferences, &BTreeSet::new(), Utc::now());
        assert_eq!(effects.feed.len(), 1, "only the status item");
        assert!(effects.pushes.is_empty());
    }

    #[test]
    fn a_shipment_mentioned_twice_is_registered_in_its_latest_state() {
        let happenings = vec![
            shipment("s1", ful::ShipmentStatus::Created),
            shipment("s1", ful::ShipmentStatus::HandedToCarrier),
        ];
        let effects = effects(&happenings, &BTreeMap::new(), &BTreeSet::new(), Utc::now());
        assert_eq!(effects.timeline.len(), 2);
        assert_eq!(
            effects.shipments["s1"].status(),
            ful::ShipmentStatus::HandedToCarrier
        );
        assert!(effects.feed.is_empty() && effects.pushes.is_empty());
    }

    #[test]
    fn a_user_who_muted_pushes_gets_none_whatever_devices_they_have() {
        let happenings = with_alerts(vec![
            confirmed("e1", "ada", "o1"),
            confirmed("e2", "bob", "o2"),
        ]);
        let muted = NotificationPreferences {
            push_enabled: false,
            ..default_preferences("bob")
        };
        let preferences = BTreeMap::from([("bob".to_owned(), muted)]);
        let with_device = BTreeSet::from(["ada".to_owned(), "bob".to_owned()]);
        let effects = effects(&happenings, &preferences, &with_device, Utc::now());
        let pushed: Vec<&str> = effects.pushes.iter().map(|p| p.user_id.as_str()).collect();
        assert_eq!(pushed, ["ada"]);
    }
}
