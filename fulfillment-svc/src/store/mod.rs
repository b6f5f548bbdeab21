//! Fulfillment persistence: centers and their daily load, quotes, shipments with their
//! carrier history, the tax table.

pub mod entities;
pub mod migration;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use oms_platform::{
    money::Money,
    outbox::{self, Outbox},
};
use oms_proto::fulfillment::v1 as pb;
use prost::Message;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
    sea_query::{CaseStatement, Expr, ExprTrait, OnConflict},
};

use crate::{
    domain::{Center, FulfillmentError, Method, MethodOffer, shipment::Status, tax::TaxRule},
    events,
};
use entities::{carrier_report, center, quote, shipment, tax_rule};

/// The fulfillment database.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Wakes the relay after commits that enqueued events.
    pub outbox: Outbox,
    /// The routable centers as read a moment ago.
    routable: Arc<Mutex<Option<CentersRead>>>,
}

/// Centers and when they were read.
type CentersRead = (Vec<Center>, Instant);

/// How long planning trusts the centers it read: a placement plans without a round trip, and
/// today's load (capacity cut-off, surge) is at most this old; a center created or changed
/// here is seen at once.
pub const CENTERS_FRESH_FOR: Duration = Duration::from_secs(1);

/// Today's date as loads count it (UTC).
fn today(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

impl Store {
    /// A store over `db`.
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Self {
            db,
            outbox,
            routable: Arc::default(),
        }
    }

    /// Forgets the centers read before (one changed here).
    fn centers_changed(&self) {
        *self.routable.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<DatabaseTransaction, FulfillmentError> {
        Ok(self.db.begin().await?)
    }

    /// Commits and wakes the relay.
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), FulfillmentError> {
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Creates or replaces a center (its load is kept) and announces it.
    pub async fn upsert_center(
        &self,
        definition: &pb::FulfillmentCenter,
    ) -> Result<pb::FulfillmentCenter, FulfillmentError> {
        let txn = self.begin().await?;
        let now = Utc::now();
        let row = center::ActiveModel {
            center_id: Set(definition.center_id.clone()),
            definition: Set(definition.encode_to_vec()),
            active: Set(definition.active),
            current_load: Set(0),
            load_date: Set(today(now)),
            updated_at: Set(now),
        };
        center::Entity::insert(row)
            .on_conflict(
                OnConflict::column(center::Column::CenterId)
                    .update_columns([
                        center::Column::Definition,
                        center::Column::Active,
                        center::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let stored = self.center_on(&txn, &definition.center_id, now).await?;
        outbox::enqueue(&txn, &events::center_upserted(stored.clone())?).await?;
        self.commit(txn).await?;
        self.centers_changed();
        Ok(stored)
    }

    async fn center_on<C: ConnectionTrait>(
        &self,
        conn: &C,
        center_id: &str,
        now: DateTime<Utc>,
    ) -> Result<pb::FulfillmentCenter, FulfillmentError> {
        let row = center::Entity::find_by_id(center_id.to_owned())
            .one(conn)
            .await?
            .ok_or_else(|| FulfillmentError::UnknownCenter(center_id.to_owned()))?;
        center_proto(&row, now)
    }

    /// One center with today's load.
    pub async fn center(&self, center_id: &str) -> Result<pb::FulfillmentCenter, FulfillmentError> {
        self.center_on(&self.db, center_id, Utc::now()).await
    }

    /// A page of centers in id order after `after`.
    pub async fn list_centers(
        &self,
        after: &str,
        limit: u64,
    ) -> Result<Vec<pb::FulfillmentCenter>, FulfillmentError> {
        let now = Utc::now();
        center::Entity::find()
            .filter(center::Column::CenterId.gt(after))
            .order_by_asc(center::Column::CenterId)
            .limit(limit)
            .all(&self.db)
            .await?
            .iter()
            .map(|row| center_proto(row, now))
            .collect()
    }

    /// Every active center as routing sees it, with today's load (read at most
    /// [`CENTERS_FRESH_FOR`] ago).
    pub async fn routable_centers(&self) -> Result<Vec<Center>, FulfillmentError> {
        if let Some((centers, read_at)) =
            &*self.routable.lock().unwrap_or_else(PoisonError::into_inner)
            && read_at.elapsed() < CENTERS_FRESH_FOR
        {
            return Ok(centers.clone());
        }
        let now = Utc::now();
        let centers = center::Entity::find()
            .filter(center::Column::Active.eq(true))
            .order_by_asc(center::Column::CenterId)
            .all(&self.db)
            .await?
            .iter()
            .map(|row| center_proto(row, now).and_then(|c| to_domain(&c)))
            .collect::<Result<Vec<_>, _>>()?;
        *self.routable.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((centers.clone(), Instant::now()));
        Ok(centers)
    }

    /// Counts new shipments against their centers' capacity today, in one statement
    /// (`loads`: shipments per center).
    pub async fn add_loads<C: ConnectionTrait>(
        &self,
        conn: &C,
        loads: &BTreeMap<String, i64>,
    ) -> Result<(), FulfillmentError> {
        if loads.is_empty() {
            return Ok(());
        }
        let day = today(Utc::now());
        let mut added = CaseStatement::new();
        for (center_id, count) in loads {
            added = added.case(
                Expr::col(center::Column::CenterId).eq(center_id.clone()),
                *count,
            );
        }
        // Yesterday's count starts again from zero.
        let today_so_far: Expr = Expr::case(
            Expr::col(center::Column::LoadDate).eq(day.clone()),
            Expr::col(center::Column::CurrentLoad),
        )
        .finally(0)
        .into();
        center::Entity::update_many()
            .col_expr(
                center::Column::CurrentLoad,
                today_so_far.add(added.finally(0)),
            )
            .col_expr(center::Column::LoadDate, Expr::value(day))
            .filter(center::Column::CenterId.is_in(loads.keys().cloned()))
            .exec(conn)
            .await?;
        Ok(())
    }

    /// Stores a quote.
    pub async fn save_quote(
        &self,
        user_id: &str,
        quote: &pb::DeliveryQuote,
        expires_at: DateTime<Utc>,
    ) -> Result<(), FulfillmentError> {
        let row = quote::ActiveModel {
            quote_id: Set(quote.quote_id.clone()),
            user_id: Set(user_id.to_owned()),
            quote: Set(quote.encode_to_vec()),
            expires_at: Set(expires_at),
            created_at: Set(Utc::now()),
        };
        quote::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// A quote that has not expired.
    pub async fn valid_quote(&self, quote_id: &str) -> Result<pb::DeliveryQuote, FulfillmentError> {
        let row = quote::Entity::find_by_id(quote_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| FulfillmentError::UnknownQuote(quote_id.to_owned()))?;
        if row.expires_at <= Utc::now() {
            return Err(FulfillmentError::QuoteExpired(
                quote_id.to_owned(),
                row.expires_at.to_rfc3339(),
            ));
        }
        pb::DeliveryQuote::decode(row.quote.as_slice())
            .map_err(|e| FulfillmentError::Corrupt(e.to_string()))
    }

    /// Creates the shipments that do not exist yet, in one statement; returns the ids of
    /// those it created.
    pub async fn create_shipments<C: ConnectionTrait>(
        &self,
        conn: &C,
        snapshots: &[&pb::Shipment],
    ) -> Result<BTreeSet<String>, FulfillmentError> {
        let now = Utc::now();
        let rows = snapshots.iter().map(|snapshot| shipment::ActiveModel {
            shipment_id: Set(snapshot.shipment_id.clone()),
            order_id: Set(snapshot.order_id.clone()),
            user_id: Set(snapshot.user_id.clone()),
            carrier: Set(snapshot.carrier.clone()),
            tracking_number: Set(snapshot.tracking_number.clone()),
            status: Set(status_of(snapshot).as_str().to_owned()),
            snapshot: Set(snapshot.encode_to_vec()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        });
        let created = shipment::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([shipment::Column::ShipmentId])
            .exec_with_returning_keys(conn)
            .await?;
        Ok(match created {
            TryInsertResult::Inserted(ids) => ids.into_iter().collect(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => BTreeSet::new(),
        })
    }

    /// Saves a changed shipment if nobody changed it since `version`; false on a lost race.
    pub async fn save_shipment<C: ConnectionTrait>(
        &self,
        conn: &C,
        snapshot: &pb::Shipment,
        version: i64,
    ) -> Result<bool, FulfillmentError> {
        let updated = shipment::Entity::update_many()
            .col_expr(
                shipment::Column::Status,
                Expr::value(status_of(snapshot).as_str()),
            )
            .col_expr(
                shipment::Column::TrackingNumber,
                Expr::value(snapshot.tracking_number.clone()),
            )
            .col_expr(
                shipment::Column::Snapshot,
                Expr::value(snapshot.encode_to_vec()),
            )
            .col_expr(shipment::Column::Version, Expr::value(version + 1))
            .col_expr(shipment::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(shipment::Column::ShipmentId.eq(snapshot.shipment_id.clone()))
            .filter(shipment::Column::Version.eq(version))
            .exec(conn)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// A shipment and its version.
    pub async fn shipment<C: ConnectionTrait>(
        &self,
        conn: &C,
        shipment_id: &str,
    ) -> Result<(pb::Shipment, i64), FulfillmentError> {
        let row = shipment::Entity::find_by_id(shipment_id.to_owned())
            .one(conn)
            .await?
            .ok_or_else(|| FulfillmentError::UnknownShipment(shipment_id.to_owned()))?;
        decode_shipment(&row)
    }

    /// The shipment a carrier knows by `tracking_number`.
    pub async fn shipment_by_tracking<C: ConnectionTrait>(
        &self,
        conn: &C,
        carrier: &str,
        tracking_number: &str,
    ) -> Result<(pb::Shipment, i64), FulfillmentError> {
        let row = shipment::Entity::find()
            .filter(shipment::Column::Carrier.eq(carrier))
            .filter(shipment::Column::TrackingNumber.eq(tracking_number))
            .one(conn)
            .await?
            .ok_or_else(|| {
                FulfillmentError::UnknownShipment(format!("{carrier} {tracking_number}"))
            })?;
        decode_shipment(&row)
    }

    /// The shipments of an order, oldest first.
    pub async fn order_shipments<C: ConnectionTrait>(
        &self,
        conn: &C,
        order_id: &str,
    ) -> Result<Vec<(pb::Shipment, i64)>, FulfillmentError> {
        shipment::Entity::find()
            .filter(shipment::Column::OrderId.eq(order_id))
            .order_by_asc(shipment::Column::CreatedAt)
            .order_by_asc(shipment::Column::ShipmentId)
            .all(conn)
            .await?
            .iter()
            .map(decode_shipment)
            .collect()
    }

    /// Records a carrier report; false when it was applied before.
    pub async fn first_report<C: ConnectionTrait>(
        &self,
        conn: &C,
        carrier: &str,
        event_id: &str,
        shipment_id: &str,
    ) -> Result<bool, FulfillmentError> {
        let row = carrier_report::ActiveModel {
            carrier: Set(carrier.to_owned()),
            event_id: Set(event_id.to_owned()),
            shipment_id: Set(shipment_id.to_owned()),
            received_at: Set(Utc::now()),
        };
        let inserted = carrier_report::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    carrier_report::Column::Carrier,
                    carrier_report::Column::EventId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(inserted == 1)
    }

    /// Seeds the tax table from the bundled data when it is empty (operators' edits are kept).
    pub async fn seed_tax_rules(&self, rules: &[TaxRule]) -> Result<(), FulfillmentError> {
        if tax_rule::Entity::find().count(&self.db).await? > 0 {
            return Ok(());
        }
        for rule in rules {
            self.save_tax_rule(rule).await?;
        }
        Ok(())
    }

    /// Creates or replaces one tax rule.
    pub async fn save_tax_rule(&self, rule: &TaxRule) -> Result<(), FulfillmentError> {
        let json =
            serde_json::to_string(rule).map_err(|e| FulfillmentError::Corrupt(e.to_string()))?;
        let row = tax_rule::ActiveModel {
            country_code: Set(rule.country_code.clone()),
            region: Set(rule.region.clone()),
            rule: Set(json),
            updated_at: Set(Utc::now()),
        };
        tax_rule::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([tax_rule::Column::CountryCode, tax_rule::Column::Region])
                    .update_columns([tax_rule::Column::Rule, tax_rule::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// The whole tax table.
    pub async fn tax_rules(&self) -> Result<Vec<TaxRule>, FulfillmentError> {
        tax_rule::Entity::find()
            .order_by_asc(tax_rule::Column::CountryCode)
            .order_by_asc(tax_rule::Column::Region)
            .all(&self.db)
            .await?
            .iter()
            .map(|row| {
                serde_json::from_str(&row.rule)
                    .map_err(|e| FulfillmentError::Corrupt(e.to_string()))
            })
            .collect()
    }
}

fn decode_shipment(row: &shipment::Model) -> Result<(pb::Shipment, i64), FulfillmentError> {
    let snapshot = pb::Shipment::decode(row.snapshot.as_slice())
        .map_err(|e| FulfillmentError::Corrupt(e.to_string()))?;
    Ok((snapshot, row.version))
}

/// The domain status of a shipment snapshot.
pub fn status_of(snapshot: &pb::Shipment) -> Status {
    match pb::ShipmentStatus::try_from(snapshot.status) {
        Ok(pb::ShipmentStatus::HandedToCarrier) => Status::HandedToCarrier,
        Ok(pb::ShipmentStatus::PickedUp) => Status::PickedUp,
        Ok(pb::ShipmentStatus::InTransit) => Status::InTransit,
        Ok(pb::ShipmentStatus::OutForDelivery) => Status::OutForDelivery,
        Ok(pb::ShipmentStatus::Delivered) => Status::Delivered,
        Ok(pb::ShipmentStatus::Exception) => Status::Exception,
        Ok(pb::ShipmentStatus::Cancelled) => Status::Cancelled,
        _ => Status::Created,
    }
}

fn center_proto(
    row: &center::Model,
    now: DateTime<Utc>,
) -> Result<pb::FulfillmentCenter, FulfillmentError> {
    let mut definition = pb::FulfillmentCenter::decode(row.definition.as_slice())
        .map_err(|e| FulfillmentError::Corrupt(e.to_string()))?;
    definition.current_load = if row.load_date == today(now) {
        u32::try_from(row.current_load).unwrap_or(0)
    } else {
        0
    };
    definition.active = row.active;
    Ok(definition)
}

/// A stored center in domain terms.
pub fn to_domain(definition: &pb::FulfillmentCenter) -> Result<Center, FulfillmentError> {
    let methods = definition
        .methods
        .iter()
        .map(|offer| {
            let method = Method::from_proto(offer.method).ok_or_else(|| {
                FulfillmentError::Corrupt(format!(
                    "center {}: method {}",
                    definition.center_id, offer.method
                ))
            })?;
            let base_price = offer
                .base_price
                .as_ref()
                .map(Money::parse)
                .transpose()?
                .ok_or_else(|| {
                    FulfillmentError::Corrupt(format!(
                        "center {}: no base price",
                        definition.center_id
                    ))
                })?;
            Ok(MethodOffer {
                method,
                carrier: offer.carrier.clone(),
                base_hours: offer.base_hours,
                per_100km_hours: offer.per_100km_hours,
                max_km: offer.max_km,
                base_price,
            })
        })
        .collect::<Result<Vec<_>, FulfillmentError>>()?;
    Ok(Center {
        center_id: definition.center_id.clone(),
        name: definition.name.clone(),
        point: definition.point.unwrap_or_default(),
        country_code: definition.country_code.clone(),
        region: definition.region.clone(),
        daily_capacity: definition.daily_capacity,
        current_load: definition.current_load,
        handling_hours: definition.handling_hours,
        cutoff_minute_utc: definition.cutoff_minute_utc,
        methods,
        active: definition.active,
    })
}
