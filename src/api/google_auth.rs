//! Connecting a Google account: authorize, callback, status, disconnect, audit.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::auth::{AdminAuth, UserAuth};
use super::error::{answers::*, ApiError, Fails};
use super::ApiTags;
use crate::domain::{AuditKind, ConnectionStatus as Status, UserId};
use crate::google::{missing_scopes, REQUIRED_SCOPES};
use crate::state::AppState;
use crate::store::{self, connections};
use crate::sync::connect::{self, CalendarMode};

/// Which calendar the slots go to.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum CalendarChoice {
    /// The user's primary calendar (default).
    Primary,
    /// A calendar of its own named "slotsync", created at the first connection of each
    /// Google account and reused afterwards.
    Dedicated,
}

impl From<CalendarChoice> for CalendarMode {
    fn from(c: CalendarChoice) -> Self {
        match c {
            CalendarChoice::Primary => CalendarMode::Primary,
            CalendarChoice::Dedicated => CalendarMode::Dedicated,
        }
    }
}

/// Where to send the browser.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuthorizeUrl {
    /// Google's consent page for this user; valid for 10 minutes, usable once.
    pub url: String,
}

/// A user's Google connection.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectionStatus {
    /// Whether a Google account is connected and usable.
    pub connected: bool,
    /// The Google account's email.
    pub google_email: Option<String>,
    /// The calendar slots go to (`primary` or a dedicated calendar's id).
    pub calendar_id: Option<String>,
    /// `active`, `needs_reauth` (connect again), `missing_scopes` (calendar access not
    /// granted), `calendar_missing` (the calendar was deleted in Google), `disconnecting`
    /// (slotsync's events are being deleted), `revoked` (disconnected) or `stopped`
    /// (`DELETE /sync`); absent if never connected.
    pub status: Option<String>,
    /// What the user should do next, when the connection is not `active`.
    pub next_step: Option<String>,
    /// Scopes Google granted.
    pub granted_scopes: Vec<String>,
    /// Required scopes Google did not grant.
    pub missing_scopes: Vec<String>,
    /// Whether every required scope was granted.
    pub has_required_scopes: bool,
    /// When the current access token expires.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// When the account was (last) connected.
    pub connected_at: Option<DateTime<Utc>>,
    /// The last connection error, e.g. why re-authorisation is needed.
    pub last_error: Option<String>,
}

impl ConnectionStatus {
    fn from_row(row: Option<connections::Connection>) -> Self {
        match row {
            None => Self {
                connected: false,
                google_email: None,
                calendar_id: None,
                status: None,
                next_step: Some("connect a Google account: GET /auth/google/authorize".into()),
                granted_scopes: vec![],
                missing_scopes: REQUIRED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                has_required_scopes: false,
                token_expires_at: None,
                connected_at: None,
                last_error: None,
            },
            Some(c) => {
                let missing = missing_scopes(&c.granted_scopes);
                Self {
                    connected: c.status == Status::Active,
                    next_step: next_step(c.status),
                    google_email: c.google_email,
                    calendar_id: Some(c.calendar_id),
                    status: Some(c.status.as_str().to_owned()),
                    granted_scopes: c.granted_scopes.split_whitespace().map(str::to_owned).collect(),
                    has_required_scopes: missing.is_empty(),
                    missing_scopes: missing,
                    token_expires_at: c.token_expires_at,
                    connected_at: Some(c.connected_at),
                    last_error: c.last_error,
                }
            }
        }
    }
}

/// What the user should do about a connection in `status`.
fn next_step(status: Status) -> Option<String> {
    let step = match status {
        Status::Active => return None,
        Status::NeedsReauth => {
            "Google no longer accepts the grant (revoked, expired, or the password changed): connect again              with GET /auth/google/authorize; waiting changes are pushed then"
        }
        Status::MissingScopes => crate::sync::home::MISSING_SCOPES_HINT,
        Status::CalendarMissing => crate::sync::home::CALENDAR_MISSING_HINT,
        Status::Disconnecting => {
            "slotsync is deleting the events it created (progress in GET /sync/status); the grant is revoked              when that ends. Connecting again stops it"
        }
        Status::Stopped => "syncing is stopped: POST /sync/resume",
        Status::Revoked => "connect a Google account: GET /auth/google/authorize",
    };
    Some(step.to_owned())
}

/// What a completed connection did to the user's slots.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConnectResult {
    /// The connection now.
    #[oai(flatten)]
    pub connection: ConnectionStatus,
    /// `first` (first connection), `continued` (the same account and calendar: nothing
    /// is pushed again), `rehomed` (another account or calendar: every live slot is pushed
    /// there) or `missing_scopes` (calendar access not granted: nothing syncs).
    pub outcome: String,
    /// Live slots queued for the new calendar (`rehomed`).
    pub slots_repushed: u64,
    /// The calendar the slots were in before (`rehomed`).
    pub previous_calendar_id: Option<String>,
    /// The Google account they were in before (`rehomed`).
    pub previous_google_email: Option<String>,
    /// What happened to the events in the previous calendar, and other notes.
    pub note: Option<String>,
}

impl ConnectResult {
    fn new(connection: connections::Connection, outcome: connect::ConnectOutcome) -> Self {
        let mut result = ConnectResult {
            connection: ConnectionStatus::from_row(Some(connection)),
            outcome: String::new(),
            slots_repushed: 0,
            previous_calendar_id: None,
            previous_google_email: None,
            note: None,
        };
        match outcome {
            connect::ConnectOutcome::First => result.outcome = "first".into(),
            connect::ConnectOutcome::Continued => result.outcome = "continued".into(),
            connect::ConnectOutcome::Rehomed { from, slots_repushed } => {
                result.outcome = "rehomed".into();
                result.slots_repushed = slots_repushed;
                result.previous_calendar_id = Some(from.calendar_id);
                result.previous_google_email = from.email;
                result.note = Some(
                    "the slots are pushed to the new calendar, each as one event; events slotsync wrote to the                      previous calendar were left there (disconnect with delete_events=true before switching to                      remove them)"
                        .into(),
                );
            }
            connect::ConnectOutcome::MissingScopes(missing) => {
                result.outcome = "missing_scopes".into();
                result.note = Some(format!("not granted: {}", missing.join(" ")));
            }
        }
        result
    }
}

/// What a disconnect did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DisconnectSummary {
    /// Notification channels stopped at Google.
    pub channels_stopped: u64,
    /// Events deleted from Google before answering (always 0: with `delete_events=true`
    /// the deletion runs in the background; see `events_to_delete`).
    pub events_deleted: u64,
    /// Events slotsync created that are being deleted in the background
    /// (`delete_events=true`; progress in `GET /sync/status`, `event_deletion`). Events
    /// imported from Google (`source: google`) are never deleted.
    pub events_to_delete: u64,
    /// Whether Google confirmed the revocation (false while the deletion runs: the grant
    /// is revoked when it ends).
    pub revoked_at_google: bool,
    /// Slots whose syncing is now paused.
    pub slots_paused: u64,
    /// `revoked`, or `disconnecting` while slotsync's events are being deleted.
    pub status: String,
}

/// The connection events `GET /auth/audit` lists.
const AUDIT_KINDS: &[AuditKind] = &[
    AuditKind::Connect,
    AuditKind::Rehome,
    AuditKind::Disconnect,
    AuditKind::DisconnectFinished,
    AuditKind::NeedsReauth,
    AuditKind::MissingScopes,
    AuditKind::CalendarMissing,
    AuditKind::DeletionsHeld,
    AuditKind::DeletionsApplied,
    AuditKind::DeletionsDiscarded,
];

/// One audit event.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEvent {
    /// `connect`, `rehome`, `disconnect`, `disconnect_finished`, `needs_reauth`,
    /// `missing_scopes`, `calendar_missing`, `deletions_held`, `deletions_applied` or
    /// `deletions_discarded`.
    pub kind: String,
    /// Details of the event.
    pub detail: serde_json::Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

#[derive(ApiResponse)]
enum CallbackResponse {
    /// Connected; the connection and what it did to the slots (when no `return_to` was given).
    #[oai(status = 200)]
    Connected(Json<Box<ConnectResult>>),
    /// Connected; the browser goes back to `return_to` with `?google=connected`.
    #[oai(status = 302)]
    Redirect(#[oai(header = "Location")] String),
}

/// How many authorizations a user may start per minute.
pub const AUTHORIZE_PER_MINUTE: u32 = 10;

/// Checks `return_to`: a path on this service, or a URL on a configured origin.
fn check_return_to(state: &AppState, return_to: Option<String>) -> Result<Option<String>, ApiError> {
    match return_to {
        None => Ok(None),
        Some(r) if super::return_to::is_allowed(&r, &state.settings.return_to_origins) => Ok(Some(r)),
        Some(_) => Err(ApiError::invalid(
            "return_to",
            "must be a path on this service (/…) or an http(s) URL on an origin listed in RETURN_TO_ORIGINS, \
             without spaces, control characters or backslashes",
        )),
    }
}

async fn authorize_for(
    state: &AppState,
    user: UserId,
    login_hint: Option<&str>,
    return_to: Option<String>,
    calendar: Option<CalendarChoice>,
    expected_email: Option<String>,
) -> Result<Json<AuthorizeUrl>, ApiError> {
    if state.authorize_limiter.check_key(&user.0).is_err() {
        return Err(ApiError::too_many_requests(60 / u64::from(AUTHORIZE_PER_MINUTE)));
    }
    let return_to = check_return_to(state, return_to)?;
    let mode = calendar.map_or(CalendarMode::Primary, CalendarMode::from);
    let url = connect::start_authorization(&state.sync, user, return_to, mode, login_hint, expected_email).await?;
    Ok(Json(AuthorizeUrl { url }))
}

/// Google account connection.
pub struct GoogleAuthApi;

#[OpenApi(tag = "ApiTags::Google")]
impl GoogleAuthApi {
    /// Start connecting your Google account
    ///
    /// Start connecting the caller's Google account: answers the Google consent URL to
    /// open in the browser (PKCE S256, signed single-use state, 10 minutes).
    #[oai(path = "/auth/google/authorize", method = "get", operation_id = "google_authorize")]
    async fn authorize(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Where the browser goes after connecting: a relative path or a URL on a configured origin.
        return_to: Query<Option<String>>,
        /// `primary` (default) or `dedicated`.
        calendar: Query<Option<CalendarChoice>>,
    ) -> Result<Json<AuthorizeUrl>, Fails<{ BAD_REQUEST | UNAVAILABLE | AUTHENTICATED }>> {
        let user = auth.user_id();
        Ok(authorize_for(&state, user, Some(&auth.0.email), return_to.0, calendar.0, None).await?)
    }

    /// A consent link for a user (admin)
    ///
    /// The consent URL for a user (admin), for a backend that sends the link itself.
    #[oai(
        path = "/auth/users/:user_id/authorize-link",
        method = "post",
        operation_id = "create_authorize_link"
    )]
    async fn authorize_link(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// The user's id.
        user_id: Path<super::path_id::PathUuid>,
        /// Where the browser goes after connecting.
        return_to: Query<Option<String>>,
        /// `primary` (default) or `dedicated`.
        calendar: Query<Option<CalendarChoice>>,
        /// Only this Google account may complete the authorization: another account chosen
        /// on the consent screen is refused at the callback and nothing changes. Also sent
        /// to Google as the `login_hint` (default: the user's email).
        expected_email: Query<Option<String>>,
    ) -> Result<Json<AuthorizeUrl>, Fails<{ BAD_REQUEST | NOT_FOUND | UNAVAILABLE | AUTHENTICATED }>> {
        let user = UserId(user_id.0.parse("user_id")?);
        let expected = match expected_email.0.map(|e| e.trim().to_owned()) {
            Some(e) if !e.contains('@') || e.len() > 254 => {
                return Err(ApiError::invalid("expected_email", "must be an email address").into())
            }
            other => other,
        };
        let row = store::users::find(&state.db, user)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        let hint = expected.clone().unwrap_or(row.email);
        Ok(authorize_for(&state, user, Some(&hint), return_to.0, calendar.0, expected).await?)
    }

    /// OAuth callback from Google
    ///
    /// Google sends the browser here after consent. Public: the signed state identifies the user.
    #[oai(path = "/auth/google/callback", method = "get", operation_id = "google_callback")]
    async fn callback(
        &self,
        state: Data<&AppState>,
        /// Authorization code from Google.
        code: Query<Option<String>>,
        /// The signed state from the authorize step.
        #[oai(name = "state")]
        signed_state: Query<Option<String>>,
        /// `access_denied` when the user declined.
        error: Query<Option<String>>,
    ) -> Result<CallbackResponse, Fails<{ BAD_REQUEST | CONFLICT | TOO_MANY_REQUESTS | INTERNAL | UNAVAILABLE }>> {
        let done = connect::complete_authorization(&state.sync, code.0, signed_state.0, error.0).await?;
        match done.return_to {
            Some(to) => {
                let sep = if to.contains('?') { '&' } else { '?' };
                Ok(CallbackResponse::Redirect(format!("{to}{sep}google=connected")))
            }
            None => Ok(CallbackResponse::Connected(Json(Box::new(ConnectResult::new(
                done.connection,
                done.outcome,
            ))))),
        }
    }

    /// Run sync initialisation again (admin)
    ///
    /// Run sync initialisation again for a connected user (admin).
    #[oai(
        path = "/auth/initialize/:user_id",
        method = "post",
        operation_id = "initialize_user"
    )]
    async fn initialize(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// The user's id.
        user_id: Path<super::path_id::PathUuid>,
    ) -> Result<Json<ConnectionStatus>, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | UNAVAILABLE | AUTHENTICATED }>>
    {
        let user = UserId(user_id.0.parse("user_id")?);
        connect::initialize_sync(&state.sync, user).await?;
        let row = connections::find(&state.db, user).await?;
        Ok(Json(ConnectionStatus::from_row(row)))
    }

    /// Move your slots to another calendar
    ///
    /// Move the caller's slots to another calendar of the connected Google account:
    /// `primary`, or the dedicated calendar (re-created if it was deleted in Google).
    /// Every live slot is pushed there as one event; events in the previous calendar are
    /// left in place. The way out of `calendar_missing` without a new consent.
    #[oai(path = "/auth/google/calendar", method = "post", operation_id = "choose_calendar")]
    async fn pick_calendar(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// `primary` or `dedicated`.
        calendar: Query<CalendarChoice>,
    ) -> Result<Json<ConnectResult>, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | UNAVAILABLE | AUTHENTICATED }>> {
        let (connection, outcome) =
            crate::sync::lifecycle::pick_calendar(&state.sync, auth.user_id(), calendar.0.into()).await?;
        Ok(Json(ConnectResult::new(connection, outcome)))
    }

    /// Your Google connection
    ///
    /// The caller's Google connection.
    #[oai(path = "/auth/google/connection", method = "get", operation_id = "get_connection")]
    async fn connection(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<ConnectionStatus>, Fails<{ AUTHENTICATED }>> {
        let row = connections::find(&state.db, auth.user_id()).await?;
        Ok(Json(ConnectionStatus::from_row(row)))
    }

    /// Disconnect your Google account
    ///
    /// Disconnect: stop channels, revoke at Google, erase the tokens, pause the slots.
    #[oai(path = "/auth/google/connection", method = "delete", operation_id = "disconnect")]
    async fn disconnect(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Also delete the events slotsync created in Google (`source: app` slots; never the
        /// user's own events imported as slots), in the background (default false).
        delete_events: Query<Option<bool>>,
    ) -> Result<Json<DisconnectSummary>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        Ok(do_disconnect(&state, auth.user_id(), delete_events.0.unwrap_or(false)).await?)
    }

    /// Disconnect your Google account (POST form)
    ///
    /// Same as `DELETE /auth/google/connection`.
    #[oai(path = "/auth/google/disconnect", method = "post", operation_id = "disconnect_post")]
    async fn disconnect_post(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Also delete the events slotsync pushed to Google (default false).
        delete_events: Query<Option<bool>>,
    ) -> Result<Json<DisconnectSummary>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        Ok(do_disconnect(&state, auth.user_id(), delete_events.0.unwrap_or(false)).await?)
    }

    /// Your connection events
    ///
    /// The caller's connection events (connect, rehome, disconnect, needs_reauth,
    /// missing_scopes, calendar_missing, deletions held/applied/discarded), newest first.
    #[oai(path = "/auth/audit", method = "get", operation_id = "list_audit_events")]
    async fn audit(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<Vec<AuditEvent>>, Fails<{ AUTHENTICATED }>> {
        let rows = store::audit::list(&state.db, auth.user_id(), AUDIT_KINDS, 200).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| AuditEvent {
                    kind: r.kind,
                    detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
                    at: r.at,
                })
                .collect(),
        ))
    }
}

async fn do_disconnect(
    state: &AppState,
    user: UserId,
    delete_events: bool,
) -> Result<Json<DisconnectSummary>, ApiError> {
    let d = crate::sync::disconnect::disconnect(&state.sync, user, delete_events).await?;
    Ok(Json(DisconnectSummary {
        channels_stopped: d.channels_stopped,
        events_deleted: d.events_deleted,
        events_to_delete: d.events_to_delete,
        revoked_at_google: d.revoked_at_google,
        slots_paused: d.slots_paused,
        status: d.status.as_str().to_owned(),
    }))
}
