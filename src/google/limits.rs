//! Outbound rate limits for Google calls: one governor limiter keyed by user and one for
//! the whole deployment (this instance's share of it), shaped so that no sliding 60 s window ever holds more calls than
//! the configured per-minute quota (Google counts in sliding windows).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;
use uuid::Uuid;

use crate::domain::schedule::share_of;
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

/// The per-user and global limiters every Google call waits on, for this instance's share
/// of the fleet's quotas: each of `instances` live instances takes `1/instances` of both
/// (`domain::schedule::share_of`). When the number of instances changes, the limiters are
/// rebuilt with the new shares (their history is lost: for a moment after a change an
/// instance may start from a full burst).
pub struct GoogleLimits {
    per_user: NonZeroU32,
    global: NonZeroU32,
    current: RwLock<Arc<Shares>>,
}

/// The limiters of one share.
struct Shares {
    instances: u32,
    per_user: DefaultKeyedRateLimiter<Uuid>,
    global: DefaultDirectRateLimiter,
}

impl Shares {
    fn new(per_user: NonZeroU32, global: NonZeroU32, instances: u32) -> Self {
        let share = |total: NonZeroU32| NonZeroU32::new(share_of(total.get(), instances)).expect("a share is ≥ 1");
        Self {
            instances,
            per_user: RateLimiter::keyed(sliding_window_quota(share(per_user))),
            global: RateLimiter::direct(sliding_window_quota(share(global))),
        }
    }
}

/// This instance's share of the quotas, as reported to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Live instances the quotas are divided among.
    pub instances: u32,
    /// Google calls per user per minute this instance may make.
    pub user_calls_per_minute: u32,
    /// Google calls per minute this instance may make.
    pub calls_per_minute: u32,
}

impl GoogleLimits {
    /// Limits of `per_user` calls per minute per user and `global` per minute in all, for
    /// the whole fleet (one instance until told otherwise).
    pub fn new(per_user: NonZeroU32, global: NonZeroU32) -> Self {
        Self {
            per_user,
            global,
            current: RwLock::new(Arc::new(Shares::new(per_user, global, 1))),
        }
    }

    /// Divides the quotas among `instances` live instances (this one included).
    pub fn set_instances(&self, instances: u32) {
        let instances = instances.max(1);
        if self.current.read().instances == instances {
            return;
        }
        tracing::info!(instances, "live instances changed: Google quotas divided again");
        *self.current.write() = Arc::new(Shares::new(self.per_user, self.global, instances));
    }

    /// This instance's share now.
    pub fn share(&self) -> Share {
        let instances = self.current.read().instances;
        Share {
            instances,
            user_calls_per_minute: share_of(self.per_user.get(), instances),
            calls_per_minute: share_of(self.global.get(), instances),
        }
    }

    /// Waits until `user` may make one more call.
    pub async fn admit(&self, user: UserId) {
        let shares = Arc::clone(&self.current.read());
        shares.per_user.until_key_ready(&user.0).await;
        shares.global.until_ready().await;
    }

    /// Forgets users without calls for a while (the per-user limiter keeps a cell per user
    /// it has seen).
    pub fn shrink(&self) {
        let shares = Arc::clone(&self.current.read());
        shares.per_user.retain_recent();
        shares.per_user.shrink_to_fit();
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
