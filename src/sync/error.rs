//! `SyncError`: every way an engine operation can fail, one enum for the whole of `sync`.
//! Each variant keeps its cause (the Google error class, the OAuth error, the store error)
//! and has one HTTP meaning, given in one place: `api/error.rs` maps them.
//!
//! The webhook receiver's refusals are reasons of their own ([`Refused`]): they answer
//! Google, not a client, and say which header was wrong.

use crate::domain::{ConnectionStatus, ValidationError};
/// The causes a [`SyncError`] carries, re-exported so the API maps them without reaching
/// into `google`.
pub use crate::google::{oauth::OAuthError, GoogleError};
use crate::store::StoreError;

/// What the engine's operations report.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    // The request.
    /// The input broke a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The slot has no such occurrence (names it), or does not repeat.
    #[error("{0}")]
    OccurrenceNotFound(String),
    /// The same `Idempotency-Key` was used with a different request body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,

    // The connection's state.
    /// Syncing needs a Google connection and the user has none.
    #[error("no Google account is connected; connect one first (POST /auth/users/{{id}}/authorize-link or GET /auth/google/authorize)")]
    NotConnected,
    /// The user's Google connection (the resource itself) does not exist.
    #[error("no Google account is connected")]
    NoConnection,
    /// The connection exists, but its status (named) does not allow syncing.
    #[error("the Google connection is `{0}`; connect the Google account again")]
    Unusable(ConnectionStatus),
    /// The connection cannot do what was asked in its current state (says why).
    #[error("{0}")]
    ConnectionUnusable(String),
    /// Another pull of this user is running (here or on another instance).
    #[error("a pull of this account is already running; it will pick up the latest changes")]
    PullRunning,
    /// The calendar no longer exists: the connection is now `calendar_missing`.
    #[error("the connected calendar no longer exists in Google; the connection is calendar_missing")]
    CalendarMissing,
    /// The grant lacks the calendar scope: the connection is now `missing_scopes`.
    #[error("the Google grant lacks calendar access; the connection is missing_scopes")]
    MissingScopes,
    /// The connection moved to another account or calendar while a pull ran.
    #[error("the connection moved to another account or calendar during the pull; a new pull follows")]
    Rehomed,
    /// `PUBLIC_BASE_URL` is not set, so Google has nowhere to deliver notifications.
    #[error(
        "push-notification channels are off: set PUBLIC_BASE_URL to the public HTTPS URL under which Google \
         reaches this service (changes made in Google arrive with the fallback sync meanwhile)"
    )]
    ChannelsOff,

    // Connecting (the OAuth flow).
    /// OAuth is not configured (names the missing setting).
    #[error("Google OAuth is not configured: set {0}")]
    OAuthNotConfigured(&'static str),
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
    /// The code exchange or a token call failed.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The authorization was meant for another Google account (`expected_email`).
    #[error("this link is for the Google account {expected}, but {} was chosen; nothing was connected — sign in to Google as {expected} and open the link again", got.as_deref().unwrap_or("an account without a visible address"))]
    WrongAccount { expected: String, got: Option<String> },
    /// A Calendar call made while connecting failed; nothing was stored.
    #[error("Google Calendar call failed: {0}")]
    Calendar(String),

    // Google, the store.
    /// Google refused or failed a call (the class says how).
    #[error(transparent)]
    Google(#[from] GoogleError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for SyncError {
    fn from(e: sea_orm::DbErr) -> Self {
        SyncError::Store(StoreError::Db(e))
    }
}

/// Why a push notification was refused. Nothing was written and nothing was asked of
/// Google.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The token is not this channel's.
    #[error("the channel token does not belong to this channel")]
    BadToken,
    /// No such channel.
    #[error("unknown notification channel")]
    UnknownChannel,
    /// The channel was stopped (replaced or disconnected).
    #[error("this notification channel was stopped")]
    Stopped,
    /// The channel expired.
    #[error("this notification channel expired")]
    Expired,
    /// The resource id is not the one Google gave for this channel.
    #[error("the resource id does not match the channel's")]
    ResourceMismatch,
    /// The store failed (Google retries on the 500 this becomes).
    #[error(transparent)]
    Store(#[from] StoreError),
}
