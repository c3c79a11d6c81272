//! Outbound rate limits for Google calls: one governor limiter keyed by user and one for
//! the whole deployment, shaped so that no sliding 60 s window ever holds more calls than
//! the configured per-minute quota (Google counts in sliding windows).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::domain::UserId;

/// A GCRA quota that never lets more than `per_minute` calls into any 60 s window: a burst
/// of a tenth of the quota, then the rest spread evenly (burst + refills over 60 s ≤ quota).
pub fn sliding_window_quota(per_minute: NonZeroU32) -> Quota {
    let total = per_minute.get();
    let burst = (total / 10).max(1);
    let refills = (total - burst).max(1);
    let period = Duration::from_secs(60) / refills;
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("burst ≥ 1"))
}

/// The per-user and global limiters every Google call waits on.
pub struct GoogleLimits {
    per_user: DefaultKeyedRateLimiter<Uuid>,
    global: DefaultDirectRateLimiter,
}

impl GoogleLimits {
    /// Limits of `per_user` calls per minute per user and `global` per minute in all.
    pub fn new(per_user: NonZeroU32, global: NonZeroU32) -> Self {
        Self {
            per_user: RateLimiter::keyed(sliding_window_quota(per_user)),
            global: RateLimiter::direct(sliding_window_quota(global)),
        }
    }

    /// Waits until `user` may make one more call.
    pub async fn admit(&self, user: UserId) {
        self.per_user.until_key_ready(&user.0).await;
        self.global.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts how many of `n` back-to-back checks a fresh limiter admits at one instant.
    fn burst_of(quota: Quota) -> u32 {
        let limiter = RateLimiter::direct(quota);
        (0..10_000).take_while(|_| limiter.check().is_ok()).count() as u32
    }

    #[test]
    fn burst_plus_a_minute_of_refills_never_exceeds_the_quota() {
        for per_minute in [2u32, 10, 120, 600, 10_000] {
            let quota = sliding_window_quota(NonZeroU32::new(per_minute).unwrap());
            let burst = burst_of(quota);
            let refills_per_minute =
                (Duration::from_secs(60).as_secs_f64() / quota.replenish_interval().as_secs_f64()).floor() as u32;
            assert!(burst >= 1);
            assert!(
                burst + refills_per_minute <= per_minute,
                "{per_minute}/min: burst {burst} + {refills_per_minute} refills"
            );
            assert!(
                burst + refills_per_minute >= per_minute * 9 / 10,
                "{per_minute}/min wastes quota"
            );
        }
    }
}
