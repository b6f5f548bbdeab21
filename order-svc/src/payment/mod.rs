//! Payments: authorise at placement, capture when goods leave, void what is cancelled before
//! capture, refund what comes back. [`PaymentProvider`] is the seam real providers plug into;
//! [`LedgerProvider`] is the embedded one: a ledger in a database of its own, exact to the
//! minor unit, every movement idempotent by key.

use async_trait::async_trait;
use chrono::Utc;
use oms_platform::money::{Currency, Money, MoneyError};
use oms_proto::order::v1::{Payment, PaymentStatus};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    TryInsertResult,
    sea_query::{Expr, OnConflict},
};

pub mod schema;

use schema::{payment, payment_entry};

/// Why a payment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider refused (card declined, limit, amount above what is left).
    #[error("{0}")]
    Declined(String),
    /// The provider could not be reached or failed; the operation may be retried with the
    /// same key.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider. Every call is idempotent by its key (authorisations by order id), so a
/// retried saga step or event never charges twice.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Holds `amount` for the order.
    async fn authorize(&self, order_id: &str, amount: Money) -> Result<Payment, PaymentError>;
    /// Takes `amount` of the held money.
    async fn capture(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError>;
    /// Releases up to `amount` of the held, uncaptured money.
    async fn void(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError>;
    /// Gives back up to `amount` of the captured money.
    async fn refund(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError>;
}

/// The embedded provider: a ledger in its own database (see [`schema`]).
pub struct LedgerProvider {
    db: DatabaseConnection,
}

const PROVIDER: &str = "ledger";
/// Attempts of a ledger movement that keeps losing races on one authorisation.
const ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Capture,
    Void,
    Refund,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Capture => "capture",
            Kind::Void => "void",
            Kind::Refund => "refund",
        }
    }
}

/// The running figures of one authorisation.
#[derive(Debug, Clone, Copy)]
struct Figures {
    authorized: Decimal,
    captured: Decimal,
    refunded: Decimal,
    voided: Decimal,
}

impl Figures {
    /// What a movement of `amount` actually moves (voids and refunds are capped at what is
    /// left), or why it cannot.
    fn movable(&self, kind: Kind, amount: Decimal) -> Result<Decimal, PaymentError> {
        let open = self.authorized - self.captured - self.voided;
        match kind {
            Kind::Capture if amount > open => Err(PaymentError::Declined(format!(
                "capture of {amount} exceeds the {open} still authorised"
            ))),
            Kind::Capture => Ok(amount),
            Kind::Void => Ok(amount.min(open)),
            Kind::Refund => Ok(amount.min(self.captured - self.refunded)),
        }
    }

    fn after(mut self, kind: Kind, amount: Decimal) -> Self {
        match kind {
            Kind::Capture => self.captured += amount,
            Kind::Void => self.voided += amount,
            Kind::Refund => self.refunded += amount,
        }
        self
    }

    fn status(&self) -> PaymentStatus {
        if self.refunded > Decimal::ZERO {
            if self.refunded >= self.captured {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            }
        } else if self.captured > Decimal::ZERO {
            PaymentStatus::Captured
        } else if self.voided >= self.authorized {
            PaymentStatus::Voided
        } else {
            PaymentStatus::Authorized
        }
    }
}

fn unavailable(error: DbErr) -> PaymentError {
    PaymentError::Unavailable(error.to_string())
}

fn parse(text: &str) -> Result<Decimal, PaymentError> {
    text.parse()
        .map_err(|_| PaymentError::Unavailable(format!("ledger holds a bad amount {text:?}")))
}

fn figures(row: &payment::Model) -> Result<Figures, PaymentError> {
    Ok(Figures {
        authorized: parse(&row.authorized)?,
        captured: parse(&row.captured)?,
        refunded: parse(&row.refunded)?,
        voided: parse(&row.voided)?,
    })
}

fn to_payment(row: &payment::Model, figures: &Figures) -> Result<Payment, PaymentError> {
    let currency = Currency::parse(&row.currency_code).ok_or_else(|| {
        PaymentError::Unavailable(
            MoneyError::UnknownCurrency(row.currency_code.clone()).to_string(),
        )
    })?;
    let wire = |amount: Decimal| Some(Money::new(currency, amount).to_proto());
    Ok(Payment {
        provider: PROVIDER.into(),
        authorization_id: row.authorization_id.clone(),
        status: figures.status().into(),
        authorized: wire(figures.authorized - figures.voided),
        captured: wire(figures.captured),
        refunded: wire(figures.refunded),
    })
}

impl LedgerProvider {
    /// A ledger in `db`, migrated with [`schema::Migrator`].
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn load(&self, authorization_id: &str) -> Result<payment::Model, PaymentError> {
        payment::Entity::find_by_id(authorization_id.to_owned())
            .one(&self.db)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                PaymentError::Declined(format!("unknown authorisation {authorization_id}"))
            })
    }

    /// One movement: recorded under its key (a repeat changes nothing), applied to the running
    /// figures with a compare-and-set so concurrent movements cannot overdraw.
    async fn movement(
        &self,
        authorization_id: &str,
        kind: Kind,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError> {
        for _ in 0..ATTEMPTS {
            let row = self.load(authorization_id).await?;
            if row.currency_code != amount.currency().code() {
                return Err(PaymentError::Declined(format!(
                    "{} is not the authorisation's currency {}",
                    amount.currency(),
                    row.currency_code
                )));
            }
            let before = figures(&row)?;
            let txn = self.db.begin().await.map_err(unavailable)?;
            let moved = before.movable(kind, amount.amount())?;
            let entry = payment_entry::ActiveModel {
                authorization_id: Set(authorization_id.to_owned()),
                idempotency_key: Set(key.to_owned()),
                kind: Set(kind.as_str().to_owned()),
                amount: Set(moved.to_string()),
                created_at: Set(Utc::now()),
            };
            let recorded = payment_entry::Entity::insert(entry)
                .on_conflict(
                    OnConflict::columns([
                        payment_entry::Column::AuthorizationId,
                        payment_entry::Column::IdempotencyKey,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
            if recorded == 0 {
                // Done before under this key: report the state as it is.
                txn.rollback().await.map_err(unavailable)?;
                return to_payment(&row, &before);
            }
            let after = before.after(kind, moved);
            let updated = payment::Entity::update_many()
                .col_expr(
                    payment::Column::Captured,
                    Expr::value(after.captured.to_string()),
                )
                .col_expr(
                    payment::Column::Refunded,
                    Expr::value(after.refunded.to_string()),
                )
                .col_expr(
                    payment::Column::Voided,
                    Expr::value(after.voided.to_string()),
                )
                .col_expr(payment::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(payment::Column::AuthorizationId.eq(authorization_id))
                .filter(payment::Column::Captured.eq(row.captured.clone()))
                .filter(payment::Column::Refunded.eq(row.refunded.clone()))
                .filter(payment::Column::Voided.eq(row.voided.clone()))
                .exec(&txn)
                .await
                .map_err(unavailable)?;
            if updated.rows_affected == 1 {
                txn.commit().await.map_err(unavailable)?;
                return to_payment(&row, &after);
            }
            txn.rollback().await.map_err(unavailable)?;
        }
        Err(PaymentError::Unavailable(format!(
            "authorisation {authorization_id} is busy; retry"
        )))
    }
}

#[async_trait]
impl PaymentProvider for LedgerProvider {
    async fn authorize(&self, order_id: &str, amount: Money) -> Result<Payment, PaymentError> {
        let authorization_id = format!("auth-{order_id}");
        let zero = Money::zero(amount.currency()).amount().to_string();
        let row = payment::ActiveModel {
            authorization_id: Set(authorization_id.clone()),
            order_id: Set(order_id.to_owned()),
            currency_code: Set(amount.currency().code().to_owned()),
            authorized: Set(amount.amount().to_string()),
            captured: Set(zero.clone()),
            refunded: Set(zero.clone()),
            voided: Set(zero),
            updated_at: Set(Utc::now()),
        };
        // One statement; a retry (the authorisation exists) reads it as it is. (Inserted as
        // "many": SQLite commits an INSERT … RETURNING only once all its rows are read.)
        let inserted = payment::Entity::insert_many([row])
            .on_conflict_do_nothing_on([payment::Column::AuthorizationId])
            .exec_with_returning_many(&self.db)
            .await
            .map_err(unavailable)?;
        let row = match inserted {
            TryInsertResult::Inserted(rows) => rows.into_iter().next(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => None,
        };
        let row = match row {
            Some(row) => row,
            None => self.load(&authorization_id).await?,
        };
        to_payment(&row, &figures(&row)?)
    }

    async fn capture(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError> {
        self.movement(authorization_id, Kind::Capture, amount, key)
            .await
    }

    async fn void(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError> {
        self.movement(authorization_id, Kind::Void, amount, key)
            .await
    }

    async fn refund(
        &self,
        authorization_id: &str,
        amount: Money,
        key: &str,
    ) -> Result<Payment, PaymentError> {
        self.movement(authorization_id, Kind::Refund, amount, key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(authorized: i64, captured: i64, refunded: i64, voided: i64) -> Figures {
        Figures {
            authorized: authorized.into(),
            captured: captured.into(),
            refunded: refunded.into(),
            voided: voided.into(),
        }
    }

    #[test]
    fn captures_never_exceed_what_is_authorised_and_voids_and_refunds_are_capped() {
        let held = figures(100, 60, 0, 0);
        assert_eq!(
            held.movable(Kind::Capture, 40.into()).unwrap(),
            Decimal::from(40)
        );
        assert!(matches!(
            held.movable(Kind::Capture, 41.into()),
            Err(PaymentError::Declined(_))
        ));
        assert_eq!(
            held.movable(Kind::Void, 100.into()).unwrap(),
            Decimal::from(40)
        );
        assert_eq!(
            held.movable(Kind::Refund, 100.into()).unwrap(),
            Decimal::from(60)
        );
    }

    #[test]
    fn the_status_follows_the_figures() {
        assert_eq!(figures(100, 0, 0, 0).status(), PaymentStatus::Authorized);
        assert_eq!(figures(100, 0, 0, 100).status(), PaymentStatus::Voided);
        assert_eq!(figures(100, 100, 0, 0).status(), PaymentStatus::Captured);
        assert_eq!(
            figures(100, 100, 30, 0).status(),
            PaymentStatus::PartiallyRefunded
        );
        assert_eq!(figures(100, 70, 70, 30).status(), PaymentStatus::Refunded);
    }
}
