//! Order persistence: orders (searchable columns + the encoded order), the return index, the
//! price list, customers, rejected channel payloads. Every change of an order is saved with
//! its events in one transaction, guarded by the order's version.

pub mod entities;
pub mod migration;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use oms_platform::{
    bus::BusError,
    events::to_timestamp,
    money::{Currency, Money},
    outbox::{self, Outbox},
};
use oms_proto::{
    common::v1::Channel,
    events::v1::Envelope,
    order::v1::{self as pb, OrderStatus},
};
use prost::Message;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, OnConflict},
};

use crate::domain::{OrderError, lifecycle};
use entities::{customer, order, order_return, price, rejected_intake};

/// The order database.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Wakes the relay after commits that enqueued events.
    pub outbox: Outbox,
}

/// An order with its row's bookkeeping.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    /// The order.
    pub order: pb::Order,
    /// Its version (for the next guarded save).
    pub version: i64,
    /// The inventory reservation, "" before it is made.
    pub reservation_id: String,
    /// Whether inventory keeps the reservation past its TTL.
    pub reservation_confirmed: bool,
    /// Hash of the placement request.
    pub request_hash: String,
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this user's orders.
    pub user_id: Option<String>,
    /// Only these statuses (none = all).
    pub statuses: Vec<i32>,
    /// Only this channel.
    pub channel: Option<i32>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this order id (ids are UUIDv7, so they sort by creation).
    pub before_order_id: Option<String>,
}

fn decode(row: order::Model) -> Result<StoredOrder, OrderError> {
    let order = pb::Order::decode(row.snapshot.as_slice())
        .map_err(|e| OrderError::Corrupt(e.to_string()))?;
    Ok(StoredOrder {
        order,
        version: row.version,
        reservation_id: row.reservation_id,
        reservation_confirmed: row.reservation_confirmed,
        request_hash: row.request_hash,
    })
}

impl Store {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<DatabaseTransaction, OrderError> {
        Ok(self.db.begin().await?)
    }

    /// Commits and wakes the relay.
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), OrderError> {
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Records a new PENDING order under its idempotency key; `false` when the key was taken
    /// (by a concurrent or earlier call).
    pub async fn insert_pending(
        &self,
        stored: &StoredOrder,
        idempotency_key: &str,
    ) -> Result<bool, OrderError> {
        let order = &stored.order;
        let now = Utc::now();
        let row = order::ActiveModel {
            order_id: Set(order.order_id.clone()),
            user_id: Set(order.user_id.clone()),
            channel: Set(order.channel),
            status: Set(order.status),
            idempotency_key: Set(idempotency_key.to_owned()),
            request_hash: Set(stored.request_hash.clone()),
            reservation_id: Set(String::new()),
            reservation_confirmed: Set(false),
            snapshot: Set(order.encode_to_vec()),
            version: Set(stored.version),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = order::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([order::Column::UserId, order::Column::IdempotencyKey])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(inserted == 1)
    }

    /// The order placed with this key, if any.
    pub async fn by_key(
        &self,
        user_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<StoredOrder>, OrderError> {
        order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .filter(order::Column::IdempotencyKey.eq(idempotency_key))
            .one(&self.db)
            .await?
            .map(decode)
            .transpose()
    }

    /// An order.
    pub async fn load<C: ConnectionTrait>(
        &self,
        conn: &C,
        order_id: &str,
    ) -> Result<StoredOrder, OrderError> {
        order::Entity::find_by_id(order_id.to_owned())
            .one(conn)
            .await?
            .map(decode)
            .transpose()?
            .ok_or_else(|| OrderError::UnknownOrder(order_id.to_owned()))
    }

    /// Saves a changed order if nobody changed it since `stored.version`, with the events
    /// `events` builds from the order as saved (its version bumped); `Conflict` on a lost race.
    pub async fn save<C: ConnectionTrait>(
        &self,
        conn: &C,
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<(), OrderError> {
        let now = Utc::now();
        let version = stored.version + 1;
        stored.order.version = version;
        stored.order.updated_at = Some(to_timestamp(now));
        let order = &stored.order;
        let events = events(order)?;
        let updated = order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(order.status))
            .col_expr(
                order::Column::ReservationId,
                Expr::value(stored.reservation_id.clone()),
            )
            .col_expr(
                order::Column::ReservationConfirmed,
                Expr::value(stored.reservation_confirmed),
            )
            .col_expr(order::Column::Snapshot, Expr::value(order.encode_to_vec()))
            .col_expr(order::Column::Version, Expr::value(version))
            .col_expr(order::Column::UpdatedAt, Expr::value(now))
            .filter(order::Column::OrderId.eq(order.order_id.clone()))
            .filter(order::Column::Version.eq(stored.version))
            .exec(conn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(OrderError::Conflict(format!(
                "order {} changed concurrently; retry",
                order.order_id
            )));
        }
        outbox::enqueue_all(conn, &events).await?;
        stored.version = version;
        Ok(())
    }

    /// [`Store::save`] in a transaction of its own, then wakes the relay.
    pub async fn save_now(
        &self,
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<(), OrderError> {
        let txn = self.begin().await?;
        self.save(&txn, stored, events).await?;
        self.commit(txn).await
    }

    /// Forgets a placement that failed for a reason that is not the order's (a peer was down,
    /// the input proved bad), so the same key can be retried.
    pub async fn forget_pending(&self, order_id: &str) -> Result<(), OrderError> {
        order::Entity::delete_many()
            .filter(order::Column::OrderId.eq(order_id))
            .filter(order::Column::Status.eq(OrderStatus::Pending as i32))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A page of orders, newest first.
    pub async fn list(
        &self,
        filter: &OrderFilter,
        limit: u64,
    ) -> Result<Vec<pb::Order>, OrderError> {
        let mut query = order::Entity::find();
        if let Some(user_id) = &filter.user_id {
            query = query.filter(order::Column::UserId.eq(user_id.clone()));
        }
        if !filter.statuses.is_empty() {
            query = query.filter(order::Column::Status.is_in(filter.statuses.clone()));
        }
        if let Some(channel) = filter.channel {
            query = query.filter(order::Column::Channel.eq(channel));
        }
        if let Some(after) = filter.created_after {
            query = query.filter(order::Column::CreatedAt.gte(after));
        }
        if let Some(before) = filter.created_before {
            query = query.filter(order::Column::CreatedAt.lt(before));
        }
        if let Some(cursor) = &filter.before_order_id {
            query = query.filter(order::Column::OrderId.lt(cursor.clone()));
        }
        let rows = query
            .order_by_desc(order::Column::OrderId)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| decode(row).map(|stored| stored.order))
            .collect()
    }

    /// How many of the user's orders are still moving goods.
    pub async fn open_orders(&self, user_id: &str) -> Result<u64, OrderError> {
        let open: Vec<i32> = lifecycle::ALL
            .into_iter()
            .filter(|s| lifecycle::is_open(*s))
            .map(|s| s as i32)
            .collect();
        Ok(order::Entity::find()
            .filter(order::Column::UserId.eq(user_id))
            .filter(order::Column::Status.is_in(open))
            .count(&self.db)
            .await?)
    }

    /// Orders in `status` not touched since `before`, oldest first (for recovery).
    pub async fn stale(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StoredOrder>, OrderError> {
        order::Entity::find()
            .filter(order::Column::Status.eq(status as i32))
            .filter(order::Column::UpdatedAt.lt(before))
            .order_by_asc(order::Column::UpdatedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Confirmed orders whose reservation inventory has not yet been told to keep.
    pub async fn unconfirmed_reservations(
        &self,
        limit: u64,
    ) -> Result<Vec<StoredOrder>, OrderError> {
        order::Entity::find()
            .filter(order::Column::ReservationConfirmed.eq(false))
            .filter(order::Column::ReservationId.ne(""))
            .filter(order::Column::Status.ne(OrderStatus::Pending as i32))
            .filter(order::Column::Status.ne(OrderStatus::RequiresVerification as i32))
            .filter(order::Column::Status.ne(OrderStatus::Rejected as i32))
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Marks the reservation as kept by inventory.
    pub async fn mark_reservation_confirmed(&self, order_id: &str) -> Result<(), OrderError> {
        order::Entity::update_many()
            .col_expr(order::Column::ReservationConfirmed, Expr::value(true))
            .filter(order::Column::OrderId.eq(order_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The price list entries of `skus` in `currency`: name and unit price.
    pub async fn prices(
        &self,
        currency: Currency,
        skus: &[&str],
    ) -> Result<BTreeMap<String, (String, Money)>, OrderError> {
        let rows = price::Entity::find()
            .filter(price::Column::CurrencyCode.eq(currency.code()))
            .filter(price::Column::Sku.is_in(skus.iter().map(|s| (*s).to_owned())))
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let amount = row.amount.parse().map_err(|_| {
                    OrderError::Corrupt(format!("price of {}: {:?}", row.sku, row.amount))
                })?;
                Ok((row.sku, (row.name, Money::new(currency, amount))))
            })
            .collect()
    }

    /// Creates or replaces a price.
    pub async fn upsert_price(&self, entry: &pb::Price) -> Result<(), OrderError> {
        let unit = entry.unit_price.clone().unwrap_or_default();
        let row = price::ActiveModel {
            sku: Set(entry.sku.clone()),
            currency_code: Set(unit.currency_code),
            name: Set(entry.name.clone()),
            amount: Set(unit.amount),
            updated_at: Set(Utc::now()),
        };
        price::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([price::Column::Sku, price::Column::CurrencyCode])
                    .update_columns([
                        price::Column::Name,
                        price::Column::Amount,
                        price::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// A customer's record, if one was configured.
    pub async fn customer(&self, user_id: &str) -> Result<Option<pb::Customer>, OrderError> {
        customer::Entity::find_by_id(user_id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| {
                pb::Customer::decode(row.record.as_slice())
                    .map_err(|e| OrderError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// Creates or replaces a customer's record.
    pub async fn upsert_customer(&self, record: &pb::Customer) -> Result<(), OrderError> {
        let row = customer::ActiveModel {
            user_id: Set(record.user_id.clone()),
            record: Set(record.encode_to_vec()),
            updated_at: Set(Utc::now()),
        };
        customer::Entity::insert(row)
            .on_conflict(
                OnConflict::column(customer::Column::UserId)
                    .update_columns([customer::Column::Record, customer::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Keeps a channel payload that could not become an order.
    pub async fn reject_intake(
        &self,
        channel: Channel,
        payload: &[u8],
        reason: &str,
    ) -> Result<String, OrderError> {
        let intake_id = uuid::Uuid::now_v7().to_string();
        let row = rejected_intake::ActiveModel {
            intake_id: Set(intake_id.clone()),
            channel: Set(channel as i32),
            payload: Set(payload.to_vec()),
            reason: Set(reason.to_owned()),
            received_at: Set(Utc::now()),
        };
        rejected_intake::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(intake_id)
    }

    /// Rejected payloads, newest first, after the cursor.
    pub async fn rejected_intakes(
        &self,
        channel: Option<i32>,
        before: Option<String>,
        limit: u64,
    ) -> Result<Vec<pb::RejectedIntake>, OrderError> {
        let mut query = rejected_intake::Entity::find();
        if let Some(channel) = channel {
            query = query.filter(rejected_intake::Column::Channel.eq(channel));
        }
        if let Some(before) = before {
            query = query.filter(rejected_intake::Column::IntakeId.lt(before));
        }
        let rows = query
            .order_by_desc(rejected_intake::Column::IntakeId)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| pb::RejectedIntake {
                intake_id: row.intake_id,
                channel: row.channel,
                payload: row.payload,
                reason: row.reason,
                received_at: Some(to_timestamp(row.received_at)),
            })
            .collect())
    }

    /// Indexes a return under its order.
    pub async fn link_return<C: ConnectionTrait>(
        &self,
        conn: &C,
        return_id: &str,
        order_id: &str,
    ) -> Result<(), OrderError> {
        let row = order_return::ActiveModel {
            return_id: Set(return_id.to_owned()),
            order_id: Set(order_id.to_owned()),
        };
        order_return::Entity::insert(row)
            .on_conflict(
                OnConflict::column(order_return::Column::ReturnId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// The order a return belongs to.
    pub async fn order_of_return(&self, return_id: &str) -> Result<String, OrderError> {
        order_return::Entity::find_by_id(return_id.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.order_id)
            .ok_or_else(|| OrderError::UnknownReturn(return_id.to_owned()))
    }
}
