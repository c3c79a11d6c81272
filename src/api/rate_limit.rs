//! Inbound rate limit: a governor keyed limiter per API token (or per client IP when no
//! token is sent). Over the limit → 429 with `Retry-After`. Health checks and the docs
//! are not limited.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::auth::hash_token;
use super::error::ApiError;

/// The middleware; clone-cheap, shared by every request.
#[derive(Clone)]
pub struct InboundRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl InboundRateLimit {
    /// `per_minute` requests per key, refilled evenly, with a burst of the same size.
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
        }
    }
}

fn key_of(req: &Request) -> String {
    if let Some(auth) = req.headers().get(poem::http::header::AUTHORIZATION) {
        if let Ok(v) = auth.to_str() {
            return format!("token:{}", &hash_token(v)[..32]);
        }
    }
    let ip: Option<IpAddr> = req.remote_addr().as_socket_addr().map(|a| a.ip());
    format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default())
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

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if !is_exempt(req.uri().path()) {
            if let Err(not_until) = self.limit.limiter.check_key(&key_of(&req)) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Ok(ApiError::too_many_requests(secs.max(1)).into_response());
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}
