//! The biometric step-up of high-value orders, in domain terms: what a challenge is bound to,
//! how many failed answers an order survives, and the stable WebAuthn user handle of a buyer.
//! The WebAuthn ceremony itself (CBOR, COSE keys, signatures, origins, flags, counters) is
//! webauthn-rs's.

use oms_proto::order::v1 as pb;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a challenge is bound to besides the order id: the total the buyer was shown. An order
/// whose total changed since (it cannot today) would need a new challenge.
pub fn bound_total(order: &pb::Order) -> String {
    let total = order.totals.as_ref().and_then(|t| t.total.as_ref());
    total.map_or_else(String::new, |money| {
        format!("{} {}", money.amount, money.currency_code)
    })
}

/// What a failed answer leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The buyer may try again this many times.
    Retry(u32),
    /// Too many failures: the order is rejected and its stock released.
    Reject,
}

/// After `failures` failed answers, with `max_attempts` allowed in all.
pub fn after_failure(failures: u32, max_attempts: u32) -> AfterFailure {
    match max_attempts.checked_sub(failures) {
        Some(left) if left > 0 => AfterFailure::Retry(left),
        _ => AfterFailure::Reject,
    }
}

/// The WebAuthn user handle of a buyer: stable per user id (authenticators key discoverable
/// credentials by it) and not the id itself (it is stored on the device).
pub fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"oms-passkey-user:")
        .chain_update(user_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A passkey's name as the buyer gave it, or a default.
pub fn passkey_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.chars().count() > 100 {
        return Err("at most 100 characters");
    }
    Ok(if name.is_empty() {
        "passkey".to_owned()
    } else {
        name.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::{common::v1::Money, order::v1::OrderTotals};

    #[test]
    fn failures_leave_fewer_attempts_until_the_order_is_rejected() {
        assert_eq!(after_failure(1, 3), AfterFailure::Retry(2));
        assert_eq!(after_failure(2, 3), AfterFailure::Retry(1));
        assert_eq!(after_failure(3, 3), AfterFailure::Reject);
        assert_eq!(after_failure(9, 3), AfterFailure::Reject);
    }

    #[test]
    fn the_user_handle_is_stable_and_differs_per_user() {
        assert_eq!(user_handle("ada"), user_handle("ada"));
        assert_ne!(user_handle("ada"), user_handle("bob"));
    }

    #[test]
    fn the_challenge_is_bound_to_the_total_shown() {
        let order = pb::Order {
            totals: Some(OrderTotals {
                total: Some(Money {
                    currency_code: "EUR".into(),
                    amount: "2500.00".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(bound_total(&order), "2500.00 EUR");
    }

    #[test]
    fn names_are_trimmed_defaulted_and_bounded() {
        assert_eq!(passkey_name("  Pixel 9 "), Ok("Pixel 9".to_owned()));
        assert_eq!(passkey_name(""), Ok("passkey".to_owned()));
        assert!(passkey_name(&"x".repeat(101)).is_err());
    }
}
