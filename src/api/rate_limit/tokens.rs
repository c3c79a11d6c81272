//! What the service recently learnt about API tokens, by SHA-256 digest: which user a token
//! belonged to (a *hint* for choosing the rate-limit bucket, never proof: every request is
//! still authenticated against the database), and which tokens matched no user (a negative
//! cache: a repeated unknown token is refused without a query). Both maps are bounded and
//! their entries expire; a full map first drops expired entries, then forgets a quarter of
//! the rest, so inserting stays cheap under a flood.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A token's SHA-256 (the database stores it hex-encoded).
pub type TokenDigest = [u8; 32];

/// How long a token that matched no user is refused without a query.
pub const UNKNOWN_TOKEN_TTL: Duration = Duration::from_secs(30);
/// How long a token is taken to belong to the user it last matched, for choosing a bucket.
pub const KNOWN_TOKEN_TTL: Duration = Duration::from_secs(600);
/// The most tokens each of the two maps holds.
pub const MAX_CACHED_TOKENS: usize = 10_000;

/// Recently seen API tokens; see the module docs.
pub struct TokenCache {
    known: Mutex<TtlMap<Uuid>>,
    unknown: Mutex<TtlMap<()>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(MAX_CACHED_TOKENS)
    }
}

impl TokenCache {
    /// Empty maps of at most `max_tokens` entries each.
    pub fn new(max_tokens: usize) -> Self {
        Self {
            known: Mutex::new(TtlMap::new(KNOWN_TOKEN_TTL, max_tokens)),
            unknown: Mutex::new(TtlMap::new(UNKNOWN_TOKEN_TTL, max_tokens)),
        }
    }

    /// The user this token last matched, if that was recent.
    pub fn known_user(&self, token: &TokenDigest, now: Instant) -> Option<Uuid> {
        lock(&self.known).get(token, now)
    }

    /// Whether this token recently matched no user.
    pub fn is_unknown(&self, token: &TokenDigest, now: Instant) -> bool {
        lock(&self.unknown).get(token, now).is_some()
    }

    /// Notes that the token belongs to `user`.
    pub fn remember_user(&self, token: TokenDigest, user: Uuid, now: Instant) {
        lock(&self.unknown).remove(&token);
        lock(&self.known).insert(token, user, now);
    }

    /// Notes that the token matches no user (any more).
    pub fn remember_unknown(&self, token: TokenDigest, now: Instant) {
        lock(&self.known).remove(&token);
        lock(&self.unknown).insert(token, (), now);
    }

    /// Drops expired entries.
    pub fn prune(&self, now: Instant) {
        lock(&self.known).prune(now);
        lock(&self.unknown).prune(now);
    }

    /// How many unknown tokens are remembered.
    pub fn unknown_len(&self) -> usize {
        lock(&self.unknown).entries.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update leaves the map whole, so a panic elsewhere cannot poison it meaningfully.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Entries that expire `ttl` after insertion; never more than `cap`.
struct TtlMap<V> {
    entries: HashMap<TokenDigest, (V, Instant)>,
    ttl: Duration,
    cap: usize,
}

impl<V: Copy> TtlMap<V> {
    fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            cap: cap.max(1),
        }
    }

    fn get(&self, key: &TokenDigest, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| *v)
    }

    fn insert(&mut self, key: TokenDigest, value: V, now: Instant) {
        if self.entries.len() >= self.cap && !self.entries.contains_key(&key) {
            self.prune(now);
            if self.entries.len() >= self.cap {
                // Still full of live entries: forget some (the map's order is arbitrary), so
                // the next quarter of inserts need no scan.
                let mut forget = self.cap / 4 + 1;
                self.entries.retain(|_, _| {
                    let keep = forget == 0;
                    forget = forget.saturating_sub(1);
                    keep
                });
            }
        }
        self.entries.insert(key, (value, now + self.ttl));
    }

    fn remove(&mut self, key: &TokenDigest) {
        self.entries.remove(key);
    }

    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, (_, expires)| *expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u32) -> TokenDigest {
        let mut d = [0u8; 32];
        d[..4].copy_from_slice(&n.to_be_bytes());
        d
    }

    #[test]
    fn an_unknown_token_is_remembered_until_its_ttl_passes() {
        let cache = TokenCache::new(10);
        let t0 = Instant::now();
        cache.remember_unknown(digest(1), t0);
        assert!(cache.is_unknown(&digest(1), t0 + UNKNOWN_TOKEN_TTL - Duration::from_secs(1)));
        assert!(!cache.is_unknown(&digest(1), t0 + UNKNOWN_TOKEN_TTL));
        assert!(!cache.is_unknown(&digest(2), t0));
    }

    #[test]
    fn a_token_is_either_known_or_unknown_never_both() {
        let cache = TokenCache::new(10);
        let (t0, user) = (Instant::now(), Uuid::new_v4());
        cache.remember_user(digest(1), user, t0);
        assert_eq!(cache.known_user(&digest(1), t0), Some(user));
        cache.remember_unknown(digest(1), t0);
        assert_eq!(cache.known_user(&digest(1), t0), None, "a revoked token loses its hint");
        assert!(cache.is_unknown(&digest(1), t0));
        cache.remember_user(digest(1), user, t0);
        assert!(!cache.is_unknown(&digest(1), t0));
    }

    #[test]
    fn the_maps_never_pass_their_bound_and_expired_entries_go_first() {
        let cache = TokenCache::new(100);
        let t0 = Instant::now();
        for n in 0..100 {
            cache.remember_unknown(digest(n), t0);
        }
        let later = t0 + UNKNOWN_TOKEN_TTL;
        cache.remember_unknown(digest(1_000), later);
        assert_eq!(cache.unknown_len(), 1, "the expired entries made room");
        for n in 0..10_000 {
            cache.remember_unknown(digest(n), later);
            assert!(cache.unknown_len() <= 100);
        }
        assert!(cache.is_unknown(&digest(9_999), later), "the newest entry is kept");
        cache.prune(later + UNKNOWN_TOKEN_TTL);
        assert_eq!(cache.unknown_len(), 0);
    }
}
