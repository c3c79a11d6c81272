//! Connecting a Google account: start an authorization (signed, single-use state with the
//! PKCE verifier kept server-side), complete it at the callback, initialise sync. What a
//! completed authorization does to the user's slots is in `lifecycle.rs`.

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::context::SyncContext;
use crate::crypto::{random_token, Secret};
use crate::domain::{AuditKind, ConnectionStatus, UserId};
use crate::google::missing_scopes;
use crate::google::oauth::OAuthClient;
use crate::store::{self, connections};
use crate::sync::channels;
use crate::sync::home::Home;
use crate::sync::lifecycle;
use crate::sync::SyncError;

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
    /// The spelling stored with an authorization in flight.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarMode::Primary => "primary",
            CalendarMode::Dedicated => "dedicated",
        }
    }

    /// Reads the stored spelling (anything but `dedicated` is the primary calendar).
    pub fn parse(raw: &str) -> Self {
        if raw == "dedicated" {
            CalendarMode::Dedicated
        } else {
            CalendarMode::Primary
        }
    }
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

pub(super) fn oauth(state: &SyncContext) -> Result<&OAuthClient, SyncError> {
    state.oauth.as_ref().map_err(|var| SyncError::OAuthNotConfigured(var))
}

/// Starts an authorization for `user` and returns the Google URL to send the browser to.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn start_authorization(
    state: &SyncContext,
    user: UserId,
    return_to: Option<String>,
    mode: CalendarMode,
    login_hint: Option<&str>,
    expected_email: Option<String>,
) -> Result<String, SyncError> {
    let oauth = oauth(state)?;
    let nonce = random_token(18);
    let expires_at = Utc::now() + Duration::minutes(STATE_TTL_MINUTES);
    let (challenge, verifier) = OAuthClient::new_pkce();
    store::oauth_states::insert(
        &state.db,
        &nonce,
        user,
        state.keys.encrypt(verifier.secret(), user.0, Secret::PkceVerifier),
        return_to,
        mode.as_str(),
        expected_email,
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

/// How a completed authorization relates to what the user had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// The first connection of this user.
    First,
    /// The same Google account and calendar as before: nothing is pushed again; what was
    /// waiting (the backlog) is pushed.
    Continued,
    /// Another account or calendar: every live slot is pushed to the new calendar as one
    /// event; events left in the previous calendar stay there.
    Rehomed {
        /// The previous home.
        from: Home,
        /// Live slots queued for the new calendar.
        slots_repushed: u64,
    },
    /// Google granted the tokens without the calendar scope: nothing syncs until it is.
    MissingScopes(Vec<String>),
}

/// A completed connection.
#[derive(Debug)]
pub struct Connected {
    pub user: UserId,
    pub connection: connections::Connection,
    pub return_to: Option<String>,
    pub outcome: ConnectOutcome,
}

/// Completes an authorization at the callback: checks the state, exchanges the code with
/// the PKCE verifier, learns who the Google account is, and then either records a grant
/// lacking the calendar scope, continues the user's home, or re-homes the slots to the new
/// account or calendar ([`ConnectOutcome`]); then initialises sync.
#[tracing::instrument(skip_all, err)]
pub async fn complete_authorization(
    state: &SyncContext,
    code: Option<String>,
    signed_state: Option<String>,
    error: Option<String>,
) -> Result<Connected, SyncError> {
    let oauth = oauth(state)?;
    let signed = signed_state.ok_or(SyncError::InvalidState("the callback carries no state"))?;
    let payload = state
        .keys
        .verify_state(&signed)
        .map_err(|_| SyncError::InvalidState("the state was altered or is not ours"))?;
    let payload: StatePayload =
        serde_json::from_slice(&payload).map_err(|_| SyncError::InvalidState("the state is malformed"))?;
    if payload.e < Utc::now().timestamp() {
        return Err(SyncError::InvalidState(
            "the authorization expired (10 minutes); start again",
        ));
    }
    // Consume the state first, so neither a decline nor a success can be replayed.
    let pending = store::oauth_states::consume(&state.db, &payload.n)
        .await?
        .ok_or(SyncError::InvalidState(
            "this authorization was already used; start again",
        ))?;
    if pending.user_id != payload.u {
        return Err(SyncError::InvalidState("the state does not match its authorization"));
    }
    match error.as_deref() {
        Some("access_denied") => return Err(SyncError::AccessDenied),
        Some(other) => return Err(SyncError::GoogleRefused(other.to_owned())),
        None => {}
    }
    let code = code.ok_or(SyncError::MissingCode)?;
    let verifier = state
        .keys
        .decrypt(&pending.code_verifier_enc, pending.user_id, Secret::PkceVerifier)
        .map_err(|_| SyncError::InvalidState("the stored verifier cannot be read"))?;
    let tokens = oauth.exchange_code(&code, verifier).await?;
    let account = oauth.userinfo(&tokens.access_token).await.unwrap_or_default();
    if let Some(expected) = &pending.expected_email {
        if !account
            .email
            .as_deref()
            .is_some_and(|got| got.eq_ignore_ascii_case(expected))
        {
            // Nothing is stored; the grant is not revoked either: that account may be
            // another user's connection, whose grant a revocation would end.
            return Err(SyncError::WrongAccount {
                expected: expected.clone(),
                got: account.email.clone(),
            });
        }
    }
    let user = UserId(pending.user_id);
    let new = |calendar_id: String| connections::NewConnection {
        user_id: user,
        google_email: account.email.clone(),
        google_sub: account.sub.clone(),
        calendar_id,
        access_token_enc: state.keys.encrypt(&tokens.access_token, user.0, Secret::AccessToken),
        refresh_token_enc: tokens
            .refresh_token
            .as_deref()
            .map(|r| state.keys.encrypt(r, user.0, Secret::RefreshToken)),
        token_expires_at: tokens.expires_at,
        granted_scopes: tokens.scopes.clone(),
    };
    let missing = missing_scopes(&tokens.scopes);
    let existing = connections::find(&state.db, user).await?;
    let (connection, outcome) = if !missing.is_empty() {
        let connection = lifecycle::record_missing_scopes(state, new("primary".to_owned()), &missing).await?;
        (connection, ConnectOutcome::MissingScopes(missing))
    } else {
        let mode = CalendarMode::parse(&pending.calendar_mode);
        let calendar_id = lifecycle::calendar_for(state, user, &account, mode, &tokens.access_token).await?;
        let home = Home::new(&account, calendar_id.clone());
        lifecycle::settle_home(state, new(calendar_id), existing.as_ref(), &home, &tokens.scopes).await?
    };
    Ok(Connected {
        user,
        connection,
        return_to: pending.return_to,
        outcome,
    })
}

/// The one entry point that starts syncing a connected user: it puts the user's paused
/// slots back in the outbox, wakes the push worker, (re)creates the user's notification
/// channel, and requests a pull (the first one is a full sync: it imports the calendar).
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn initialize_sync(state: &SyncContext, user: UserId) -> Result<(), SyncError> {
    let conn = connections::find(&state.db, user)
        .await?
        .ok_or(SyncError::NoConnection)?;
    if conn.status != ConnectionStatus::Active {
        return Err(SyncError::NoConnection);
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
pub(super) async fn start_channel(state: &SyncContext, user: UserId) {
    let problem = match channels::recreate(state, user).await {
        Ok(_) | Err(SyncError::ChannelsOff) => return,
        Err(e) => e.to_string(),
    };
    tracing::warn!(user_id = %user, error = %problem, "no notification channel was created");
    if let Err(e) = store::audit::record(
        &state.db,
        user,
        None,
        AuditKind::ChannelFailed,
        json!({ "error": problem }),
    )
    .await
    {
        tracing::warn!(user_id = %user, error = %e, "could not record a channel failure");
    }
}
