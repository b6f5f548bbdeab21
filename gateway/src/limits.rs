//! Per-user token buckets (governor) with per-method costs, and a global cap on calls in
//! flight that sheds load instead of queueing it. Refusals are `RESOURCE_EXHAUSTED` with a
//! retry-after hint.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use oms_platform::error::ApiError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a call costs from the caller's bucket: placing an order or opening the stream costs
/// more than a read.
pub fn cost(method: &str) -> u32 {
    match method {
        "PlaceOrder" | "Subscribe" | "RequestReturn" => 5,
        "CancelOrder" | "SyncCart" | "QuoteDelivery" => 2,
        _ => 1,
    }
}

/// The gateway's limits.
pub struct Limits {
    per_user: DefaultKeyedRateLimiter<String>,
    in_flight: Arc<Semaphore>,
    burst: u32,
}

impl Limits {
    /// `per_second` sustained units per user with `burst` at once; `max_in_flight` calls in all.
    pub fn new(per_second: u32, burst: u32, max_in_flight: usize) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst_size = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            per_user: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst_size)),
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            burst: burst.max(1),
        }
    }

    /// Takes `method`'s cost from `user`'s bucket, or says when to come back.
    pub fn charge(&self, user: &str, method: &str) -> Result<(), ApiError> {
        let units = NonZeroU32::new(cost(method).min(self.burst)).unwrap_or(NonZeroU32::MIN);
        match self.per_user.check_key_n(&user.to_owned(), units) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ApiError::ResourceExhausted {
                message: format!("rate limit: too many calls from {user}; slow down"),
                retry_after: Some(
                    not_until
                        .wait_time_from(DefaultClock::default().now())
                        .max(Duration::from_millis(1)),
                ),
            }),
            Err(_) => Err(ApiError::ResourceExhausted {
                message: "this call costs more than the whole rate allowance".into(),
                retry_after: None,
            }),
        }
    }

    /// A slot for one call in flight, or an immediate refusal when the gateway is full.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::ResourceExhausted {
                message: "the gateway is at capacity; retry shortly".into(),
                retry_after: Some(Duration::from_millis(200)),
            })
    }

    /// Forgets buckets of users not seen for a while (memory stays bounded).
    pub fn forget_idle(&self) {
        self.per_user.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_flooding_is_throttled_while_another_keeps_going() {
        let limits = Limits::new(10, 20, 100);
        let mut refused = 0;
        for _ in 0..50 {
            if limits.charge("flood", "GetOrder").is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 25, "{refused}");
        assert!(limits.charge("calm", "GetOrder").is_ok());
        let Err(ApiError::ResourceExhausted {
            retry_after: Some(after),
            ..
        }) = limits.charge("flood", "PlaceOrder")
        else {
            panic!("expected a refusal with a retry hint")
        };
        assert!(after <= Duration::from_secs(1));
    }

    #[test]
    fn the_gateway_sheds_calls_beyond_its_capacity() {
        let limits = Limits::new(1000, 1000, 2);
        let first = limits.admit().unwrap();
        let _second = limits.admit().unwrap();
        assert!(limits.admit().is_err());
        drop(first);
        assert!(limits.admit().is_ok());
    }
}
