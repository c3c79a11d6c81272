//! Inbound rate limit: a governor keyed limiter whose key is *who* is calling, so the
//! spelling of a request cannot choose its bucket. Over the limit → 429 with `Retry-After`.
//! Health checks, the docs, metrics and Google's notifications are not limited.
//!
//! The bucket of a request:
//! - the admin token → one admin bucket;
//! - a user's token → that user's bucket (`bearer`, `BEARER` and extra spaces name the same
//!   token, as the security schemes parse it);
//! - no token, a token that is not a bearer token, or a token matching no user → the client
//!   address's bucket ([`client_addr`]: the TCP peer, or the client named by a trusted proxy).
//!
//! A token is known to belong to a user only after a database lookup. A token the service
//! has not seen recently is therefore charged to its address *before* the lookup: a flood of
//! random tokens costs at most one indexed lookup per request the address's bucket admits,
//! and a repeated unknown token costs none while the negative cache ([`tokens`]) remembers
//! it. When the lookup finds the user, the request is charged to the user as well, and the
//! user is handed to the security scheme so the request costs one lookup in all.
//!
//! Memory is bounded: at most [`MAX_KEYS`] buckets ([`store`]; past that, new callers share
//! one overflow bucket), idle buckets are evicted every [`SWEEP_EVERY`] (sooner when the
//! store is half full), and the token caches hold at most [`MAX_CACHED_TOKENS`] entries each.

pub mod client_addr;
pub mod store;
pub mod tokens;

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use poem::web::headers::{authorization::Bearer, Authorization, HeaderMapExt};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use self::client_addr::{bucket_of, TrustedProxies};
use self::store::BoundedStore;
use self::tokens::{TokenCache, TokenDigest};
pub use self::tokens::{KNOWN_TOKEN_TTL, MAX_CACHED_TOKENS, UNKNOWN_TOKEN_TTL};
use super::error::ApiError;
use crate::config::{ConfigError, Settings};
use crate::state::AppState;
use crate::store::users::{self, User};
use crate::store::StoreError;

/// The most buckets the limiter keeps (≈ 100 bytes each, so about 10 MB at worst).
pub const MAX_KEYS: usize = 100_000;
/// How often buckets whose quota has fully refilled are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// The shortest pause between two sweeps when the store is half full.
const SWEEP_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Whose quota a request spends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Bucket {
    Admin,
    User(Uuid),
    Address(IpAddr),
}

/// The limiter, its token caches and its settings; clone-cheap, shared by every request
/// (it lives in the application state so the security schemes share its caches).
#[derive(Clone)]
pub struct InboundRateLimit(Arc<Inner>);

struct Inner {
    limiter: RateLimiter<Bucket, BoundedStore<Bucket>, DefaultClock>,
    tokens: TokenCache,
    proxies: TrustedProxies,
    admin: Option<TokenDigest>,
    max_keys: usize,
    lookups: AtomicU64,
    started: Instant,
    last_sweep_ms: AtomicU64,
}

/// Over the limit: whole seconds until the bucket admits a request again.
struct RetryAfter(u64);

/// A user the limiter found for this request's token; the user scheme takes it instead of
/// querying again.
#[derive(Clone)]
pub(crate) struct VerifiedUser(pub(crate) User);

impl InboundRateLimit {
    /// The limit `RATE_LIMIT_PER_MINUTE`, `TRUSTED_PROXIES` and `ADMIN_TOKEN` describe.
    pub fn new(settings: &Settings) -> std::result::Result<Self, ConfigError> {
        let proxies = TrustedProxies::parse(&settings.trusted_proxies).map_err(|problem| ConfigError {
            variable: "TRUSTED_PROXIES",
            problem,
        })?;
        Ok(Self::with_bounds(
            settings.rate_limit_per_minute,
            proxies,
            settings.admin_token(),
            MAX_KEYS,
        ))
    }

    /// `per_minute` requests per bucket, refilled evenly, with a burst of the same size; at
    /// most `max_keys` buckets.
    pub fn with_bounds(per_minute: u32, proxies: TrustedProxies, admin_token: &str, max_keys: usize) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        let limiter = RateLimiter::new(
            Quota::per_minute(n),
            BoundedStore::new(max_keys),
            DefaultClock::default(),
        );
        Self(Arc::new(Inner {
            limiter,
            tokens: TokenCache::default(),
            proxies,
            admin: (!admin_token.is_empty()).then(|| token_digest(admin_token)),
            max_keys,
            lookups: AtomicU64::new(0),
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }))
    }

    /// How many buckets are held now.
    pub fn key_count(&self) -> usize {
        self.0.limiter.len()
    }

    /// How many times a token was looked up in the database since the start.
    pub fn token_lookups(&self) -> u64 {
        self.0.lookups.load(Ordering::Relaxed)
    }

    /// How many unknown tokens the negative cache holds.
    pub fn unknown_tokens_cached(&self) -> usize {
        self.0.tokens.unknown_len()
    }

    /// Drops the buckets whose quota has fully refilled (they are the same as fresh ones)
    /// and expired token-cache entries. Runs by itself every [`SWEEP_EVERY`].
    pub fn evict_idle(&self) {
        self.0.limiter.retain_recent();
        self.0.limiter.shrink_to_fit();
        self.0.tokens.prune(Instant::now());
    }

    /// The user whose API token this is. A token that recently matched nobody is refused
    /// without a query; every other call is one indexed lookup, whose answer is remembered.
    pub async fn find_user(
        &self,
        db: &DatabaseConnection,
        token: &str,
    ) -> std::result::Result<Option<User>, StoreError> {
        let digest = token_digest(token);
        if self.0.tokens.is_unknown(&digest, Instant::now()) {
            return Ok(None);
        }
        self.0.lookups.fetch_add(1, Ordering::Relaxed);
        let found = users::find_by_token_hash(db, &hex::encode(digest)).await?;
        match &found {
            Some(user) => self.0.tokens.remember_user(digest, user.id, Instant::now()),
            None => self.0.tokens.remember_unknown(digest, Instant::now()),
        }
        Ok(found)
    }

    fn is_admin(&self, digest: &TokenDigest) -> bool {
        self.0.admin.is_some_and(|admin| bool::from(admin.ct_eq(digest)))
    }

    fn address_bucket(&self, req: &Request) -> Bucket {
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let client = if self.0.proxies.contains(peer.to_canonical()) {
            let forwarded: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            self.0.proxies.client_addr(peer, &forwarded)
        } else {
            peer.to_canonical()
        };
        Bucket::Address(bucket_of(client))
    }

    /// Spends one request of `bucket`'s quota, or says how long to wait.
    fn spend(&self, bucket: &Bucket) -> std::result::Result<(), RetryAfter> {
        self.maybe_sweep();
        self.0.limiter.check_key(bucket).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RetryAfter((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
        })
    }

    fn maybe_sweep(&self) {
        let now = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.0.last_sweep_ms.load(Ordering::Relaxed);
        if !sweep_due(now.saturating_sub(last), self.key_count(), self.0.max_keys) {
            return;
        }
        // One request sweeps; the others go on.
        if self
            .0
            .last_sweep_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.evict_idle();
        }
    }

    /// Charges the request to its bucket(s); `Err` means 429.
    async fn admit(&self, req: &mut Request) -> std::result::Result<(), RetryAfter> {
        let Some(token) = bearer_token(req) else {
            return self.spend(&self.address_bucket(req));
        };
        let digest = token_digest(&token);
        if self.is_admin(&digest) {
            return self.spend(&Bucket::Admin);
        }
        let now = Instant::now();
        if let Some(user) = self.0.tokens.known_user(&digest, now) {
            return self.spend(&Bucket::User(user));
        }
        // Not known to be anybody's: the address pays, before any query.
        self.spend(&self.address_bucket(req))?;
        let Some(state) = req.data::<AppState>() else {
            return Ok(());
        };
        // A failed lookup is left to the security scheme, which looks again and answers it.
        if let Ok(Some(user)) = self.find_user(&state.db, &token).await {
            let bucket = Bucket::User(user.id);
            req.extensions_mut().insert(VerifiedUser(user));
            self.spend(&bucket)?;
        }
        Ok(())
    }
}

/// Whether idle buckets should be dropped now: every [`SWEEP_EVERY`], or, when the store is
/// at least half full, as often as every [`SWEEP_AT_MOST_EVERY`].
fn sweep_due(since_last_ms: u64, keys: usize, max_keys: usize) -> bool {
    let since_last = Duration::from_millis(since_last_ms);
    since_last >= SWEEP_EVERY || (since_last >= SWEEP_AT_MOST_EVERY && keys >= max_keys / 2)
}

/// The bearer token as the security schemes read it: scheme in any case, then the token
/// after any number of spaces.
fn bearer_token(req: &Request) -> Option<String> {
    req.headers()
        .typed_get::<Authorization<Bearer>>()
        .map(|auth| auth.token().to_owned())
}

/// A token's SHA-256; hex-encoded, it is what the database stores.
fn token_digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Not limited: probes, the docs, and Google's notifications (Google sends them from a
/// few addresses and never retries a 429; the webhook checks the channel token before any
/// query, so forged traffic is cheap to refuse).
fn is_exempt(path: &str) -> bool {
    path.starts_with("/health/")
        || path.starts_with("/docs")
        || path == "/openapi.json"
        || path == "/metrics"
        || path == "/webhooks/google-calendar"
}

impl<E: Endpoint> Middleware<E> for InboundRateLimit {
    type Output = RateLimited<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RateLimited {
            inner: ep,
            limit: self.clone(),
        }
    }
}

/// An endpoint behind [`InboundRateLimit`].
pub struct RateLimited<E> {
    inner: E,
    limit: InboundRateLimit,
}

impl<E: Endpoint> Endpoint for RateLimited<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if !is_exempt(req.uri().path()) {
            if let Err(RetryAfter(secs)) = self.limit.admit(&mut req).await {
                return Ok(ApiError::too_many_requests(secs).into_response());
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use poem::http::header::AUTHORIZATION;

    use super::*;

    #[test]
    fn the_digest_is_what_the_database_stores() {
        let token = "ss_0123456789abcdef";
        assert_eq!(hex::encode(token_digest(token)), crate::api::auth::hash_token(token));
    }

    #[test]
    fn every_spelling_of_the_bearer_scheme_names_the_same_token() {
        for header in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR    tok"] {
            let req = Request::builder().header(AUTHORIZATION, header).finish();
            assert_eq!(bearer_token(&req).as_deref(), Some("tok"), "{header}");
        }
        for header in ["Basic dXNlcjpwYXNz", "Bearertok", "tok"] {
            let req = Request::builder().header(AUTHORIZATION, header).finish();
            assert_eq!(bearer_token(&req), None, "{header}");
        }
    }

    #[test]
    fn sweeps_run_on_a_schedule_and_sooner_when_the_store_fills() {
        assert!(!sweep_due(1_000, 10, 100));
        assert!(sweep_due(SWEEP_EVERY.as_millis() as u64, 0, 100));
        assert!(sweep_due(1_000, 50, 100));
        assert!(!sweep_due(999, 99, 100), "at most one sweep a second");
    }

    #[test]
    fn the_admin_token_is_recognised_and_nothing_else() {
        let limit = InboundRateLimit::with_bounds(10, TrustedProxies::default(), "admin-token-0123456789", 10);
        assert!(limit.is_admin(&token_digest("admin-token-0123456789")));
        assert!(!limit.is_admin(&token_digest("ADMIN-token-0123456789")));
        let no_admin = InboundRateLimit::with_bounds(10, TrustedProxies::default(), "", 10);
        assert!(!no_admin.is_admin(&token_digest("")));
    }
}
