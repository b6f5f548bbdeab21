//! Fulfillment rules without I/O: routing, promises, pricing, tax and customs, carrier
//! payloads and shipment states. The service applies what these decide.

pub mod carriers;
pub mod pricing;
pub mod routing;
pub mod schedule;
pub mod shipment;
pub mod tax;
pub mod validate;

use std::fmt;

use oms_platform::{
    error::{ApiError, PreconditionViolation},
    money::Money,
};
use oms_proto::common::v1::{GeoPoint, ShippingMethod};

/// How fast a parcel travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Days.
    Standard,
    /// Next day.
    Express,
    /// Within hours.
    SameDay,
}

impl Method {
    /// Every method, slowest first.
    pub const ALL: [Method; 3] = [Method::Standard, Method::Express, Method::SameDay];

    /// 0 for standard, 1 for express, 2 for same-day.
    pub fn rank(self) -> u8 {
        match self {
            Method::Standard => 0,
            Method::Express => 1,
            Method::SameDay => 2,
        }
    }

    /// From the wire enum; `None` for UNSPECIFIED or unknown values.
    pub fn from_proto(value: i32) -> Option<Self> {
        match ShippingMethod::try_from(value) {
            Ok(ShippingMethod::Standard) => Some(Method::Standard),
            Ok(ShippingMethod::Express) => Some(Method::Express),
            Ok(ShippingMethod::SameDay) => Some(Method::SameDay),
            _ => None,
        }
    }

    /// The wire enum.
    pub fn to_proto(self) -> ShippingMethod {
        match self {
            Method::Standard => ShippingMethod::Standard,
            Method::Express => ShippingMethod::Express,
            Method::SameDay => ShippingMethod::SameDay,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Standard => "standard",
            Method::Express => "express",
            Method::SameDay => "same-day",
        })
    }
}

/// A method a center offers, with its carrier's transit model and base rate.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodOffer {
    /// The method.
    pub method: Method,
    /// Which carrier runs it.
    pub carrier: String,
    /// Transit hours at zero distance.
    pub base_hours: u32,
    /// Extra transit hours per 100 km.
    pub per_100km_hours: f64,
    /// Farthest destination served; 0 = no limit.
    pub max_km: f64,
    /// Base rate before distance, weight and surge.
    pub base_price: Money,
}

/// A fulfillment center as routing sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Center {
    /// Id (also the inventory location id).
    pub center_id: String,
    /// Name.
    pub name: String,
    /// Where.
    pub point: GeoPoint,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// ISO 3166-2.
    pub region: String,
    /// Orders it can ship per day.
    pub daily_capacity: u32,
    /// Orders allocated today.
    pub current_load: u32,
    /// Pick and pack hours.
    pub handling_hours: u32,
    /// Carrier collection, minutes after midnight UTC.
    pub cutoff_minute_utc: u32,
    /// Methods offered.
    pub methods: Vec<MethodOffer>,
    /// Takes orders.
    pub active: bool,
}

/// One line of an order to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// What can go wrong, in fulfillment's words.
#[derive(Debug, thiserror::Error)]
pub enum FulfillmentError {
    /// The request is malformed.
    #[error(transparent)]
    Invalid(#[from] ApiError),
    /// No center can ship the order; the reasons say why.
    #[error(transparent)]
    NoPlan(#[from] routing::NoPlan),
    /// No such center.
    #[error("fulfillment center {0} not found")]
    UnknownCenter(String),
    /// No such quote.
    #[error("quote {0} not found")]
    UnknownQuote(String),
    /// The quote's time is up.
    #[error("quote {0} expired at {1}")]
    QuoteExpired(String, String),
    /// No such shipment.
    #[error("shipment {0} not found")]
    UnknownShipment(String),
    /// A carrier payload that cannot be read.
    #[error(transparent)]
    Carrier(#[from] carriers::CarrierError),
    /// Tax or customs could not be computed.
    #[error(transparent)]
    Tax(#[from] tax::TaxError),
    /// Money arithmetic failed (mixed currencies, overflow).
    #[error("money: {0}")]
    Money(#[from] oms_platform::money::MoneyError),
    /// inventory-svc answered with an error.
    #[error("inventory: {0}")]
    Inventory(tonic::Status),
    /// An event could not be built.
    #[error("event: {0}")]
    Event(#[from] oms_platform::bus::BusError),
    /// A concurrent change kept winning; the caller may retry.
    #[error("{0}")]
    Conflict(String),
    /// The shipment is delivered, cancelled or a return: no courier can take it.
    #[error("shipment {0} cannot take a courier: {1}")]
    NotDispatchable(String, String),
    /// Stored data does not decode.
    #[error("stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl From<FulfillmentError> for ApiError {
    fn from(error: FulfillmentError) -> Self {
        match error {
            FulfillmentError::Invalid(api) => api,
            FulfillmentError::NoPlan(no_plan) => ApiError::FailedPrecondition {
                message: no_plan.to_string(),
                violations: no_plan
                    .reasons
                    .iter()
                    .map(|reason| PreconditionViolation {
                        kind: "NO_FULFILLMENT_PLAN".into(),
                        subject: reason.split(':').next().unwrap_or_default().to_owned(),
                        description: reason.clone(),
                    })
                    .collect(),
            },
            FulfillmentError::UnknownCenter(id) => {
                ApiError::NotFound(format!("fulfillment center {id}"))
            }
            FulfillmentError::UnknownQuote(id) => ApiError::NotFound(format!("quote {id}")),
            FulfillmentError::UnknownShipment(id) => ApiError::NotFound(format!("shipment {id}")),
            error @ FulfillmentError::QuoteExpired(..) => ApiError::FailedPrecondition {
                message: error.to_string(),
                violations: vec![PreconditionViolation {
                    kind: "QUOTE_EXPIRED".into(),
                    subject: "quote".into(),
                    description: error.to_string(),
                }],
            },
            FulfillmentError::Carrier(error) => ApiError::invalid("payload", error.to_string()),
            FulfillmentError::Tax(error) => ApiError::FailedPrecondition {
                message: error.to_string(),
                violations: Vec::new(),
            },
            FulfillmentError::Money(error) => ApiError::invalid("currency_code", error.to_string()),
            FulfillmentError::Inventory(status) => match status.code() {
                tonic::Code::NotFound => {
                    ApiError::NotFound(status.message().trim_end_matches(" not found").to_owned())
                }
                tonic::Code::InvalidArgument => ApiError::invalid("lines", status.message()),
                _ => ApiError::Unavailable(format!("inventory-svc: {}", status.message())),
            },
            FulfillmentError::Conflict(message) => ApiError::Aborted(message),
            error @ FulfillmentError::NotDispatchable(..) => ApiError::FailedPrecondition {
                message: error.to_string(),
                violations: vec![PreconditionViolation {
                    kind: "NOT_DISPATCHABLE".into(),
                    subject: "shipment_id".into(),
                    description: error.to_string(),
                }],
            },
            FulfillmentError::Db(db) if oms_platform::db::is_unique_violation(&db) => {
                ApiError::Aborted("a concurrent request changed the same data; retry".into())
            }
            error @ (FulfillmentError::Event(_)
            | FulfillmentError::Corrupt(_)
            | FulfillmentError::Db(_)) => ApiError::internal(error),
        }
    }
}

/// Builders shared by the domain tests.
#[cfg(test)]
pub mod testkit {
    use super::*;
    use chrono::{DateTime, Utc};
    use oms_platform::money::Currency;

    /// A fixed "now": 2026-11-25 09:00 UTC, before a 16:00 cut-off.
    pub fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn eur(amount: &str) -> Money {
        Money::new(Currency::parse("EUR").unwrap(), amount.parse().unwrap())
    }

    /// A center with capacity 100, `load` used, standard / express / same-day (60 km) offers.
    pub fn center(id: &str, lat: f64, lng: f64, load: u32) -> Center {
        Center {
            center_id: id.into(),
            name: id.into(),
            point: GeoPoint { lat, lng },
            country_code: "DE".into(),
            region: String::new(),
            daily_capacity: 100,
            current_load: load,
            handling_hours: 2,
            cutoff_minute_utc: 16 * 60,
            methods: vec![
                MethodOffer {
                    method: Method::Standard,
                    carrier: "parcelnet".into(),
                    base_hours: 24,
                    per_100km_hours: 2.0,
                    max_km: 0.0,
                    base_price: eur("4.90"),
                },
                MethodOffer {
                    method: Method::Express,
                    carrier: "swiftship".into(),
                    base_hours: 10,
                    per_100km_hours: 1.0,
                    max_km: 0.0,
                    base_price: eur("12.90"),
                },
                MethodOffer {
                    method: Method::SameDay,
                    carrier: "swiftship".into(),
                    base_hours: 2,
                    per_100km_hours: 0.5,
                    max_km: 60.0,
                    base_price: eur("19.90"),
                },
            ],
            active: true,
        }
    }

    /// A line.
    pub fn line(sku: &str, quantity: i64) -> Line {
        Line {
            sku: sku.into(),
            quantity,
        }
    }

    /// Stock from (sku, center, units).
    pub fn stock(entries: &[(&str, &str, i64)]) -> routing::Stock {
        entries
            .iter()
            .map(|(s, c, q)| ((s.to_string(), c.to_string()), *q))
            .collect()
    }
}
