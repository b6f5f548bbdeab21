//! Tracking persistence: the shipment registry, breadcrumb tracks and ETAs, order timelines,
//! the per-user feed behind the live stream, notification preferences, devices and pushes.

pub mod entities;
pub mod history;
pub mod migration;
pub mod models;
mod order_tracking;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use oms_platform::events::{from_timestamp, to_timestamp};
use oms_proto::{
    common::v1::GeoPoint,
    fulfillment::v1 as ful,
    order::v1::TimelineEntry,
    tracking::v1::{Eta, LiveUpdate, NotificationPreferences, TrackPoint},
};
use prost::Message;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
    sea_query::{Alias, Expr, ExprTrait, JoinType, OnConflict, Query, UnionType},
};

use crate::domain::{
    TrackingError,
    effects::{Effects, Push, TimelineRow},
    notify::default_preferences,
    positions::Fix,
};
use entities::{
    device, eta, feed_counter, feed_item, notification, position, preferences, shipment,
    timeline_entry,
};

/// A fix to keep, with its device and shipment.
#[derive(Debug, Clone)]
pub struct NewFix {
    /// The courier's device.
    pub device_id: String,
    /// The shipment it carries.
    pub shipment_id: String,
    /// Where and when.
    pub fix: Fix,
}

/// A device that receives a user's pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The APNs/FCM token or web push endpoint.
    pub token: String,
    /// `tracking.v1.DevicePlatform`.
    pub platform: i32,
    /// BCP 47 language tag ("" for the relay's default).
    pub locale: String,
}

/// The tracking database.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub db: DatabaseConnection,
}

fn corrupt(error: prost::DecodeError) -> TrackingError {
    TrackingError::Corrupt(error.to_string())
}

/// What alerting some users needs (see [`Store::alert_settings`]).
#[derive(Debug, Default)]
pub struct AlertSettings {
    /// The preferences of those who set any.
    pub preferences: BTreeMap<String, NotificationPreferences>,
    /// Those with a device registered for pushes.
    pub with_device: BTreeSet<String>,
}

impl Store {
    /// Records or updates shipments from fulfillment's events (each at most once per call).
    pub async fn upsert_shipments<'a, C: ConnectionTrait>(
        &self,
        conn: &C,
        shipments: impl IntoIterator<Item = &'a ful::Shipment>,
    ) -> Result<(), TrackingError> {
        let now = Utc::now();
        let rows: Vec<shipment::ActiveModel> = shipments
            .into_iter()
            .map(|shipment| {
                let destination = shipment
                    .destination
                    .as_ref()
                    .and_then(|a| a.location)
                    .unwrap_or_default();
                let window = shipment.promised_window.as_ref();
                shipment::ActiveModel {
                    shipment_id: Set(shipment.shipment_id.clone()),
                    order_id: Set(shipment.order_id.clone()),
                    user_id: Set(shipment.user_id.clone()),
                    dest_lat: Set(destination.lat),
                    dest_lng: Set(destination.lng),
                    window_start: Set(window
                        .and_then(|w| w.start.as_ref())
                        .and_then(from_timestamp)),
                    window_end: Set(window.and_then(|w| w.end.as_ref()).and_then(from_timestamp)),
                    status: Set(shipment.status),
                    updated_at: Set(now),
                    courier_id: Set(shipment.courier_id.clone()),
                }
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        shipment::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(shipment::Column::ShipmentId)
                    .update_columns([
                        shipment::Column::Status,
                        shipment::Column::UpdatedAt,
                        shipment::Column::CourierId,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// A known shipment.
    pub async fn shipment<C: ConnectionTrait>(
        &self,
        conn: &C,
        shipment_id: &str,
    ) -> Result<shipment::Model, TrackingError> {
        shipment::Entity::find_by_id(shipment_id.to_owned())
            .one(conn)
            .await?
            .ok_or_else(|| TrackingError::UnknownShipment(shipment_id.to_owned()))
    }

    /// Shipments by id (unknown ones are left out).
    pub async fn shipments_by_id<C: ConnectionTrait>(
        &self,
        conn: &C,
        ids: &BTreeSet<&str>,
    ) -> Result<HashMap<String, shipment::Model>, TrackingError> {
        Ok(shipment::Entity::find()
            .filter(shipment::Column::ShipmentId.is_in(ids.iter().map(|id| (*id).to_owned())))
            .all(conn)
            .await?
            .into_iter()
            .map(|row| (row.shipment_id.clone(), row))
            .collect())
    }

    /// Each device's latest fix, in one query.
    pub async fn last_fixes<C: ConnectionTrait>(
        &self,
        conn: &C,
        devices: &BTreeSet<&str>,
    ) -> Result<HashMap<String, Fix>, TrackingError> {
        let latest = Alias::new("latest");
        let at = Alias::new("at");
        let newest = Query::select()
            .column(position::Column::DeviceId)
            .expr_as(Expr::col(position::Column::RecordedAt).max(), at.clone())
            .from(position::Entity)
            .and_where(position::Column::DeviceId.is_in(devices.iter().map(|d| (*d).to_owned())))
            .group_by_col(position::Column::DeviceId)
            .to_owned();
        let query = Query::select()
            .columns([
                (position::Entity, position::Column::DeviceId),
                (position::Entity, position::Column::RecordedAt),
                (position::Entity, position::Column::ShipmentId),
                (position::Entity, position::Column::Lat),
                (position::Entity, position::Column::Lng),
            ])
            .from(position::Entity)
            .join_subquery(
                JoinType::InnerJoin,
                newest,
                latest.clone(),
                Expr::col((latest.clone(), position::Column::DeviceId))
                    .equals((position::Entity, position::Column::DeviceId))
                    .and(
                        Expr::col((latest, at))
                            .equals((position::Entity, position::Column::RecordedAt)),
                    ),
            )
            .to_owned();
        let backend = conn.get_database_backend();
        Ok(position::Model::find_by_statement(backend.build(&query))
            .all(conn)
            .await?
            .into_iter()
            .map(|r| {
                let fix = Fix {
                    point: GeoPoint {
                        lat: r.lat,
                        lng: r.lng,
                    },
                    at: r.recorded_at,
                };
                (r.device_id, fix)
            })
            .collect())
    }

    /// Keeps fixes in one insert; returns the device and time (in microseconds, what the
    /// database keeps) of those kept — a repeat of one kept before is not.
    pub async fn insert_positions<C: ConnectionTrait>(
        &self,
        conn: &C,
        fixes: &[NewFix],
    ) -> Result<BTreeSet<(String, i64)>, TrackingError> {
        let rows = fixes.iter().map(|new| position::ActiveModel {
            device_id: Set(new.device_id.clone()),
            recorded_at: Set(new.fix.at),
            shipment_id: Set(new.shipment_id.clone()),
            lat: Set(new.fix.point.lat),
            lng: Set(new.fix.point.lng),
        });
        let kept = position::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([position::Column::DeviceId, position::Column::RecordedAt])
            .exec_with_returning_keys(conn)
            .await?;
        Ok(match kept {
            TryInsertResult::Inserted(keys) => keys
                .into_iter()
                .map(|(device, at)| (device, at.timestamp_micros()))
                .collect(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => BTreeSet::new(),
        })
    }

    /// The shipment's newest `limit` fixes, oldest first.
    pub async fn recent_fixes<C: ConnectionTrait>(
        &self,
        conn: &C,
        shipment_id: &str,
        limit: u64,
    ) -> Result<Vec<Fix>, TrackingError> {
        let mut rows = position::Entity::find()
            .filter(position::Column::ShipmentId.eq(shipment_id))
            .order_by_desc(position::Column::RecordedAt)
            .limit(limit)
            .all(conn)
            .await?;
        rows.reverse();
        Ok(rows
            .into_iter()
            .map(|r| Fix {
                point: GeoPoint {
                    lat: r.lat,
                    lng: r.lng,
                },
                at: r.recorded_at,
            })
            .collect())
    }

    /// The whole breadcrumb track, oldest first.
    pub async fn track(&self, shipment_id: &str) -> Result<Vec<TrackPoint>, TrackingError> {
        let rows = position::Entity::find()
            .filter(position::Column::ShipmentId.eq(shipment_id))
            .order_by_asc(position::Column::RecordedAt)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| TrackPoint {
                point: Some(GeoPoint {
                    lat: r.lat,
                    lng: r.lng,
                }),
                recorded_at: Some(to_timestamp(r.recorded_at)),
            })
            .collect())
    }

    /// Forgets fixes older than `before`.
    pub async fn prune_positions(&self, before: DateTime<Utc>) -> Result<u64, TrackingError> {
        Ok(position::Entity::delete_many()
            .filter(position::Column::RecordedAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Which of `shipments` were already arriving (inside the destination geofence).
    pub async fn arriving<C: ConnectionTrait>(
        &self,
        conn: &C,
        shipments: &BTreeSet<&str>,
    ) -> Result<BTreeSet<String>, TrackingError> {
        Ok(eta::Entity::find()
            .select_only()
            .column(eta::Column::ShipmentId)
            .filter(eta::Column::ShipmentId.is_in(shipments.iter().map(|s| (*s).to_owned())))
            .filter(eta::Column::Arriving.eq(true))
            .into_tuple::<String>()
            .all(conn)
            .await?
            .into_iter()
            .collect())
    }

    /// Stores shipments' ETAs (one each at most), in one statement.
    pub async fn save_etas<C: ConnectionTrait>(
        &self,
        conn: &C,
        estimates: &[Eta],
    ) -> Result<(), TrackingError> {
        let now = Utc::now();
        let rows: Vec<eta::ActiveModel> = estimates
            .iter()
            .map(|estimate| eta::ActiveModel {
                shipment_id: Set(estimate.shipment_id.clone()),
                eta: Set(estimate.encode_to_vec()),
                arriving: Set(estimate.arriving),
                updated_at: Set(now),
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        eta::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(eta::Column::ShipmentId)
                    .update_columns([
                        eta::Column::Eta,
                        eta::Column::Arriving,
                        eta::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// A shipment's latest ETA.
    pub async fn eta(&self, shipment_id: &str) -> Result<Option<Eta>, TrackingError> {
        eta::Entity::find_by_id(shipment_id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| Eta::decode(row.eta.as_slice()).map_err(corrupt))
            .transpose()
    }

    /// Adds timeline entries (once per event).
    pub async fn add_timeline_entries<C: ConnectionTrait>(
        &self,
        conn: &C,
        rows: &[TimelineRow],
    ) -> Result<(), TrackingError> {
        let rows: Vec<timeline_entry::ActiveModel> = rows
            .iter()
            .map(|row| timeline_entry::ActiveModel {
                event_id: Set(row.event_id.clone()),
                order_id: Set(row.order_id.clone()),
                user_id: Set(row.user_id.clone()),
                status: Set(row.entry.status),
                note: Set(row.entry.note.clone()),
                at: Set(row
                    .entry
                    .at
                    .as_ref()
                    .and_then(from_timestamp)
                    .unwrap_or_else(Utc::now)),
            })
            .collect();
        timeline_entry::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([timeline_entry::Column::EventId])
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// An order's timeline with the order's owner ("" when unknown).
    pub async fn timeline(
        &self,
        order_id: &str,
    ) -> Result<(String, Vec<TimelineEntry>), TrackingError> {
        let rows = timeline_entry::Entity::find()
            .filter(timeline_entry::Column::OrderId.eq(order_id))
            .order_by_asc(timeline_entry::Column::At)
            .order_by_asc(timeline_entry::Column::EventId)
            .all(&self.db)
            .await?;
        let owner = rows.first().map(|r| r.user_id.clone()).unwrap_or_default();
        let entries = rows
            .into_iter()
            .map(|r| TimelineEntry {
                status: r.status,
                at: Some(to_timestamp(r.at)),
                note: r.note,
            })
            .collect();
        Ok((owner, entries))
    }

    /// Appends items to the users' feeds, in order. The counter row is locked until the
    /// transaction commits, so cursors are handed out in commit order and a tail that reads
    /// "after N" can never skip an item that commits late. One counter update and one insert
    /// for the whole batch.
    pub async fn append_feed_items<C: ConnectionTrait>(
        &self,
        conn: &C,
        items: &[(String, LiveUpdate)],
    ) -> Result<Vec<(String, LiveUpdate)>, TrackingError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let last = feed_counter::Entity::update_many()
            .col_expr(
                feed_counter::Column::Next,
                Expr::col(feed_counter::Column::Next).add(count),
            )
            .filter(feed_counter::Column::Id.eq(1))
            .exec_with_returning(conn)
            .await?
            .first()
            .map(|row| row.next)
            .ok_or_else(|| TrackingError::Corrupt("the feed counter row is missing".into()))?;
        let now = Utc::now();
        let rows = items
            .iter()
            .zip(last - count + 1..)
            .map(|((user_id, update), seq)| feed_item::ActiveModel {
                seq: Set(seq),
                user_id: Set(user_id.clone()),
                update: Set(update.encode_to_vec()),
                created_at: Set(now),
            });
        feed_item::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
        Ok(items
            .iter()
            .zip(last - count + 1..)
            .map(|((user_id, update), seq)| {
                let mut update = update.clone();
                update.cursor = seq.to_string();
                (user_id.clone(), update)
            })
            .collect())
    }

    /// Feed items after `after` (of one user, or of everyone), oldest first, with cursors set.
    pub async fn feed_after(
        &self,
        user_id: Option<&str>,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(String, LiveUpdate)>, TrackingError> {
        let mut query = feed_item::Entity::find().filter(feed_item::Column::Seq.gt(after));
        if let Some(user_id) = user_id {
            query = query.filter(feed_item::Column::UserId.eq(user_id));
        }
        let rows = query
            .order_by_asc(feed_item::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut update = LiveUpdate::decode(row.update.as_slice()).map_err(corrupt)?;
                update.cursor = row.seq.to_string();
                Ok((row.user_id, update))
            })
            .collect()
    }

    /// The newest feed cursor.
    pub async fn feed_head(&self) -> Result<i64, TrackingError> {
        Ok(feed_counter::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |row| row.next))
    }

    /// A user's preferences (defaults when never set).
    pub async fn preferences<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: &str,
    ) -> Result<NotificationPreferences, TrackingError> {
        match preferences::Entity::find_by_id(user_id.to_owned())
            .one(conn)
            .await?
        {
            Some(row) => {
                NotificationPreferences::decode(row.preferences.as_slice()).map_err(corrupt)
            }
            None => Ok(default_preferences(user_id)),
        }
    }

    /// What alerting `users` needs, in one statement: the preferences of those who set any
    /// (the others have the defaults), and which of them have a device registered for pushes.
    pub async fn alert_settings<C: ConnectionTrait>(
        &self,
        conn: &C,
        users: &BTreeSet<String>,
    ) -> Result<AlertSettings, TrackingError> {
        let mut settings = AlertSettings::default();
        if users.is_empty() {
            return Ok(settings);
        }
        let (user, prefs) = (Alias::new("user_id"), Alias::new("preferences"));
        let mut query = Query::select()
            .expr_as(Expr::col(preferences::Column::UserId), user.clone())
            .expr_as(Expr::col(preferences::Column::Preferences), prefs.clone())
            .from(preferences::Entity)
            .and_where(preferences::Column::UserId.is_in(users.iter().cloned()))
            .to_owned();
        // A device row carries no preferences: its NULL tells it apart.
        query.union(
            UnionType::All,
            Query::select()
                .expr_as(Expr::col(device::Column::UserId), user)
                .expr_as(Expr::val(Option::<Vec<u8>>::None), prefs)
                .from(device::Entity)
                .and_where(device::Column::UserId.is_in(users.iter().cloned()))
                .to_owned(),
        );
        for row in conn.query_all(&query).await? {
            let user_id: String = row.try_get("", "user_id")?;
            match row.try_get::<Option<Vec<u8>>>("", "preferences")? {
                Some(bytes) => {
                    let decoded =
                        NotificationPreferences::decode(bytes.as_slice()).map_err(corrupt)?;
                    settings.preferences.insert(user_id, decoded);
                }
                None => {
                    settings.with_device.insert(user_id);
                }
            }
        }
        Ok(settings)
    }

    /// Writes what a batch of happenings comes to, one statement per kind of row; returns the
    /// stream items written, with their cursors.
    pub async fn write_effects<C: ConnectionTrait>(
        &self,
        conn: &C,
        effects: &Effects,
    ) -> Result<Vec<(String, LiveUpdate)>, TrackingError> {
        self.upsert_shipments(conn, effects.shipments.values())
            .await?;
        self.upsert_centers(conn, effects.centers.values()).await?;
        self.record_dispatches(conn, &effects.dispatches).await?;
        if !effects.timeline.is_empty() {
            self.add_timeline_entries(conn, &effects.timeline).await?;
        }
        let feed = self.append_feed_items(conn, &effects.feed).await?;
        self.add_pushes(conn, &effects.pushes).await?;
        Ok(feed)
    }

    /// Replaces a user's preferences.
    pub async fn set_preferences(
        &self,
        prefs: &NotificationPreferences,
    ) -> Result<(), TrackingError> {
        let row = preferences::ActiveModel {
            user_id: Set(prefs.user_id.clone()),
            preferences: Set(prefs.encode_to_vec()),
            updated_at: Set(Utc::now()),
        };
        preferences::Entity::insert(row)
            .on_conflict(
                OnConflict::column(preferences::Column::UserId)
                    .update_columns([
                        preferences::Column::Preferences,
                        preferences::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Registers a device, or moves it to `user_id` (an install signed in to another account
    /// gets that account's pushes from now on).
    pub async fn register_device(
        &self,
        user_id: &str,
        device: &Device,
    ) -> Result<(), TrackingError> {
        let row = device::ActiveModel {
            device_token: Set(device.token.clone()),
            user_id: Set(user_id.to_owned()),
            platform: Set(device.platform),
            updated_at: Set(Utc::now()),
            locale: Set(device.locale.clone()),
        };
        device::Entity::insert(row)
            .on_conflict(
                OnConflict::column(device::Column::DeviceToken)
                    .update_columns([
                        device::Column::UserId,
                        device::Column::Platform,
                        device::Column::UpdatedAt,
                        device::Column::Locale,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets a device if it is `user_id`'s; true when it was.
    pub async fn unregister_device(
        &self,
        user_id: &str,
        token: &str,
    ) -> Result<bool, TrackingError> {
        let deleted = device::Entity::delete_many()
            .filter(device::Column::DeviceToken.eq(token))
            .filter(device::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// A user's devices.
    pub async fn devices<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: &str,
    ) -> Result<Vec<Device>, TrackingError> {
        let rows = device::Entity::find()
            .filter(device::Column::UserId.eq(user_id))
            .all(conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Device {
                token: r.device_token,
                platform: r.platform,
                locale: r.locale,
            })
            .collect())
    }

    /// Queues pushes (each once: the id derives from the event).
    pub async fn add_pushes<C: ConnectionTrait>(
        &self,
        conn: &C,
        pushes: &[Push],
    ) -> Result<(), TrackingError> {
        let now = Utc::now();
        let rows: Vec<notification::ActiveModel> = pushes
            .iter()
            .map(|push| notification::ActiveModel {
                notification_id: Set(push.notification_id.clone()),
                user_id: Set(push.user_id.clone()),
                order_id: Set(push.order_id.clone()),
                title: Set(push.title.clone()),
                body: Set(push.body.clone()),
                attempts: Set(0),
                next_attempt_at: Set(push.due),
                delivered_at: Set(None),
                last_error: Set(String::new()),
                created_at: Set(now),
            })
            .collect();
        notification::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([notification::Column::NotificationId])
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Pushes due now.
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<notification::Model>, TrackingError> {
        Ok(notification::Entity::find()
            .filter(notification::Column::DeliveredAt.is_null())
            .filter(notification::Column::NextAttemptAt.lte(now))
            .order_by_asc(notification::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Takes a due push for one attempt (another replica that read it too loses the race):
    /// moves its next attempt to `lease_until`.
    pub async fn claim_notification(
        &self,
        row: &notification::Model,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, TrackingError> {
        let claimed = notification::Entity::update_many()
            .col_expr(
                notification::Column::NextAttemptAt,
                Expr::value(lease_until),
            )
            .filter(notification::Column::NotificationId.eq(row.notification_id.clone()))
            .filter(notification::Column::NextAttemptAt.eq(row.next_attempt_at))
            .filter(notification::Column::DeliveredAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Records an attempt's outcome.
    pub async fn finish_attempt(
        &self,
        id: &str,
        attempts: i32,
        outcome: Result<(), (String, DateTime<Utc>)>,
    ) -> Result<(), TrackingError> {
        let mut update = notification::Entity::update_many()
            .col_expr(notification::Column::Attempts, Expr::value(attempts));
        update = match outcome {
            Ok(()) => update.col_expr(
                notification::Column::DeliveredAt,
                Expr::value(Some(Utc::now())),
            ),
            Err((error, retry_at)) => update
                .col_expr(notification::Column::LastError, Expr::value(error))
                .col_expr(notification::Column::NextAttemptAt, Expr::value(retry_at)),
        };
        update
            .filter(notification::Column::NotificationId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
