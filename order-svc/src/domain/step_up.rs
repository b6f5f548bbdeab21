//! The high-value step-up: the buyer's device proves a biometric check to the identity
//! provider, which signs an assertion for this order; order-svc checks the signature.
//!
//! The assertion is `<expires_unix>.<hex HMAC-SHA256(secret, "<order_id>:<user_id>:<expires_unix>")>`.
//! An identity provider with asymmetric keys replaces this module behind the same function.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Why an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepUpError {
    /// Not of the expected shape.
    #[error("the verification token is malformed")]
    Malformed,
    /// Past its expiry.
    #[error("the verification token has expired")]
    Expired,
    /// Signed for another order or user, or not by our identity provider.
    #[error("the verification token does not verify this order")]
    BadSignature,
}

fn mac(secret: &[u8], order_id: &str, user_id: &str, expires: i64) -> Hmac<Sha256> {
    // HMAC takes keys of any length; the error arm is unreachable but handled without panicking.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    mac.update(format!("{order_id}:{user_id}:{expires}").as_bytes());
    mac
}

/// Signs an assertion (what the identity provider does; `oms token` and tests use it).
pub fn sign(secret: &[u8], order_id: &str, user_id: &str, expires_unix: i64) -> String {
    let tag = mac(secret, order_id, user_id, expires_unix)
        .finalize()
        .into_bytes();
    format!("{expires_unix}.{}", hex::encode(tag))
}

/// Checks an assertion for this order and buyer at `now_unix`.
pub fn verify(
    secret: &[u8],
    token: &str,
    order_id: &str,
    user_id: &str,
    now_unix: i64,
) -> Result<(), StepUpError> {
    let (expires, tag) = token.split_once('.').ok_or(StepUpError::Malformed)?;
    let expires: i64 = expires.parse().map_err(|_| StepUpError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| StepUpError::Malformed)?;
    if expires < now_unix {
        return Err(StepUpError::Expired);
    }
    // verify_slice compares in constant time.
    mac(secret, order_id, user_id, expires)
        .verify_slice(&tag)
        .map_err(|_| StepUpError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"step-up-test-secret";

    #[test]
    fn a_signed_assertion_verifies_only_its_order_and_user_until_it_expires() {
        let token = sign(SECRET, "o1", "ada", 1_000);
        assert_eq!(verify(SECRET, &token, "o1", "ada", 999), Ok(()));
        assert_eq!(
            verify(SECRET, &token, "o2", "ada", 999),
            Err(StepUpError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &token, "o1", "bob", 999),
            Err(StepUpError::BadSignature)
        );
        assert_eq!(
            verify(b"other", &token, "o1", "ada", 999),
            Err(StepUpError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, &token, "o1", "ada", 1_001),
            Err(StepUpError::Expired)
        );
        assert_eq!(
            verify(SECRET, "garbage", "o1", "ada", 0),
            Err(StepUpError::Malformed)
        );
        assert_eq!(
            verify(SECRET, "5.zz", "o1", "ada", 0),
            Err(StepUpError::Malformed)
        );
    }
}
