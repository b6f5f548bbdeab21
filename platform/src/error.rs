//! The one error type every service's API returns, and its one mapping to `tonic::Status`.
//!
//! Services describe failures in their own domain words (`OutOfStock { sku, short_by }`) and
//! convert them into an [`ApiError`]; this module alone decides the gRPC code, the human message
//! and the machine-readable details (google.rpc `BadRequest`, `PreconditionFailure`,
//! `RetryInfo`). Internal causes are logged here and never sent to the caller.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `lines[2].quantity`.
    pub field: String,
    /// What is wrong with it, for a human.
    pub description: String,
}

/// One precondition that did not hold, e.g. a line that fell short of stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// Machine-readable kind, e.g. `OUT_OF_STOCK`.
    pub kind: String,
    /// What it is about, e.g. `sku/SKU-1/location/fc-berlin`.
    pub subject: String,
    /// For a human: `short by 3`.
    pub description: String,
}

/// What went wrong, in the terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed; nothing was changed.
    #[error("invalid request: {}", describe_fields(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The thing asked for does not exist (or is not the caller's to see).
    #[error("{0} not found")]
    NotFound(String),
    /// The request is valid but the system's state does not allow it (out of stock, …).
    #[error("{message}")]
    FailedPrecondition {
        /// Summary for a human.
        message: String,
        /// Each precondition that failed.
        violations: Vec<PreconditionViolation>,
    },
    /// The thing being created exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A conflicting concurrent change; the caller may retry.
    #[error("{0}")]
    Aborted(String),
    /// A quota or rate limit was hit.
    #[error("{message}")]
    ResourceExhausted {
        /// Which limit.
        message: String,
        /// When a retry may succeed.
        retry_after: Option<Duration>,
    },
    /// No or bad credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Credentials fine, but not allowed.
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency is down; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The deadline passed before the work finished.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// A bug or an infrastructure failure; details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// What to tell our caller when a peer service answered `status`: the caller's own
    /// mistakes (bad fields, missing things, failed preconditions) pass through with their
    /// details; the peer's trouble becomes `UNAVAILABLE` (retryable) or an internal error.
    pub fn from_peer(peer: &str, status: &Status) -> Self {
        let details = status.get_error_details();
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => {
                let violations: Vec<FieldViolation> = details
                    .bad_request()
                    .map(|bad| {
                        bad.field_violations
                            .iter()
                            .map(|v| FieldViolation {
                                field: v.field.clone(),
                                description: v.description.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if violations.is_empty() {
                    Self::invalid(peer, message)
                } else {
                    Self::InvalidArgument(violations)
                }
            }
            Code::NotFound => Self::NotFound(message.trim_end_matches(" not found").to_owned()),
            Code::FailedPrecondition => Self::FailedPrecondition {
                message,
                violations: details
                    .precondition_failure()
                    .map(|failure| {
                        failure
                            .violations
                            .iter()
                            .map(|v| PreconditionViolation {
                                kind: v.r#type.clone(),
                                subject: v.subject.clone(),
                                description: v.description.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Code::AlreadyExists => {
                Self::AlreadyExists(message.trim_end_matches(" already exists").to_owned())
            }
            Code::Aborted => Self::Aborted(message),
            Code::DeadlineExceeded => Self::DeadlineExceeded(format!("{peer}: {message}")),
            Code::Unavailable | Code::ResourceExhausted | Code::Cancelled | Code::Unknown => {
                Self::Unavailable(format!("{peer} is unavailable: {message}"))
            }
            _ => Self::internal(std::io::Error::other(format!("{peer} answered {status}"))),
        }
    }

    /// Wraps an infrastructure error whose details must not reach the caller.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

fn describe_fields(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        match error {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::FailedPrecondition { violations, .. } => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_precondition_failure_violation(v.kind, v.subject, v.description);
                }
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            ApiError::AlreadyExists(_) => Status::already_exists(message),
            ApiError::Aborted(_) => Status::aborted(message),
            ApiError::ResourceExhausted { retry_after, .. } => {
                let details = ErrorDetails::with_retry_info(retry_after);
                let mut status =
                    Status::with_error_details(Code::ResourceExhausted, message, details);
                if let Some(after) = retry_after {
                    // Plain metadata too: gRPC-web clients rarely decode status details.
                    let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
                    if let Ok(value) = seconds.to_string().parse() {
                        status.metadata_mut().insert("retry-after", value);
                    }
                }
                status
            }
            ApiError::Unauthenticated(_) => Status::unauthenticated(message),
            ApiError::PermissionDenied(_) => Status::permission_denied(message),
            ApiError::Unavailable(_) => Status::unavailable(message),
            ApiError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            ApiError::Internal(source) => {
                tracing::error!(error = %source, debug = ?source, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// Longest identifier accepted anywhere (SKU, location, order, user).
pub const MAX_ID_LEN: usize = 64;

/// Whether `code` has the shape of an ISO 3166-1 alpha-2 country code.
fn is_country_code(code: &str) -> bool {
    code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())
}

/// Collects every invalid field of a request so the caller learns all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation when `bad` holds.
    pub fn check(&mut self, bad: bool, field: impl Into<String>, description: impl Into<String>) {
        if bad {
            self.add(field, description);
        }
    }

    /// Checks an identifier (SKU, location, order id, …): required, at most 64 bytes, and
    /// usable as a subject token (letters, digits, `-`, `_`, `:`).
    pub fn id(&mut self, field: impl Into<String>, value: &str) {
        if value.is_empty() {
            self.add(field, "required");
        } else if value.len() > MAX_ID_LEN {
            self.add(field, format!("at most {MAX_ID_LEN} characters"));
        } else if !crate::bus::is_subject_token(value) {
            self.add(field, "only letters, digits, '-', '_' and ':' are allowed");
        }
    }

    /// Checks free text: at most `max` bytes (and required when `required`).
    pub fn text(&mut self, field: impl Into<String>, value: &str, max: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.add(field, "required");
        } else if value.len() > max {
            self.add(field, format!("at most {max} bytes"));
        }
    }

    /// Checks a WGS84 point: finite, lat in [-90, 90], lng in [-180, 180].
    pub fn point(&mut self, field: &str, point: &oms_proto::common::v1::GeoPoint) {
        if !point.lat.is_finite() || !(-90.0..=90.0).contains(&point.lat) {
            self.add(format!("{field}.lat"), "must be between -90 and 90");
        }
        if !point.lng.is_finite() || !(-180.0..=180.0).contains(&point.lng) {
            self.add(format!("{field}.lng"), "must be between -180 and 180");
        }
    }

    /// Checks an ISO 3166-1 alpha-2 country code ("US").
    pub fn country(&mut self, field: impl Into<String>, code: &str) {
        if !is_country_code(code) {
            self.add(field, "ISO 3166-1 alpha-2, upper case");
        }
    }

    /// Checks an optional ISO 3166-2 subdivision of `country` ("US-CA"); empty passes.
    pub fn region(&mut self, field: impl Into<String>, region: &str, country: &str) {
        let valid = region.is_empty()
            || region.split_once('-').is_some_and(|(prefix, subdivision)| {
                prefix == country
                    && (1..=3).contains(&subdivision.len())
                    && subdivision.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !valid {
            self.add(field, "ISO 3166-2 of the address's country, e.g. US-CA");
        }
    }

    /// Checks a postal address: country, region, sizes, and the point when there is one.
    pub fn address(&mut self, field: &str, address: &oms_proto::common::v1::Address) {
        self.country(format!("{field}.country_code"), &address.country_code);
        self.region(
            format!("{field}.region"),
            &address.region,
            &address.country_code,
        );
        self.text(format!("{field}.recipient"), &address.recipient, 200, false);
        self.text(format!("{field}.city"), &address.city, 100, false);
        self.text(
            format!("{field}.postal_code"),
            &address.postal_code,
            20,
            false,
        );
        self.text(format!("{field}.phone"), &address.phone, 32, false);
        if address.lines.len() > 4 || address.lines.iter().any(|line| line.len() > 200) {
            self.add(format!("{field}.lines"), "at most 4 lines of 200 bytes");
        }
        if let Some(point) = &address.location {
            self.point(&format!("{field}.location"), point);
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, the `InvalidArgument` error otherwise.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_lists_every_field_and_carries_bad_request_details() {
        let mut violations = Violations::new();
        violations.add("lines[0].quantity", "must be at least 1");
        violations.check(true, "currency_code", "unknown currency");
        violations.check(false, "never", "recorded");
        let status = Status::from(violations.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("lines[0].quantity: must be at least 1")
        );
        assert!(status.message().contains("currency_code: unknown currency"));
        let details = status.get_error_details();
        let bad_request = details.bad_request().unwrap();
        assert_eq!(bad_request.field_violations.len(), 2);
    }

    #[test]
    fn ids_and_texts_are_checked() {
        let mut v = Violations::new();
        v.id("ok", "SKU-1:blue_2");
        assert!(v.is_empty());
        v.id("empty", "");
        v.id("dotted", "a.b");
        v.id("long", &"x".repeat(65));
        v.text("reason", "  ", 10, true);
        v.text("note", &"x".repeat(11), 10, false);
        v.text("fine", "", 10, false);
        let Err(ApiError::InvalidArgument(violations)) = v.into_result() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["empty", "dotted", "long", "reason", "note"]);
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let cause = std::io::Error::other("password=hunter2 at db.internal:5432");
        let status = Status::from(ApiError::internal(cause));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn resource_exhausted_carries_a_retry_after_hint() {
        let status = Status::from(ApiError::ResourceExhausted {
            message: "rate limit".into(),
            retry_after: Some(Duration::from_millis(1500)),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
        assert!(status.get_error_details().retry_info().is_some());
    }

    #[test]
    fn failed_precondition_names_each_violation() {
        let status = Status::from(ApiError::FailedPrecondition {
            message: "out of stock".into(),
            violations: vec![PreconditionViolation {
                kind: "OUT_OF_STOCK".into(),
                subject: "sku/A/location/L".into(),
                description: "short by 3".into(),
            }],
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        let failure = status
            .get_error_details()
            .precondition_failure()
            .cloned()
            .unwrap();
        assert_eq!(failure.violations[0].subject, "sku/A/location/L");
    }
}
