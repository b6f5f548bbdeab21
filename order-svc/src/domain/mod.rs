//! Pure order logic: the canonical intake every channel becomes, the lifecycle, validation and
//! eligibility, money. No I/O here.

pub mod admission;
pub mod channels;
pub mod eligibility;
pub mod lifecycle;
pub mod money;
pub mod validate;
pub mod verification;

use oms_platform::{
    error::{ApiError, PreconditionViolation},
    money::MoneyError,
};
use oms_proto::common::v1::{Address, Channel, DeliveryPreference};
use rust_decimal::Decimal;

/// An order as any channel hands it in, before validation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Intake {
    /// Where it came from.
    pub channel: Channel,
    /// The channel's own order id (web order id, marketplace order number, POS receipt); ""
    /// for mobile.
    pub external_ref: String,
    /// The buyer.
    pub user_id: String,
    /// Mobile: from the request; other channels: "<channel>-<external_ref>" so a redelivered
    /// webhook is one order.
    pub idempotency_key: String,
    /// ISO 4217 code of every amount.
    pub currency_code: String,
    /// What is bought.
    pub lines: Vec<IntakeLine>,
    /// Where it goes.
    pub shipping_address: Option<Address>,
    /// How fast, or by when.
    pub preference: Option<DeliveryPreference>,
    /// A delivery quote whose price is honoured while valid.
    pub quote_id: String,
}

/// One line of an intake.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeLine {
    /// The SKU.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
    /// The unit price the channel collected, in the intake's currency; `None` = our price
    /// list (mobile).
    pub unit_price: Option<Decimal>,
}

/// Why an order operation failed, in domain words; [`ApiError`] decides the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The request is malformed; nothing changed.
    #[error(transparent)]
    Invalid(ApiError),
    /// The order does not exist or is not the caller's.
    #[error("order {0}")]
    UnknownOrder(String),
    /// The return does not exist.
    #[error("return {0}")]
    UnknownReturn(String),
    /// The order's state does not allow the operation.
    #[error("{0}")]
    NotAllowed(String),
    /// The buyer may not place this order.
    #[error("{0}")]
    NotEligible(String),
    /// No stock, no center or no delivery window can serve the order.
    #[error("{message}")]
    Unfulfillable {
        /// Summary.
        message: String,
        /// What fell short (lines out of stock, centers that cannot make the window).
        violations: Vec<PreconditionViolation>,
    },
    /// The caller may not do this (a passkey answer that does not verify).
    #[error("{0}")]
    Forbidden(String),
    /// A high-value order needs a passkey the buyer has not enrolled.
    #[error("{0}")]
    PasskeyRequired(String),
    /// The payment provider refused.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// A peer service (inventory, fulfillment) failed; the mapped status says how.
    #[error("{peer}: {status}")]
    Peer {
        /// Which service.
        peer: &'static str,
        /// What it answered.
        status: tonic::Status,
    },
    /// A concurrent change won; the caller may retry.
    #[error("{0}")]
    Conflict(String),
    /// Amounts in mixed currencies or out of range.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Storage failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// An event could not be built.
    #[error("event: {0}")]
    Event(#[from] oms_platform::bus::BusError),
    /// Stored data does not decode.
    #[error("stored data: {0}")]
    Corrupt(String),
}

impl OrderError {
    /// What a peer's error means for us: its FAILED_PRECONDITION (out of stock, no center
    /// can make the window) makes the order unfulfillable; anything else passes through.
    pub fn from_peer(peer: &'static str, status: tonic::Status) -> Self {
        if status.code() == tonic::Code::FailedPrecondition
            && let ApiError::FailedPrecondition {
                message,
                violations,
            } = ApiError::from_peer(peer, &status)
        {
            return OrderError::Unfulfillable {
                message,
                violations,
            };
        }
        OrderError::Peer { peer, status }
    }

    /// Whether the failure is the order's own (stock, eligibility, payment), so a placement
    /// ends REJECTED and a retry with the same key gets the same answer; other failures leave
    /// nothing behind and may be retried.
    pub fn is_business(&self) -> bool {
        matches!(
            self,
            OrderError::NotEligible(_)
                | OrderError::Unfulfillable { .. }
                | OrderError::PaymentDeclined(_)
        )
    }
}

impl From<ApiError> for OrderError {
    fn from(error: ApiError) -> Self {
        OrderError::Invalid(error)
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(error) => error,
            OrderError::UnknownOrder(id) => ApiError::NotFound(format!("order {id}")),
            OrderError::UnknownReturn(id) => ApiError::NotFound(format!("return {id}")),
            OrderError::NotAllowed(message) | OrderError::NotEligible(message) => {
                ApiError::FailedPrecondition {
                    message,
                    violations: Vec::new(),
                }
            }
            OrderError::Unfulfillable {
                message,
                violations,
            } => ApiError::FailedPrecondition {
                message,
                violations,
            },
            OrderError::Forbidden(message) => ApiError::PermissionDenied(message),
            OrderError::PasskeyRequired(message) => ApiError::FailedPrecondition {
                violations: vec![PreconditionViolation {
                    kind: "PASSKEY_REQUIRED".into(),
                    subject: "passkeys".into(),
                    description: message.clone(),
                }],
                message,
            },
            OrderError::PaymentDeclined(reason) => ApiError::FailedPrecondition {
                message: format!("payment declined: {reason}"),
                violations: Vec::new(),
            },
            OrderError::Peer { peer, status } => ApiError::from_peer(peer, &status),
            OrderError::Conflict(message) => ApiError::Aborted(message),
            OrderError::Money(error) => ApiError::invalid("currency_code", error.to_string()),
            OrderError::Db(error) => ApiError::internal(error),
            OrderError::Event(error) => ApiError::internal(error),
            OrderError::Corrupt(message) => ApiError::internal(std::io::Error::other(message)),
        }
    }
}

impl From<OrderError> for tonic::Status {
    fn from(error: OrderError) -> Self {
        ApiError::from(error).into()
    }
}
