//! governor's keyed state, with a hard cap on the number of keys. governor's own stores grow
//! with every new key until `retain_recent` runs; here, once `max_keys` keys are held, a key
//! that is not among them is measured against one shared overflow bucket instead of getting
//! an entry. Memory stays bounded whatever the traffic, and a flood of fresh keys throttles
//! itself (and, until idle keys are evicted, other newcomers) rather than growing the map.
//!
//! The map is split into shards, each behind its own mutex, so concurrent requests for
//! different keys rarely wait for each other; a measurement holds one shard's lock for a
//! lookup and a little arithmetic.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;

const SHARDS: usize = 16;

/// A keyed rate-limiter state that never holds more than `max_keys` keys.
pub struct BoundedStore<K> {
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    hasher: RandomState,
    len: AtomicUsize,
    max_keys: usize,
    /// The theoretical arrival time shared by the keys refused an entry (0 = fresh).
    overflow: AtomicU64,
}

impl<K> BoundedStore<K> {
    /// An empty store for at most `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            max_keys: max_keys.max(1),
            overflow: AtomicU64::new(0),
        }
    }

    /// Takes one of the `max_keys` places, if one is free.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_keys).then_some(n + 1)
            })
            .is_ok()
    }

    /// The overflow bucket's measurement: the same compare-and-swap loop governor uses for
    /// its own atomic states.
    fn measure_overflow<T, E>(&self, f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>) -> Result<T, E> {
        let mut prev = self.overflow.load(Ordering::Acquire);
        loop {
            let (out, next) = f(stored(prev))?;
            match self
                .overflow
                .compare_exchange_weak(prev, next.as_u64(), Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok(out),
                Err(now) => prev = now,
            }
        }
    }
}

impl<K: Hash> BoundedStore<K> {
    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, u64>> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        // A panic while holding a shard cannot leave a half-written u64 behind.
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// governor's convention: 0 means "never measured".
fn stored(tat: u64) -> Option<Nanos> {
    (tat != 0).then(|| Nanos::new(tat))
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key);
        if let Some(tat) = shard.get_mut(key) {
            let (out, next) = f(stored(*tat))?;
            *tat = next.as_u64();
            return Ok(out);
        }
        if !self.reserve() {
            drop(shard);
            return self.measure_overflow(f);
        }
        match f(None) {
            Ok((out, next)) => {
                shard.insert(key.clone(), next.as_u64());
                Ok(out)
            }
            Err(e) => {
                self.len.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.len();
            shard.retain(|_, tat| *tat > drop_below.as_u64());
            self.len.fetch_sub(before - shard.len(), Ordering::AcqRel);
        }
    }

    fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;
    use governor::middleware::NoOpMiddleware;
    use governor::{Quota, RateLimiter};

    use super::*;

    type TestLimiter = RateLimiter<u32, BoundedStore<u32>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

    fn limiter(per_minute: u32, max_keys: usize) -> (TestLimiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap());
        (
            RateLimiter::new(quota, BoundedStore::new(max_keys), clock.clone()),
            clock,
        )
    }

    #[test]
    fn each_key_has_its_own_bucket_below_the_cap() {
        let (limiter, _) = limiter(2, 10);
        assert!(limiter.check_key(&1).is_ok() && limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_err());
        assert!(limiter.check_key(&2).is_ok());
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn past_the_cap_new_keys_share_one_overflow_bucket_and_the_map_does_not_grow() {
        let (limiter, _) = limiter(3, 4);
        for key in 0..4 {
            assert!(limiter.check_key(&key).is_ok());
        }
        let passed = (100..10_000).filter(|key| limiter.check_key(key).is_ok()).count();
        assert_eq!(passed, 3, "the overflow bucket holds one burst");
        assert_eq!(limiter.len(), 4);
        assert!(
            limiter.check_key(&0).is_ok(),
            "keys that have a place keep their own bucket"
        );
    }

    #[test]
    fn idle_keys_are_evicted_and_their_places_reused() {
        let (limiter, clock) = limiter(60, 4);
        for key in 0..4 {
            assert!(limiter.check_key(&key).is_ok());
        }
        clock.advance(Duration::from_millis(500));
        limiter.retain_recent();
        assert_eq!(limiter.len(), 4, "a bucket that is still refilling is kept");
        assert!(limiter.check_key(&3).is_ok());
        clock.advance(Duration::from_secs(3));
        limiter.retain_recent();
        assert_eq!(limiter.len(), 0, "full buckets are indistinguishable from fresh ones");
        assert!(limiter.check_key(&7).is_ok());
        assert_eq!(limiter.len(), 1);
    }
}
