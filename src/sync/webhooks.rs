//! Outbound webhooks: the delivery worker and the rules for a target. Each change a user's
//! endpoint takes has a delivery row, created with the change; the worker claims an
//! endpoint (a lease on its row, so two instances never deliver to one endpoint at once),
//! delivers its pending rows oldest first, one at a time, and gives the lease back. A
//! delivery is signed as the Standard Webhooks specification says (`webhook-id`: the
//! delivery's id, the same on every attempt; `webhook-timestamp`; `webhook-signature:
//! v1,…`, with the previous secret's signature too during a rotation's grace period).
//! 2xx = delivered; 410 disables the endpoint; anything else (or no answer in 10 s) is
//! retried on `WEBHOOK_RETRY_SCHEDULE`, the endpoint waiting meanwhile (order is kept).
//! A process stopped mid-delivery leaves the lease to run out: the next claim delivers
//! again, with the same `webhook-id`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::context::SyncContext;
use crate::crypto::Secret;
use crate::domain::delivery::is_public;
use crate::domain::{ChangeKind, UserId};
use crate::store::changes::{self, ChangeRow, NewChange};
use crate::store::webhooks::{self, DeliveryRow, EndpointRow, DELIVERED, DISCARDED, FAILED, PENDING};
use crate::store::StoreError;

/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an endpoint's answer is kept (as `last_error`).
pub const ANSWER_KEPT: usize = 512;
/// Endpoints delivered to at once by one worker.
const CONCURRENCY: usize = 16;
/// How long a claim on an endpoint lasts: one attempt and a margin. It is extended before
/// each attempt, so a batch keeps it; a process stopped mid-delivery loses it this long
/// after its last attempt began, and another worker (here after a restart, or on another
/// instance) delivers again.
pub const LEASE: Duration = Duration::from_secs(TIMEOUT.as_secs() + 5);
/// Deliveries made per claim before the endpoint is given back.
const BATCH: usize = 50;

/// Turns a change into the `data` of its webhook (the feed's shape; given by the API).
pub type Render = fn(&ChangeRow) -> Value;

fn wake_signal() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Tells the worker that deliveries may be due (called after a change commits).
pub fn wake() {
    wake_signal().notify_one();
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(pub String);

/// Checks an endpoint URL and resolves it: `https` (or `http` when private targets are
/// allowed), a host, and every address it resolves to public unless allowed. Returns the
/// host and the address to connect to (pinned: no second lookup can move it).
pub async fn check_target(url: &str, allow_private: bool) -> Result<(String, SocketAddr), TargetRefused> {
    let parsed = url::Url::parse(url).map_err(|e| TargetRefused(format!("is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Err(TargetRefused(format!(
                "must be an https:// URL (got {other}://; http is only allowed with WEBHOOK_ALLOW_PRIVATE_TARGETS=true)"
            )))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetRefused("must not carry credentials".into()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| TargetRefused("has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| TargetRefused(format!("host `{host}` does not resolve: {e}")))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| TargetRefused(format!("host `{host}` has no address")))?;
    if !allow_private {
        if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(TargetRefused(format!(
                "resolves to {}, a private, loopback or link-local address (set WEBHOOK_ALLOW_PRIVATE_TARGETS=true only for local testing)",
                private.ip()
            )));
        }
    }
    Ok((host, first))
}

/// A new signing secret, as Standard Webhooks writes them (`whsec_` + base64 of 32 bytes).
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// The `webhook-id` of a delivery.
pub fn webhook_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}

/// Delivers outbound webhooks.
pub struct Deliverer {
    ctx: SyncContext,
    render: Render,
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(15))
}

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    Gone,
    Failed(Option<u16>, String),
}

impl Deliverer {
    /// A worker delivering `ctx`'s webhooks, rendering changes with `render`.
    pub fn new(ctx: SyncContext, render: Render) -> Self {
        Self { ctx, render }
    }

    /// Delivers until `shutdown` says stop: claims due endpoints, delivers to each, then
    /// waits for a change (or 0.5 s: retries come due, other instances' changes).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        while !*shutdown.borrow() {
            let room = CONCURRENCY.saturating_sub(tasks.len()) as u64;
            let claimed = if room > 0 {
                webhooks::claim_due(&self.ctx.db, Utc::now(), lease(), room)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "claiming webhook endpoints failed");
                        Vec::new()
                    })
            } else {
                Vec::new()
            };
            for endpoint in claimed {
                tasks.spawn(Arc::clone(&self).deliver_endpoint(endpoint));
            }
            tokio::select! {
                _ = wake_signal().notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Delivers the endpoint's due deliveries in order, then gives it back.
    async fn deliver_endpoint(self: Arc<Self>, endpoint: EndpointRow) {
        let held = self.deliver_batch(&endpoint).await.unwrap_or_else(|e| {
            tracing::warn!(endpoint_id = %endpoint.id, error = %e, "webhook delivery failed to record");
            true
        });
        if held {
            if let Err(e) = webhooks::release(&self.ctx.db, endpoint.id).await {
                tracing::warn!(endpoint_id = %endpoint.id, error = %e, "could not release a webhook endpoint");
            }
        }
        // A delivery created after this batch looked for the next one, while the endpoint
        // was still held, met a claim that could not take it: look again now rather than
        // at the next tick.
        wake();
    }

    /// Answers whether the worker still holds the endpoint (false when its lease ran out).
    async fn deliver_batch(&self, endpoint: &EndpointRow) -> Result<bool, StoreError> {
        let db = &self.ctx.db;
        let owner = endpoint.user_id.map(UserId);
        for _ in 0..BATCH {
            let Some(delivery) = webhooks::next_pending(db, endpoint.id, owner).await? else {
                return Ok(true);
            };
            let now = Utc::now();
            if delivery.next_attempt_at > now {
                return Ok(true);
            }
            if !webhooks::extend_lease(db, endpoint.id, now, now + lease()).await? {
                // Held past its lease (a stalled database): another worker may have it now.
                return Ok(false);
            }
            let user = UserId(delivery.user_id);
            let Some(change) = changes::get(db, user, delivery.seq).await? else {
                let why = "the change was purged before it could be delivered".to_owned();
                webhooks::record_attempt(db, &delivery, DISCARDED, now, None, Some(why), now).await?;
                continue;
            };
            let outcome = self.attempt(endpoint, &delivery, &change).await;
            let now = Utc::now();
            match outcome {
                Attempt::Delivered(status) => {
                    webhooks::record_attempt(db, &delivery, DELIVERED, now, Some(status), None, now).await?;
                    webhooks::record_endpoint(db, endpoint.id, true, None, now).await?;
                    crate::observe::webhook_delivery("delivered", (now - change.created_at).to_std().ok());
                }
                Attempt::Gone => {
                    let reason = "the endpoint answered 410 Gone";
                    webhooks::record_attempt(db, &delivery, PENDING, now, Some(410), Some(reason.into()), now).await?;
                    self.disable(endpoint, reason, now).await?;
                    crate::observe::webhook_delivery("gone", None);
                    return Ok(true);
                }
                Attempt::Failed(status, error) => {
                    self.after_failure(endpoint, &delivery, status, error, now).await?;
                    return Ok(true);
                }
            }
        }
        Ok(true)
    }

    /// Schedules the next attempt (or gives up), and disables an endpoint failing too long.
    async fn after_failure(
        &self,
        endpoint: &EndpointRow,
        delivery: &DeliveryRow,
        status: Option<u16>,
        error: String,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let db = &self.ctx.db;
        let failed = u32::try_from(delivery.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let schedule = &self.ctx.settings.webhook_retry_schedule;
        let (state, next) = match schedule.after(failed, rand::random::<f64>()) {
            Some(delay) => (
                PENDING,
                now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)),
            ),
            None => (FAILED, now),
        };
        tracing::info!(endpoint_id = %endpoint.id, delivery = %delivery.id, ?status, %error, state, "webhook delivery failed");
        webhooks::record_attempt(db, delivery, state, next, status, Some(error), now).await?;
        webhooks::record_endpoint(db, endpoint.id, false, None, now).await?;
        crate::observe::webhook_delivery(if state == FAILED { "failed" } else { "retrying" }, None);
        let limit = chrono::Duration::hours(i64::try_from(self.ctx.settings.webhook_disable_after_hours).unwrap_or(24));
        if endpoint.failing_since.is_some_and(|since| now - since >= limit) {
            let reason = format!(
                "every delivery failed for {} hours",
                self.ctx.settings.webhook_disable_after_hours
            );
            self.disable(endpoint, &reason, now).await?;
        }
        Ok(())
    }

    /// Turns the endpoint off and, for a user's endpoint, tells the user in the feed (in
    /// one transaction); a deployment-wide endpoint's operator learns it from the log and
    /// the metric.
    async fn disable(&self, endpoint: &EndpointRow, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let txn = crate::store::begin_write(&self.ctx.db).await?;
        webhooks::record_endpoint(&txn, endpoint.id, false, Some(reason), now).await?;
        if let Some(user) = endpoint.user_id.map(UserId) {
            let notice = NewChange::about(
                ChangeKind::WebhookEndpointDisabled,
                json!({ "endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason,
                        "next": "fix the receiver, then PATCH /webhook-endpoints/{id} with enabled=true; pending deliveries resume" }),
            );
            changes::append_one(&txn, user, notice, now).await?;
        }
        txn.commit().await?;
        crate::observe::webhook_endpoint_disabled();
        tracing::warn!(endpoint_id = %endpoint.id, reason, "webhook endpoint disabled");
        if let Some(user) = endpoint.user_id.map(UserId) {
            super::feed::changed(user);
        }
        Ok(())
    }

    /// One signed POST of `change` to the endpoint.
    async fn attempt(&self, endpoint: &EndpointRow, delivery: &DeliveryRow, change: &ChangeRow) -> Attempt {
        let settings = &self.ctx.settings;
        let (host, addr) = match check_target(&endpoint.url, settings.webhook_allow_private_targets).await {
            Ok(t) => t,
            Err(e) => return Attempt::Failed(None, format!("target refused: {e}")),
        };
        let body = json!({
            "type": change.kind,
            "timestamp": change.created_at,
            "data": (self.render)(change),
        })
        .to_string();
        let id = webhook_id(delivery.id);
        let timestamp = Utc::now().timestamp();
        let signatures = match self.signatures(endpoint, &id, timestamp, &body) {
            Ok(s) => s,
            Err(e) => return Attempt::Failed(None, e),
        };
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve(&host, addr)
            .build()
        {
            Ok(c) => c,
            Err(e) => return Attempt::Failed(None, format!("HTTP client: {e}")),
        };
        let sent = client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("slotsync-webhooks/", env!("CARGO_PKG_VERSION")))
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signatures)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    Attempt::Delivered(status)
                } else if status == 410 {
                    Attempt::Gone
                } else {
                    let mut text = resp.text().await.unwrap_or_default();
                    text.truncate(ANSWER_KEPT);
                    Attempt::Failed(Some(status), format!("answered {status}: {text}"))
                }
            }
            Err(e) if e.is_timeout() => Attempt::Failed(None, format!("no answer within {} s", TIMEOUT.as_secs())),
            Err(e) => Attempt::Failed(None, format!("could not deliver: {e}")),
        }
    }

    /// `v1,…` with the current secret, and with the previous one while its grace runs.
    fn signatures(&self, endpoint: &EndpointRow, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
        let keys = &self.ctx.keys;
        let mut secrets = vec![keys
            .decrypt(&endpoint.secret_enc, endpoint.id, Secret::WebhookSecret)
            .map_err(|e| format!("signing secret unreadable: {e}"))?];
        if let (Some(old), Some(until)) = (&endpoint.previous_secret_enc, endpoint.previous_secret_until) {
            if until > Utc::now() {
                if let Ok(old) = keys.decrypt(old, endpoint.id, Secret::WebhookSecret) {
                    secrets.push(old);
                }
            }
        }
        let mut signed = Vec::new();
        for secret in secrets {
            let hook = standardwebhooks::Webhook::new(&secret).map_err(|e| format!("signing secret: {e}"))?;
            signed.push(
                hook.sign(id, timestamp, body.as_bytes())
                    .map_err(|e| format!("signing: {e}"))?,
            );
        }
        Ok(signed.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn targets_must_be_https_and_public_unless_private_ones_are_allowed() {
        let refused = |url: &'static str| async move { check_target(url, false).await.unwrap_err().0 };
        assert!(refused("http://example.com/hook").await.contains("https"));
        assert!(refused("https://127.0.0.1/hook").await.contains("private"));
        assert!(refused("https://169.254.169.254/latest").await.contains("private"));
        assert!(refused("https://[::1]:8443/hook").await.contains("private"));
        assert!(refused("https://localhost/hook").await.contains("private"));
        assert!(refused("https://user:pw@example.com/").await.contains("credentials"));
        assert!(refused("not a url").await.contains("URL"));
        let (host, addr) = check_target("http://127.0.0.1:9/hook", true).await.unwrap();
        assert_eq!((host.as_str(), addr.port()), ("127.0.0.1", 9));
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        let hook = standardwebhooks::Webhook::new(&secret).unwrap();
        let signed = hook.sign("msg_1", 1_700_000_000, b"{}").unwrap();
        assert!(signed.starts_with("v1,"));
    }
}
