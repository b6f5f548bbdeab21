//! Order persistence: orders (searchable columns + the encoded order), the return index, the
//! price list, customers, rejected channel payloads. Every change of an order is saved with
//! its events in one transaction, guarded by the order's version.

pub mod entities;
pub mod migration;
pub mod passkeys;
mod price_book;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

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
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query, UpdateStatement},
};

use crate::domain::{OrderError, lifecycle};
use entities::{customer, order, order_return, price, rejected_intake};
use price_book::PriceBook;

/// The order database.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Wakes the relay after commits that enqueued events.
    pub outbox: Outbox,
    /// Prices looked up a moment ago.
    prices: Arc<PriceBook>,
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

/// What eligibility needs to know about the buyer, read while their order is recorded.
#[derive(Debug, Clone, Default)]
pub struct BuyerFacts {
    /// Their open orders besides this one.
    pub open_orders: u64,
    /// Their customer record, if one was configured.
    pub customer: Option<pb::Customer>,
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

/// The `n`-th statement parameter in the backend's syntax.
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
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
        Self {
            db,
            outbox,
            prices: Arc::default(),
        }
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

    /// Records a new PENDING order under its idempotency key and, in the same statement,
    /// reads what the eligibility check needs: the buyer's other open orders and their
    /// customer record. `None` when the key was taken (by a concurrent or earlier call).
    pub async fn insert_pending(
        &self,
        stored: &StoredOrder,
        idempotency_key: &str,
    ) -> Result<Option<BuyerFacts>, OrderError> {
        let order = &stored.order;
        let now = Utc::now();
        let open: Vec<i32> = lifecycle::ALL
            .into_iter()
            .filter(|s| lifecycle::is_open(*s))
            .map(|s| s as i32)
            .collect();
        let open_orders = Query::select()
            .expr(Expr::col(order::Column::OrderId).count())
            .from(order::Entity)
            .and_where(order::Column::UserId.eq(order.user_id.clone()))
            .and_where(order::Column::Status.is_in(open))
            .and_where(order::Column::OrderId.ne(order.order_id.clone()))
            .to_owned();
        let record = Query::select()
            .column(customer::Column::Record)
            .from(customer::Entity)
            .and_where(customer::Column::UserId.eq(order.user_id.clone()))
            .to_owned();
        let insert = Query::insert()
            .into_table(order::Entity)
            .columns([
                order::Column::OrderId,
                order::Column::UserId,
                order::Column::Channel,
                order::Column::Status,
                order::Column::IdempotencyKey,
                order::Column::RequestHash,
                order::Column::ReservationId,
                order::Column::ReservationConfirmed,
                order::Column::Snapshot,
                order::Column::Version,
                order::Column::CreatedAt,
                order::Column::UpdatedAt,
            ])
            .values_panic([
                order.order_id.clone().into(),
                order.user_id.clone().into(),
                order.channel.into(),
                order.status.into(),
                idempotency_key.into(),
                stored.request_hash.clone().into(),
                String::new().into(),
                false.into(),
                order.encode_to_vec().into(),
                stored.version.into(),
                now.into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::columns([order::Column::UserId, order::Column::IdempotencyKey])
                    .do_nothing()
                    .to_owned(),
            )
            .returning(Query::returning().exprs([
                Expr::SubQuery(None, Box::new(open_orders.into())),
                Expr::SubQuery(None, Box::new(record.into())),
            ]))
            .to_owned();
        // All rows, though there is one at most: SQLite commits an INSERT … RETURNING only
        // once the statement has run to its end.
        let Some(row) = self.db.query_all(&insert).await?.into_iter().next() else {
            return Ok(None);
        };
        let open_orders: i64 = row.try_get_by_index(0)?;
        let customer = row
            .try_get_by_index::<Option<Vec<u8>>>(1)?
            .map(|record| {
                pb::Customer::decode(record.as_slice())
                    .map_err(|e| OrderError::Corrupt(e.to_string()))
            })
            .transpose()?;
        Ok(Some(BuyerFacts {
            open_orders: u64::try_from(open_orders).unwrap_or(0),
            customer,
        }))
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

    /// The orders placed with these (user, key) pairs, in one query.
    pub async fn by_keys(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), StoredOrder>, OrderError> {
        order::Entity::find()
            .filter(
                Expr::tuple([
                    Expr::col(order::Column::UserId),
                    Expr::col(order::Column::IdempotencyKey),
                ])
                .in_tuples(keys.iter().cloned()),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let key = (row.user_id.clone(), row.idempotency_key.clone());
                decode(row).map(|stored| (key, stored))
            })
            .collect()
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

    /// Orders by id (missing ones are left out).
    pub async fn load_many<C: ConnectionTrait>(
        &self,
        conn: &C,
        order_ids: &[&str],
    ) -> Result<BTreeMap<String, StoredOrder>, OrderError> {
        order::Entity::find()
            .filter(order::Column::OrderId.is_in(order_ids.iter().map(|id| (*id).to_owned())))
            .all(conn)
            .await?
            .into_iter()
            .map(|row| decode(row).map(|stored| (stored.order.order_id.clone(), stored)))
            .collect()
    }

    /// Saves a changed order if nobody changed it since `stored.version`, with the events
    /// `events` builds from the order as saved (its version bumped); `Conflict` on a lost race.
    pub async fn save<C: ConnectionTrait>(
        &self,
        conn: &C,
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<(), OrderError> {
        let (update, events) = Self::guarded_update(stored, events)?;
        if conn.execute(&update).await?.rows_affected() != 1 {
            return Err(Self::lost_race(stored));
        }
        outbox::enqueue_all(conn, &events).await?;
        stored.version += 1;
        Ok(())
    }

    /// [`Store::save`] on its own — one statement with its events on PostgreSQL — then wakes
    /// the relay.
    pub async fn save_now(
        &self,
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<(), OrderError> {
        let (update, events) = Self::guarded_update(stored, events)?;
        if !outbox::update_with_events(&self.db, update, &events).await? {
            return Err(Self::lost_race(stored));
        }
        stored.version += 1;
        self.outbox.wake();
        Ok(())
    }

    /// Makes the change in `stored` its next version (stamped now) and returns the events
    /// `events` builds from the order as it now is; saving must be guarded by the version
    /// before.
    pub fn next_version(
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<Vec<Envelope>, OrderError> {
        stored.version += 1;
        stored.order.version = stored.version;
        stored.order.updated_at = Some(to_timestamp(Utc::now()));
        Ok(events(&stored.order)?)
    }

    /// The update that saves `stored` as its next version if it is still at its current one,
    /// and the events of the saved order. (`stored.version` moves on only once it is saved.)
    fn guarded_update(
        stored: &mut StoredOrder,
        events: impl FnOnce(&pb::Order) -> Result<Vec<Envelope>, BusError>,
    ) -> Result<(UpdateStatement, Vec<Envelope>), OrderError> {
        let before = stored.version;
        let events = Self::next_version(stored, events)?;
        stored.version = before;
        let order = &stored.order;
        let update = Query::update()
            .table(order::Entity)
            .values([
                (order::Column::Status, order.status.into()),
                (
                    order::Column::ReservationId,
                    stored.reservation_id.clone().into(),
                ),
                (
                    order::Column::ReservationConfirmed,
                    stored.reservation_confirmed.into(),
                ),
                (order::Column::Snapshot, order.encode_to_vec().into()),
                (order::Column::Version, order.version.into()),
                (order::Column::UpdatedAt, Utc::now().into()),
            ])
            .and_where(order::Column::OrderId.eq(order.order_id.clone()))
            .and_where(order::Column::Version.eq(before))
            .to_owned();
        Ok((update, events))
    }

    /// Saves orders changed in memory, each as `(version it was loaded at, order)`, in one
    /// statement; `Conflict` (and nothing saved: the caller's transaction rolls back) when any
    /// was changed by someone else meanwhile.
    pub async fn save_changed<C: ConnectionTrait>(
        &self,
        conn: &C,
        changed: &[(i64, &StoredOrder)],
    ) -> Result<(), OrderError> {
        if changed.is_empty() {
            return Ok(());
        }
        let backend = conn.get_database_backend();
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(changed.len() * 8);
        let mut rows = Vec::with_capacity(changed.len());
        for (loaded, stored) in changed {
            let mut row = Vec::with_capacity(8);
            for value in [
                sea_orm::Value::from(stored.order.order_id.clone()),
                (*loaded).into(),
                stored.order.status.into(),
                stored.reservation_id.clone().into(),
                stored.reservation_confirmed.into(),
                stored.order.encode_to_vec().into(),
                stored.version.into(),
                Utc::now().into(),
            ] {
                values.push(value);
                row.push(placeholder(backend, values.len()));
            }
            rows.push(format!("({})", row.join(", ")));
        }
        // VALUES columns are column1, column2, … on PostgreSQL and SQLite alike.
        let sql = format!(
            "UPDATE orders SET status = v.column3, reservation_id = v.column4, \
             reservation_confirmed = v.column5, snapshot = v.column6, version = v.column7, \
             updated_at = v.column8 \
             FROM (VALUES {}) AS v \
             WHERE orders.order_id = v.column1 AND orders.version = v.column2",
            rows.join(", ")
        );
        let updated = conn
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .rows_affected();
        if updated != changed.len() as u64 {
            return Err(OrderError::Conflict(
                "an order changed concurrently; retry".into(),
            ));
        }
        Ok(())
    }

    fn lost_race(stored: &mut StoredOrder) -> OrderError {
        // The snapshot was stamped with the version it did not get.
        stored.order.version = stored.version;
        OrderError::Conflict(format!(
            "order {} changed concurrently; retry",
            stored.order.order_id
        ))
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

    /// The price list entries of `skus` in `currency`: name and unit price (from the
    /// [`PriceBook`] when it looked them up a moment ago).
    pub async fn prices(
        &self,
        currency: Currency,
        skus: &[&str],
    ) -> Result<BTreeMap<String, (String, Money)>, OrderError> {
        let (known, missing) = self.prices.lookup(currency, skus);
        let mut prices: BTreeMap<String, (String, Money)> = known
            .into_iter()
            .filter_map(|(sku, entry)| entry.map(|entry| (sku, entry)))
            .collect();
        if missing.is_empty() {
            return Ok(prices);
        }
        let rows = price::Entity::find()
            .filter(price::Column::CurrencyCode.eq(currency.code()))
            .filter(price::Column::Sku.is_in(missing.iter().map(|s| (*s).to_owned())))
            .all(&self.db)
            .await?;
        for row in rows {
            let amount = row.amount.parse().map_err(|_| {
                OrderError::Corrupt(format!("price of {}: {:?}", row.sku, row.amount))
            })?;
            prices.insert(row.sku, (row.name, Money::new(currency, amount)));
        }
        for sku in missing {
            self.prices
                .remember(currency, sku, prices.get(sku).cloned());
        }
        Ok(prices)
    }

    /// Creates or replaces a price.
    pub async fn upsert_price(&self, entry: &pb::Price) -> Result<(), OrderError> {
        let unit = entry.unit_price.clone().unwrap_or_default();
        let currency = Currency::parse(&unit.currency_code);
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
        // After the write: a placement reading meanwhile cannot keep the old price.
        if let Some(currency) = currency {
            self.prices.forget(currency, &entry.sku);
        }
        Ok(())
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
