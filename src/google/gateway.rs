//! `CalendarGateway`: the Calendar operations the sync engine needs, and its
//! google-calendar3 implementation. Every call waits on the per-user and global rate
//! limits, runs under a timeout, retries once after refreshing a token Google refused,
//! and returns a classified [`GoogleError`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use google_calendar3::api::{Channel, Event};
use google_calendar3::common;
use google_calendar3::hyper::{header, Method, Request};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::error::GoogleError;
use super::hub::{http_client, hub_with, HttpClient, Hub};
use super::limits::GoogleLimits;
use super::vault::TokenVault;
use super::GoogleEndpoints;
use crate::domain::UserId;
use crate::observe;

/// How many times a 401 leads to a refresh and another try before the connection is
/// declared `needs_reauth`.
const AUTH_REFRESHES: u32 = 2;

/// How long one Google call may take before it counts as a (retryable) failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Which events a page of `events.list` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFrom {
    /// Changes since this sync token (deletions included).
    SyncToken(String),
    /// A full listing of events ending after this instant (deleted ones included).
    Window { time_min: DateTime<Utc> },
}

/// One page of `events.list`.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    /// The events (cancelled ones carry only their id and status).
    pub items: Vec<Event>,
    /// Present when more pages follow.
    pub next_page_token: Option<String>,
    /// Present on the last page.
    pub next_sync_token: Option<String>,
    /// The calendar's zone, for events that name none.
    pub time_zone: Option<String>,
}

/// A notification channel Google created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedChannel {
    /// Google's id of the watched resource (needed to stop the channel).
    pub resource_id: String,
    /// When Google stops sending (absent if Google did not say).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Largest page `events.list` serves.
pub const MAX_PAGE_SIZE: i32 = 2500;

/// The Calendar operations the sync engine uses, on behalf of one user each.
#[async_trait]
pub trait CalendarGateway: Send + Sync + 'static {
    /// `events.insert`; `event.id` may be client-chosen.
    async fn insert_event(&self, user: UserId, calendar: &str, event: Event) -> Result<Event, GoogleError>;
    /// `events.get`.
    async fn get_event(&self, user: UserId, calendar: &str, event_id: &str) -> Result<Event, GoogleError>;
    /// `events.patch` with a JSON body (explicit `null`s clear fields), conditional on
    /// `if_match` when given.
    async fn patch_event(
        &self,
        user: UserId,
        calendar: &str,
        event_id: &str,
        patch: &Value,
        if_match: Option<&str>,
    ) -> Result<Event, GoogleError>;
    /// `events.delete`.
    async fn delete_event(&self, user: UserId, calendar: &str, event_id: &str) -> Result<(), GoogleError>;
    /// `events.delete` with `sendUpdates` (`all` | `externalOnly` | `none`) when given: who
    /// of a meeting's attendees Google emails about the cancellation.
    async fn delete_event_notifying(
        &self,
        user: UserId,
        calendar: &str,
        event_id: &str,
        send_updates: Option<&str>,
    ) -> Result<(), GoogleError>;
    /// One page of `events.list` with `showDeleted`, recurring events as masters.
    async fn list_events(
        &self,
        user: UserId,
        calendar: &str,
        from: &ListFrom,
        page_token: Option<&str>,
    ) -> Result<EventPage, GoogleError>;
    /// `events.watch`: a web-hook channel `id` delivering to `address` with `token`.
    async fn watch_events(
        &self,
        user: UserId,
        calendar: &str,
        id: &str,
        address: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<WatchedChannel, GoogleError>;
    /// `channels.stop`.
    async fn stop_channel(&self, user: UserId, id: &str, resource_id: &str) -> Result<(), GoogleError>;
    /// `calendars.get`: whether the calendar exists (`Gone(NotFound)` when it does not).
    async fn get_calendar(&self, user: UserId, calendar: &str) -> Result<(), GoogleError>;
}

/// The real gateway: google-calendar3 over hyper-rustls, against Google or an emulator.
pub struct GoogleCalendar {
    endpoints: GoogleEndpoints,
    client: HttpClient,
    vault: Arc<TokenVault>,
    limits: Arc<GoogleLimits>,
}

/// The status a failed call is counted under: Google's HTTP status when it answered.
fn status_label(err: &common::Error) -> String {
    match err {
        common::Error::BadRequest(body) => body
            .pointer("/error/code")
            .and_then(Value::as_u64)
            .map_or_else(|| "4xx".to_owned(), |c| c.to_string()),
        common::Error::Failure(response) => response.status().as_u16().to_string(),
        common::Error::MissingToken(_) => "token".to_owned(),
        common::Error::JsonDecodeError(..) => "undecodable".to_owned(),
        _ => "transport".to_owned(),
    }
}

/// Characters escaped in a path segment (ids such as `a@group.calendar.google.com` keep
/// their `@`, `.`, `-` and `_`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'@').remove(b'.').remove(b'-').remove(b'_');

impl GoogleCalendar {
    /// A gateway with its own connection pool.
    pub fn new(endpoints: GoogleEndpoints, vault: Arc<TokenVault>, limits: Arc<GoogleLimits>) -> Self {
        Self {
            endpoints,
            client: http_client(),
            vault,
            limits,
        }
    }

    fn hub(&self, user: UserId) -> Hub {
        hub_with(self.client.clone(), &self.endpoints, self.vault.for_user(user))
    }

    /// Runs one call for `user` (through the limits and the timeout); on a 401 refreshes
    /// the token and runs it again (twice at most). A refresh Google refuses marks the
    /// connection `needs_reauth` (in the vault); a fresh token refused again is retryable.
    async fn run<T, F, Fut>(&self, user: UserId, op: &'static str, call: F) -> Result<T, GoogleError>
    where
        F: Fn(Hub) -> Fut,
        Fut: Future<Output = Result<T, common::Error>>,
    {
        let mut refreshes = 0;
        loop {
            self.limits.admit(user).await;
            let token_before = self.vault.access_token(user).await.ok();
            let started = std::time::Instant::now();
            let outcome = match tokio::time::timeout(CALL_TIMEOUT, call(self.hub(user))).await {
                Ok(Ok(value)) => {
                    observe::google_call(op, "2xx".into(), started.elapsed());
                    Ok(value)
                }
                Ok(Err(e)) => {
                    observe::google_call(op, status_label(&e), started.elapsed());
                    Err(GoogleError::from_client(e))
                }
                Err(_) => {
                    observe::google_call(op, "timeout".into(), started.elapsed());
                    Err(GoogleError::Retryable(format!("no answer within {CALL_TIMEOUT:?}")))
                }
            };
            match outcome {
                // Twice: a concurrent reader may briefly have held the token just replaced.
                Err(GoogleError::Auth(why)) if refreshes < AUTH_REFRESHES => {
                    refreshes += 1;
                    let Some(rejected) = token_before else {
                        return Err(GoogleError::Auth(why));
                    };
                    if let Err(e) = self.vault.refresh_rejected(user, &rejected).await {
                        return Err(GoogleError::from_token_error(&e));
                    }
                }
                // The refresh itself succeeded, so the grant is valid (a revoked grant fails
                // the refresh with `invalid_grant`, which marks `needs_reauth`): a fresh token
                // refused again is transient.
                Err(GoogleError::Auth(why)) => {
                    return Err(GoogleError::Retryable(format!(
                        "Google refused a freshly refreshed access token ({why})"
                    )));
                }
                other => return other,
            }
        }
    }

    fn event_url(&self, calendar: &str, event_id: &str) -> String {
        format!(
            "{}calendars/{}/events/{}?alt=json",
            self.endpoints.calendar,
            utf8_percent_encode(calendar, SEGMENT),
            utf8_percent_encode(event_id, SEGMENT)
        )
    }

    /// `events.patch` by hand: google-calendar3 cannot send `If-Match` nor explicit
    /// `null`s, so this one request is built on the same HTTP client and token source.
    async fn send_patch(
        client: HttpClient,
        url: String,
        token: String,
        body: Vec<u8>,
        if_match: Option<String>,
    ) -> Result<Event, common::Error> {
        let mut request = Request::builder()
            .method(Method::PATCH)
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, concat!("slotsync/", env!("CARGO_PKG_VERSION")));
        if let Some(etag) = if_match {
            request = request.header(header::IF_MATCH, etag);
        }
        let request = request.body(common::to_body(Some(body))).expect("a valid request");
        let response = client.request(request).await.map_err(common::Error::HttpError)?;
        let status = response.status();
        let bytes = common::to_bytes(response.into_body()).await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| common::Error::JsonDecodeError(String::from_utf8_lossy(&bytes).into_owned(), e));
        }
        // The same shape google-calendar3 produces, so one classifier reads both.
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if body.pointer("/error/code").is_none() {
            body = serde_json::json!({ "error": { "code": status.as_u16(), "message": status.to_string() } });
        }
        Err(common::Error::BadRequest(body))
    }
}

#[async_trait]
impl CalendarGateway for GoogleCalendar {
    #[tracing::instrument(skip_all, fields(user_id = %user, event_id = event.id.as_deref().unwrap_or("")), err(level = "debug"))]
    async fn insert_event(&self, user: UserId, calendar: &str, event: Event) -> Result<Event, GoogleError> {
        self.run(user, "events.insert", |hub| {
            let (event, calendar) = (event.clone(), calendar.to_owned());
            async move { hub.events().insert(event, &calendar).doit().await.map(|(_, e)| e) }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, event_id), err(level = "debug"))]
    async fn get_event(&self, user: UserId, calendar: &str, event_id: &str) -> Result<Event, GoogleError> {
        self.run(user, "events.get", |hub| {
            let (calendar, event_id) = (calendar.to_owned(), event_id.to_owned());
            async move { hub.events().get(&calendar, &event_id).doit().await.map(|(_, e)| e) }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, event_id), err(level = "debug"))]
    async fn patch_event(
        &self,
        user: UserId,
        calendar: &str,
        event_id: &str,
        patch: &Value,
        if_match: Option<&str>,
    ) -> Result<Event, GoogleError> {
        let url = self.event_url(calendar, event_id);
        let body = serde_json::to_vec(patch).expect("JSON serialises");
        self.run(user, "events.patch", |_hub| {
            let (client, url, body, if_match) = (
                self.client.clone(),
                url.clone(),
                body.clone(),
                if_match.map(str::to_owned),
            );
            let vault = Arc::clone(&self.vault);
            async move {
                let token = vault
                    .access_token(user)
                    .await
                    .map_err(|e| common::Error::MissingToken(Box::new(e)))?;
                Self::send_patch(client, url, token, body, if_match).await
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn list_events(
        &self,
        user: UserId,
        calendar: &str,
        from: &ListFrom,
        page_token: Option<&str>,
    ) -> Result<EventPage, GoogleError> {
        self.run(user, "events.list", |hub| {
            let (calendar, from, page_token) = (calendar.to_owned(), from.clone(), page_token.map(str::to_owned));
            async move {
                let mut call = hub
                    .events()
                    .list(&calendar)
                    .show_deleted(true)
                    .single_events(false)
                    .max_results(MAX_PAGE_SIZE);
                call = match &from {
                    ListFrom::SyncToken(token) => call.sync_token(token),
                    ListFrom::Window { time_min } => call.time_min(*time_min),
                };
                if let Some(page) = &page_token {
                    call = call.page_token(page);
                }
                let (_, events) = call.doit().await?;
                Ok(EventPage {
                    items: events.items.unwrap_or_default(),
                    next_page_token: events.next_page_token,
                    next_sync_token: events.next_sync_token,
                    time_zone: events.time_zone,
                })
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, channel_id = id), err(level = "debug"))]
    async fn watch_events(
        &self,
        user: UserId,
        calendar: &str,
        id: &str,
        address: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<WatchedChannel, GoogleError> {
        let request = Channel {
            id: Some(id.to_owned()),
            type_: Some("web_hook".to_owned()),
            address: Some(address.to_owned()),
            token: Some(token.to_owned()),
            params: Some([("ttl".to_owned(), ttl.as_secs().to_string())].into()),
            ..Default::default()
        };
        let channel = self
            .run(user, "events.watch", |hub| {
                let (request, calendar) = (request.clone(), calendar.to_owned());
                async move { hub.events().watch(request, &calendar).doit().await.map(|(_, c)| c) }
            })
            .await?;
        let resource_id = channel
            .resource_id
            .ok_or_else(|| GoogleError::Fatal("events.watch answered without a resourceId".into()))?;
        Ok(WatchedChannel {
            resource_id,
            expires_at: channel.expiration.and_then(DateTime::from_timestamp_millis),
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, channel_id = id), err(level = "debug"))]
    async fn stop_channel(&self, user: UserId, id: &str, resource_id: &str) -> Result<(), GoogleError> {
        let request = Channel {
            id: Some(id.to_owned()),
            resource_id: Some(resource_id.to_owned()),
            ..Default::default()
        };
        self.run(user, "channels.stop", |hub| {
            let request = request.clone();
            async move { hub.channels().stop(request).doit().await.map(|_| ()) }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user), err(level = "debug"))]
    async fn get_calendar(&self, user: UserId, calendar: &str) -> Result<(), GoogleError> {
        self.run(user, "calendars.get", |hub| {
            let calendar = calendar.to_owned();
            async move { hub.calendars().get(&calendar).doit().await.map(|_| ()) }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, event_id), err(level = "debug"))]
    async fn delete_event(&self, user: UserId, calendar: &str, event_id: &str) -> Result<(), GoogleError> {
        self.delete_event_notifying(user, calendar, event_id, None).await
    }

    async fn delete_event_notifying(
        &self,
        user: UserId,
        calendar: &str,
        event_id: &str,
        send_updates: Option<&str>,
    ) -> Result<(), GoogleError> {
        self.run(user, "events.delete", |hub| {
            let (calendar, event_id) = (calendar.to_owned(), event_id.to_owned());
            let send_updates = send_updates.map(str::to_owned);
            async move {
                let mut call = hub.events().delete(&calendar, &event_id);
                if let Some(send) = &send_updates {
                    call = call.send_updates(send);
                }
                call.doit().await.map(|_| ())
            }
        })
        .await
    }
}
