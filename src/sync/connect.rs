//! Connecting a Google account: start an authorization (signed, single-use state with the
//! PKCE verifier kept server-side), complete it at the callback, initialise sync, and
//! disconnect.

use chrono::{Duration, Utc};
use google_calendar3::api::Calendar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::crypto::random_token;
use crate::domain::UserId;
use crate::google::hub::calendar_hub;
use crate::google::missing_scopes;
use crate::google::oauth::{OAuthClient, OAuthError};
use crate::state::AppState;
use crate::store::{self, connections, StoreError};
use crate::sync::channels::{self, ChannelError};

/// How long an authorization may take.
pub const STATE_TTL_MINUTES: i64 = 10;
/// Summary of the dedicated calendar slotsync creates when asked.
pub const DEDICATED_CALENDAR_SUMMARY: &str = "slotsync";

/// Which calendar the slots go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarMode {
    /// The user's primary calendar.
    Primary,
    /// A calendar of its own, created at connection.
    Dedicated,
}

impl CalendarMode {
    fn as_str(self) -> &'static str {
        match self {
            CalendarMode::Primary => "primary",
            CalendarMode::Dedicated => "dedicated",
        }
    }
}

/// What connecting can report.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// OAuth is not configured.
    #[error("Google OAuth is not configured: set {0}")]
    NotConfigured(&'static str),
    /// The state is missing, forged, expired or already used.
    #[error("{0}")]
    InvalidState(&'static str),
    /// The user declined at Google's consent screen.
    #[error("the Google account owner declined access; nothing was connected")]
    AccessDenied,
    /// Google answered the callback with another error.
    #[error("Google returned an error: {0}")]
    GoogleRefused(String),
    /// The callback carries no code.
    #[error("the callback carries no authorization code")]
    MissingCode,
    /// The code exchange failed.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A Calendar call failed.
    #[error("Google Calendar call failed: {0}")]
    Calendar(String),
    /// The user has no connection.
    #[error("no Google account is connected")]
    NotConnected,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize, Deserialize)]
struct StatePayload {
    /// User id.
    u: Uuid,
    /// Nonce (the `oauth_states` key).
    n: String,
    /// Expiry, unix seconds.
    e: i64,
}

fn oauth(state: &AppState) -> Result<&OAuthClient, ConnectError> {
    state.oauth.as_ref().map_err(|var| ConnectError::NotConfigured(var))
}

/// Starts an authorization for `user` and returns the Google URL to send the browser to.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn start_authorization(
    state: &AppState,
    user: UserId,
    return_to: Option<String>,
    mode: CalendarMode,
    login_hint: Option<&str>,
) -> Result<String, ConnectError> {
    let oauth = oauth(state)?;
    let nonce = random_token(18);
    let expires_at = Utc::now() + Duration::minutes(STATE_TTL_MINUTES);
    let (challenge, verifier) = OAuthClient::new_pkce();
    store::oauth_states::insert(
        &state.db,
        &nonce,
        user.0,
        state.keys.encrypt(verifier.secret()),
        return_to,
        mode.as_str(),
        expires_at,
    )
    .await?;
    let payload = serde_json::to_vec(&StatePayload {
        u: user.0,
        n: nonce,
        e: expires_at.timestamp(),
    })
    .expect("the state payload serialises");
    Ok(oauth.authorize_url(state.keys.sign_state(&payload), challenge, login_hint))
}

/// A completed connection.
#[derive(Debug)]
pub struct Connected {
    pub user: UserId,
    pub connection: connections::Connection,
    pub return_to: Option<String>,
}

/// Completes an authorization at the callback: checks the state, exchanges the code with
/// the PKCE verifier, stores the tokens encrypted, logs `connect`, initialises sync.
#[tracing::instrument(skip_all, err)]
pub async fn complete_authorization(
    state: &AppState,
    code: Option<String>,
    signed_state: Option<String>,
    error: Option<String>,
) -> Result<Connected, ConnectError> {
    let oauth = oauth(state)?;
    let signed = signed_state.ok_or(ConnectError::InvalidState("the callback carries no state"))?;
    let payload = state
        .keys
        .verify_state(&signed)
        .map_err(|_| ConnectError::InvalidState("the state was altered or is not ours"))?;
    let payload: StatePayload =
        serde_json::from_slice(&payload).map_err(|_| ConnectError::InvalidState("the state is malformed"))?;
    if payload.e < Utc::now().timestamp() {
        return Err(ConnectError::InvalidState(
            "the authorization expired (10 minutes); start again",
        ));
    }
    // Consume the state first, so neither a decline nor a success can be replayed.
    let pending = store::oauth_states::consume(&state.db, &payload.n)
        .await?
        .ok_or(ConnectError::InvalidState(
            "this authorization was already used; start again",
        ))?;
    if pending.user_id != payload.u {
        return Err(ConnectError::InvalidState("the state does not match its authorization"));
    }
    match error.as_deref() {
        Some("access_denied") => return Err(ConnectError::AccessDenied),
        Some(other) => return Err(ConnectError::GoogleRefused(other.to_owned())),
        None => {}
    }
    let code = code.ok_or(ConnectError::MissingCode)?;
    let verifier = state
        .keys
        .decrypt(&pending.code_verifier_enc)
        .map_err(|_| ConnectError::InvalidState("the stored verifier cannot be read"))?;
    let tokens = oauth.exchange_code(&code, verifier).await?;
    let google_email = oauth.userinfo_email(&tokens.access_token).await.ok().flatten();
    let calendar_id = if pending.calendar_mode == CalendarMode::Dedicated.as_str() {
        create_dedicated_calendar(state, &tokens.access_token).await?
    } else {
        "primary".to_owned()
    };
    let user = UserId(pending.user_id);
    let connection = connections::upsert(
        &state.db,
        connections::NewConnection {
            user_id: user.0,
            google_email: google_email.clone(),
            calendar_id: calendar_id.clone(),
            access_token_enc: state.keys.encrypt(&tokens.access_token),
            refresh_token_enc: tokens.refresh_token.as_deref().map(|r| state.keys.encrypt(r)),
            token_expires_at: tokens.expires_at,
            granted_scopes: tokens.scopes.clone(),
        },
    )
    .await?;
    store::audit::record(
        &state.db,
        user.0,
        None,
        "connect",
        json!({ "google_email": google_email, "calendar_id": calendar_id,
                "granted_scopes": tokens.scopes, "missing_scopes": missing_scopes(&tokens.scopes) }),
    )
    .await?;
    initialize_sync(state, user).await?;
    Ok(Connected {
        user,
        connection,
        return_to: pending.return_to,
    })
}

async fn create_dedicated_calendar(state: &AppState, access_token: &str) -> Result<String, ConnectError> {
    let hub = calendar_hub(&state.endpoints, access_token.to_owned());
    let calendar = Calendar {
        summary: Some(DEDICATED_CALENDAR_SUMMARY.to_owned()),
        ..Default::default()
    };
    let (_, created) = hub
        .calendars()
        .insert(calendar)
        .doit()
        .await
        .map_err(|e| ConnectError::Calendar(e.to_string()))?;
    created
        .id
        .ok_or_else(|| ConnectError::Calendar("calendars.insert returned no id".into()))
}

/// The one entry point that starts syncing a connected user: it puts the user's paused
/// slots back in the outbox, wakes the push worker, (re)creates the user's notification
/// channel, and requests a pull (the first one is a full sync: it imports the calendar).
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn initialize_sync(state: &AppState, user: UserId) -> Result<(), ConnectError> {
    let conn = connections::find(&state.db, user.0)
        .await?
        .ok_or(ConnectError::NotConnected)?;
    if conn.status != connections::ACTIVE {
        return Err(ConnectError::NotConnected);
    }
    let resumed = store::slots::resume_paused(&state.db, user, Utc::now()).await?;
    tracing::info!(resumed, "sync initialised");
    state.push_waker.wake();
    start_channel(state, user).await;
    state.pulls.request(user);
    Ok(())
}

/// Creates the user's notification channel, retiring older ones. Never fails the caller:
/// without a channel, changes made in Google still arrive with the fallback sync, and the
/// renewal job retries a creation that failed for a passing reason.
async fn start_channel(state: &AppState, user: UserId) {
    let problem = match channels::recreate(state, user).await {
        Ok(_) | Err(ChannelError::Off) => return,
        Err(e) => e.to_string(),
    };
    tracing::warn!(user_id = %user, error = %problem, "no notification channel was created");
    if let Err(e) = store::audit::record(&state.db, user.0, None, "channel_failed", json!({ "error": problem })).await {
        tracing::warn!(user_id = %user, error = %e, "could not record a channel failure");
    }
}

/// What a disconnect did.
#[derive(Debug, Default)]
pub struct Disconnected {
    pub channels_stopped: u64,
    pub events_deleted: u64,
    pub revoked_at_google: bool,
    pub slots_paused: u64,
}

/// Disconnects: stops the user's channels, optionally deletes the events slotsync pushed,
/// revokes the grant at Google, erases the tokens, pauses the slots, logs `disconnect`.
/// Google-side steps are best effort (a user must be able to leave even if Google is
/// unreachable); what failed is recorded in the audit event.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn disconnect(state: &AppState, user: UserId, delete_events: bool) -> Result<Disconnected, ConnectError> {
    let conn = connections::find(&state.db, user.0)
        .await?
        .ok_or(ConnectError::NotConnected)?;
    let mut done = Disconnected::default();
    let mut problems = Vec::new();
    let stopped = channels::stop_all(state, user).await?;
    done.channels_stopped = stopped.stopped;
    problems.extend(stopped.problems);
    let hub = calendar_hub(&state.endpoints, state.vault.for_user(user));
    if delete_events {
        for slot in store::slots::with_events(&state.db, user).await? {
            let event_id = slot.google_event_id.clone().unwrap_or_default();
            match hub.events().delete(&conn.calendar_id, &event_id).doit().await {
                Ok(_) => done.events_deleted += 1,
                Err(e) => problems.push(format!("event {event_id}: {e}")),
            }
        }
    }
    // Revoking the refresh token ends the whole grant; the access token is the fallback.
    let token = conn
        .refresh_token_enc
        .as_ref()
        .or(conn.access_token_enc.as_ref())
        .and_then(|enc| state.keys.decrypt(enc).ok());
    if let (Some(token), Ok(oauth)) = (token, oauth(state)) {
        match oauth.revoke(&token).await {
            Ok(()) => done.revoked_at_google = true,
            Err(e) => problems.push(format!("revoke: {e}")),
        }
    }
    connections::erase_tokens(&state.db, user.0).await?;
    state.vault.forget(user);
    done.slots_paused = store::slots::pause_all(
        &state.db,
        user,
        "Google account disconnected; connect again to resume syncing",
    )
    .await?;
    store::audit::record(
        &state.db,
        user.0,
        None,
        "disconnect",
        json!({ "channels_stopped": done.channels_stopped, "events_deleted": done.events_deleted,
                "revoked_at_google": done.revoked_at_google, "problems": problems }),
    )
    .await?;
    Ok(done)
}
