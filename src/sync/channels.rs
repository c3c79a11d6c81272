//! Push-notification channels: creating them (`events.watch`), renewing them before they
//! expire (new channel first, then the old one is stopped), stopping them, and checking
//! the notifications Google sends to the webhook.
//!
//! A channel's token is an HMAC of its id under `SECRET_KEY`, so nothing secret is stored
//! and a notification is authenticated before any database query. What the checks need of
//! a channel comes from the app's [channel directory](super::channel_directory), which
//! reads the row on a miss; every change made here to a channel's row forgets its entry
//! there.

use std::sync::Once;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use super::context::SyncContext;
use crate::config::Settings;
use crate::domain::{ConnectionStatus, UserId};
use crate::google::error::GoneKind;
use crate::google::GoogleError;
use crate::store::channels::{self, ChannelRow};
use crate::store::{connections, StoreError};
use crate::sync::channel_directory::KnownChannel;
use crate::sync::{Refused, SyncError};

/// Where Google delivers notifications, below `PUBLIC_BASE_URL`.
pub const WEBHOOK_PATH: &str = "/webhooks/google-calendar";
/// How long one instance holds a channel it renews (a watch and a stop, each bounded by
/// the gateway's timeout, fit well within it).
pub const RENEW_LEASE: Duration = Duration::from_secs(120);
/// At most this many channels are looked at per renewal run; the next run takes the rest.
pub const RENEW_BATCH: u64 = 2_000;
/// Channels one instance renews at once.
pub const RENEW_CONCURRENCY: usize = 16;
/// Each channel asks Google for `CHANNEL_TTL_SECS` shortened by a random share up to this
/// one, so channels created together (a deploy, a migration, a busy hour) expire — and are
/// renewed — spread over a fifth of their lifetime, and stay spread renewal after renewal.
pub const TTL_JITTER: f64 = 0.2;

/// The webhook URL given to Google, or `None` when channels are off.
pub fn webhook_address(settings: &Settings) -> Option<String> {
    let base = settings.public_base_url.as_deref()?.trim_end_matches('/');
    Some(format!("{base}{WEBHOOK_PATH}"))
}

/// Logs (once per process) that channels are off, when they are. Call it at startup.
pub fn warn_if_off(settings: &Settings) {
    static WARNED: Once = Once::new();
    if settings.public_base_url.is_none() {
        WARNED.call_once(|| {
            tracing::warn!(
                "PUBLIC_BASE_URL is not set: no push-notification channels are created; changes made in \
                 Google arrive only with the fallback sync"
            );
        });
    }
}

/// The lifetime asked for a new channel: `CHANNEL_TTL_SECS` less up to [`TTL_JITTER`] of it.
fn ttl(settings: &Settings) -> Duration {
    use rand::Rng;
    let full = Duration::from_secs(settings.channel_ttl_secs);
    full.mul_f64(1.0 - rand::thread_rng().gen_range(0.0..TTL_JITTER))
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Creates a channel on the user's calendar and stores it. The row is stored before the
/// watch, because Google may send the `sync` notification before it answers. When Google
/// fails in a way worth retrying, the row is left expired so the renewal job tries again;
/// any other refusal stops it.
#[tracing::instrument(skip_all, fields(user_id = %user), err(level = "debug"))]
pub async fn create_channel(state: &SyncContext, user: UserId) -> Result<ChannelRow, SyncError> {
    let Some(address) = webhook_address(&state.settings) else {
        warn_if_off(&state.settings);
        return Err(SyncError::ChannelsOff);
    };
    let conn = connections::find(&state.db, user)
        .await?
        .filter(|c| c.status == ConnectionStatus::Active)
        .ok_or(SyncError::NotConnected)?;
    let id = Uuid::new_v4();
    let ttl = ttl(&state.settings);
    let now = Utc::now();
    let fallback_expiry = now + chrono_duration(ttl);
    channels::insert_pending(&state.db, id, user, fallback_expiry, now).await?;
    let token = state.keys.channel_token(&id.to_string());
    let watched = match state
        .gateway
        .watch_events(user, &conn.calendar_id, &id.to_string(), &address, &token, ttl)
        .await
    {
        Ok(watched) => watched,
        Err(e) => {
            if e.is_retryable() {
                let expired = channels::expire_now(&state.db, id, Utc::now()).await;
                state.channel_directory.forget(id);
                expired?;
            } else {
                mark_stopped(state, id, None).await?;
            }
            return Err(e.into());
        }
    };
    let expires_at = watched.expires_at.unwrap_or(fallback_expiry);
    let stored = channels::set_watched(&state.db, id, &watched.resource_id, expires_at).await;
    // The handshake may have been checked (and remembered) before the resource id was in.
    state.channel_directory.forget(id);
    match stored? {
        Some(row) => {
            tracing::info!(channel_id = %id, %expires_at, "notification channel created");
            Ok(row)
        }
        None => {
            // Retired while Google was answering (a concurrent re-creation): stop it there too.
            let row = channels::find(&state.db, id).await?.ok_or(StoreError::NotFound)?;
            stop_at_google(state, &row).await.ok();
            Ok(row)
        }
    }
}

/// Stops a channel at Google when it may still be live there. `Ok(true)`: it no longer is
/// (stopped now, already gone, or expired); a channel whose creation never completed has
/// nothing to stop (`Ok(false)`).
async fn stop_at_google(state: &SyncContext, channel: &ChannelRow) -> Result<bool, GoogleError> {
    let Some(resource_id) = channel.resource_id.as_deref() else {
        return Ok(false);
    };
    if channel.expires_at <= Utc::now() {
        return Ok(true);
    }
    match state
        .gateway
        .stop_channel(UserId(channel.user_id), &channel.id.to_string(), resource_id)
        .await
    {
        Ok(()) | Err(GoogleError::Gone(GoneKind::NotFound | GoneKind::Deleted)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Stops a channel at Google (best effort) and marks it stopped, replaced by `replaced_by`.
async fn retire(state: &SyncContext, channel: &ChannelRow, replaced_by: Option<Uuid>) -> Result<(), SyncError> {
    if let Err(e) = stop_at_google(state, channel).await {
        // It expires by itself; meanwhile its notifications are refused as stopped.
        tracing::warn!(channel_id = %channel.id, error = %e, "could not stop a replaced channel at Google");
    }
    mark_stopped(state, channel.id, replaced_by).await?;
    Ok(())
}

/// Marks a channel stopped in the store and forgets it in the directory, so this instance
/// refuses its notifications from the moment this returns.
async fn mark_stopped(state: &SyncContext, id: Uuid, replaced_by: Option<Uuid>) -> Result<bool, StoreError> {
    let stopped = channels::mark_stopped(&state.db, id, replaced_by, Utc::now()).await;
    state.channel_directory.forget(id);
    stopped
}

/// Creates a new channel for the user, then retires every live channel created before it.
/// When the creation fails, the old channels are left as they are.
#[tracing::instrument(skip_all, fields(user_id = %user), err(level = "debug"))]
pub async fn recreate(state: &SyncContext, user: UserId) -> Result<ChannelRow, SyncError> {
    let new = create_channel(state, user).await?;
    for old in channels::live(&state.db, user).await? {
        // Only older ones: two concurrent re-creations then leave the newest channel live.
        if old.id != new.id && old.created_at < new.created_at {
            retire(state, &old, Some(new.id)).await?;
        }
    }
    Ok(new)
}

/// What [`stop_all`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StopReport {
    /// Channels no longer live at Google: stopped now, already gone, or expired.
    pub stopped: u64,
    /// Channels Google could not be told about (they expire by themselves).
    pub problems: Vec<String>,
}

/// Stops every live channel of the user: best effort at Google, always marked stopped
/// locally (so their notifications are refused from now on).
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn stop_all(state: &SyncContext, user: UserId) -> Result<StopReport, StoreError> {
    let mut report = StopReport::default();
    for channel in channels::live(&state.db, user).await? {
        match stop_at_google(state, &channel).await {
            Ok(true) => report.stopped += 1,
            Ok(false) => {}
            Err(e) => report.problems.push(format!("channel {}: {e}", channel.id)),
        }
        mark_stopped(state, channel.id, None).await?;
    }
    Ok(report)
}

/// What [`renew_expiring`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenewReport {
    /// Channels are off (`PUBLIC_BASE_URL` unset): nothing was looked at.
    pub off: bool,
    /// Channels replaced by a new one (created first, then the old one stopped).
    pub renewed: u64,
    /// Channels stopped without a new one: the user already had a fresh channel, or the
    /// channel expired while the user's connection is not active.
    pub retired: u64,
    /// Channels left alone: claimed by another instance, or the connection is not active.
    pub skipped: u64,
    /// Channels whose renewal failed at Google; the next run tries again.
    pub failed: u64,
}

enum Renewal {
    Renewed,
    Retired,
    Skipped,
}

/// Renews the channels expiring within `CHANNEL_RENEW_BEFORE_SECS` (and any that already
/// expired): claimed in batches with a lease (`store::channels::claim_expiring`), so
/// concurrent runs, in this instance or others, renew every channel once; the channels of
/// a batch are renewed [`RENEW_CONCURRENCY`] at a time, within the Google limits.
#[tracing::instrument(skip_all, err)]
pub async fn renew_expiring(state: &SyncContext) -> Result<RenewReport, StoreError> {
    let mut report = RenewReport::default();
    if webhook_address(&state.settings).is_none() {
        warn_if_off(&state.settings);
        report.off = true;
        return Ok(report);
    }
    let before = chrono_duration(Duration::from_secs(state.settings.channel_renew_before_secs));
    let started = std::time::Instant::now();
    let mut looked_at = 0;
    while looked_at < RENEW_BATCH && started.elapsed() < RENEW_LEASE / 2 {
        let now = Utc::now();
        let limit = (RENEW_BATCH - looked_at).min(RENEW_CONCURRENCY as u64 * 4);
        let batch =
            channels::claim_expiring(&state.db, now + before, now, now + chrono_duration(RENEW_LEASE), limit).await?;
        if batch.is_empty() {
            break;
        }
        looked_at += batch.len() as u64;
        let outcomes: Vec<(Uuid, Result<Renewal, SyncError>)> = futures::stream::iter(batch)
            .map(|channel| async move { (channel.id, renew_one(state, &channel, now + before).await) })
            .buffer_unordered(RENEW_CONCURRENCY)
            .collect()
            .await;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(Renewal::Renewed) => report.renewed += 1,
                Ok(Renewal::Retired) => report.retired += 1,
                Ok(Renewal::Skipped) => {
                    channels::release_renewal(&state.db, id).await?;
                    report.skipped += 1;
                }
                Err(SyncError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(channel_id = %id, error = %e, "channel renewal failed");
                    channels::release_renewal(&state.db, id).await?;
                    report.failed += 1;
                }
            }
        }
    }
    if report != RenewReport::default() {
        tracing::info!(?report, "channels renewed");
    }
    Ok(report)
}

async fn renew_one(state: &SyncContext, channel: &ChannelRow, horizon: DateTime<Utc>) -> Result<Renewal, SyncError> {
    let user = UserId(channel.user_id);
    let active = connections::find(&state.db, user)
        .await?
        .is_some_and(|c| c.status == ConnectionStatus::Active);
    if !active {
        // No new channel without a usable grant; an expired one is only bookkeeping now.
        if channel.expires_at <= Utc::now() {
            retire(state, channel, None).await?;
            return Ok(Renewal::Retired);
        }
        return Ok(Renewal::Skipped);
    }
    let live = channels::live(&state.db, user).await?;
    if let Some(fresh) = live
        .iter()
        .find(|c| c.id != channel.id && c.resource_id.is_some() && c.expires_at > horizon)
    {
        retire(state, channel, Some(fresh.id)).await?;
        return Ok(Renewal::Retired);
    }
    // The new channel is newer than this one, so `recreate` retires it (replaced by the new).
    match recreate(state, user).await {
        Ok(_) => Ok(Renewal::Renewed),
        Err(SyncError::NotConnected) => Ok(Renewal::Skipped),
        Err(e) => Err(e),
    }
}

/// `X-Goog-Resource-State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceState {
    /// The channel was just created.
    Sync,
    /// Something in the calendar changed.
    Exists,
    /// The resource no longer exists.
    NotExists,
}

impl ResourceState {
    /// Parses the header value (`sync`, `exists`, `not_exists`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "sync" => Some(Self::Sync),
            "exists" => Some(Self::Exists),
            "not_exists" => Some(Self::NotExists),
            _ => None,
        }
    }
}

/// One notification's headers, present and well-formed.
#[derive(Debug, Clone)]
pub struct Notification {
    /// `X-Goog-Channel-ID` (our channel id).
    pub channel_id: Uuid,
    /// `X-Goog-Channel-Token`.
    pub token: String,
    /// `X-Goog-Resource-ID`.
    pub resource_id: String,
    /// `X-Goog-Resource-State`.
    pub state: ResourceState,
    /// `X-Goog-Message-Number`.
    pub message_number: u64,
}

/// What an accepted notification led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The `sync` handshake of a new channel: nothing to do.
    Handshake,
    /// A message number already seen on this channel (a redelivery): nothing to do.
    Duplicate,
    /// A change: a pull of the user's calendar was requested.
    PullRequested(UserId),
}

/// Checks a notification and acts on it: the token first (no query for forged traffic),
/// then what the app's [channel directory](super::channel_directory) knows of the channel
/// (one primary-key read when it knows nothing yet, or only for longer than its TTL);
/// `exists`/`not_exists` request a pull, which runs later, debounced and coalesced.
pub async fn receive(state: &SyncContext, n: &Notification) -> Result<Received, Refused> {
    let mut id = Uuid::encode_buffer();
    if !state
        .keys
        .check_channel_token(n.channel_id.hyphenated().encode_lower(&mut id), &n.token)
    {
        return Err(Refused::BadToken);
    }
    let directory = &state.channel_directory;
    let now = Utc::now();
    let admitted = match directory.lookup(n.channel_id, |known| admit(known, n, now)) {
        Some(admitted) => admitted,
        None => {
            let ticket = directory.ticket();
            // Boxed: the query's future is ~1.7 KB, and every notification's future (moved
            // into a box by each layer of the router) would carry it, miss or not.
            let row = Box::pin(channels::find(&state.db, n.channel_id))
                .await?
                .ok_or(Refused::UnknownChannel)?;
            admit(&directory.remember(ticket, &row), n, now)
        }
    };
    if let Err(Refused::ResourceMismatch) = admitted {
        tracing::warn!(channel_id = %n.channel_id, "a notification with a valid token named another resource");
    }
    let user = admitted?;
    if !directory.is_new_message(n.channel_id, n.message_number) {
        return Ok(Received::Duplicate);
    }
    match n.state {
        ResourceState::Sync => Ok(Received::Handshake),
        ResourceState::Exists | ResourceState::NotExists => {
            state.pulls.request_notified(user);
            Ok(Received::PullRequested(user))
        }
    }
}

/// The checks of a channel the notification's token vouches for: live at `now`, and
/// watching the notification's resource. Its user, when they pass.
fn admit(channel: &KnownChannel, n: &Notification, now: DateTime<Utc>) -> Result<UserId, Refused> {
    if channel.stopped {
        return Err(Refused::Stopped);
    }
    if channel.expires_at <= now {
        return Err(Refused::Expired);
    }
    // No resource id yet: Google notified before answering the watch; the token vouches.
    if channel.resource_id.as_deref().is_some_and(|r| r != n.resource_id) {
        return Err(Refused::ResourceMismatch);
    }
    Ok(UserId(channel.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_admitted_while_live_and_watching_the_notifications_resource() {
        let now = Utc::now();
        let user = Uuid::new_v4();
        let live = KnownChannel {
            user_id: user,
            resource_id: Some("calendar".into()),
            expires_at: now + chrono::Duration::seconds(1),
            stopped: false,
        };
        let n = Notification {
            channel_id: Uuid::new_v4(),
            token: String::new(),
            resource_id: "calendar".into(),
            state: ResourceState::Exists,
            message_number: 1,
        };
        assert!(matches!(admit(&live, &n, now), Ok(UserId(u)) if u == user));
        let pending = KnownChannel {
            resource_id: None,
            ..live.clone()
        };
        assert!(admit(&pending, &n, now).is_ok(), "before Google answered the watch");
        let stopped = KnownChannel {
            stopped: true,
            ..live.clone()
        };
        assert!(matches!(admit(&stopped, &n, now), Err(Refused::Stopped)));
        let at_expiry = now + chrono::Duration::seconds(1);
        assert!(matches!(admit(&live, &n, at_expiry), Err(Refused::Expired)));
        let elsewhere = Notification {
            resource_id: "another".into(),
            ..n.clone()
        };
        assert!(matches!(admit(&live, &elsewhere, now), Err(Refused::ResourceMismatch)));
    }

    #[test]
    fn resource_states_are_the_three_google_sends() {
        assert_eq!(ResourceState::parse("sync"), Some(ResourceState::Sync));
        assert_eq!(ResourceState::parse("exists"), Some(ResourceState::Exists));
        assert_eq!(ResourceState::parse("not_exists"), Some(ResourceState::NotExists));
        assert_eq!(ResourceState::parse("EXISTS"), None);
        assert_eq!(ResourceState::parse(""), None);
    }
}
