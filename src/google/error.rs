//! Google's errors, classified by what a client should do about them. The class is read
//! from the error body's `errors[].reason` first and the status second, because one status
//! means different things: a 403 is a quota to wait out (`rateLimitExceeded`) or a
//! refusal to accept (`forbiddenForNonOrganizer`); a 410 is a token to drop
//! (`fullSyncRequired`) or an event already gone (`deleted`).

use google_calendar3::common;
use serde_json::Value;

use super::vault::VaultError;

/// Why an event is no longer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneKind {
    /// 404 `notFound`.
    NotFound,
    /// 410 `deleted`.
    Deleted,
    /// 410 `fullSyncRequired`: the sync token is no longer valid.
    FullSyncRequired,
}

/// Which precondition a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// 409 `duplicate`: an event with this id exists (or existed).
    Duplicate,
    /// 412 `conditionNotMet`: the event changed since the etag we sent.
    EtagMismatch,
}

/// A failed Google call, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoogleError {
    /// Try again later with backoff: quota (429, 403 rate/quota reasons), 5xx, transport.
    #[error("Google is unavailable or over quota ({0}); will retry")]
    Retryable(String),
    /// The credentials are refused even after a refresh: the user must reconnect.
    #[error("Google refused the credentials ({0}); the user must reconnect")]
    Auth(String),
    /// The grant lacks a scope the call needs (403 `insufficientPermissions`): the user
    /// unticked it on the consent screen or removed it later; connecting again with the
    /// scope granted is the only cure.
    #[error("the Google grant lacks a needed permission ({0}); connect again and allow calendar access")]
    MissingScopes(String),
    /// A write's precondition failed.
    #[error("conflict at Google: {0:?}")]
    Conflict(ConflictKind),
    /// The resource is gone.
    #[error("gone at Google: {0:?}")]
    Gone(GoneKind),
    /// A 403 with no reason a client can act on (`forbidden`): Google has answered so to
    /// writes on events deleted in its UI, where 410 `deleted` was meant. A write to a
    /// known event is checked with `events.get` (deleted → as for 410); anything else
    /// treats it as [`GoogleError::Fatal`].
    #[error("Google refused the request: {0}")]
    Forbidden(String),
    /// Google refuses this deployment's OAuth client (`invalid_client`, `deleted_client`):
    /// nobody's calls can succeed until an operator fixes it; the deployment is degraded
    /// and the engine waits (see `client_health.rs`).
    #[error("Google refuses this deployment's OAuth client ({0})")]
    ClientBroken(String),
    /// The request itself is wrong; retrying cannot help.
    #[error("Google rejected the request: {0}")]
    Fatal(String),
}

/// Reasons that mean "slow down", whatever the status.
const RATE_REASONS: [&str; 4] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
];

/// 403 reasons that are a refusal of the request as it is (not a deleted event in
/// disguise): retrying or re-creating cannot help.
const REFUSAL_REASONS: [&str; 5] = [
    "forbiddenForNonOrganizer",
    "eventTypeRestriction",
    "requiredAccessLevel",
    "forbiddenForServiceAccounts",
    "malformedWorkingLocationEvent",
];

impl GoogleError {
    /// Classifies a status and the error body Google sent with it.
    pub fn from_status_and_body(status: u16, body: &Value) -> Self {
        let reason = body
            .pointer("/error/errors/0/reason")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}"));
        let described = if reason.is_empty() {
            format!("{status} {message}")
        } else {
            format!("{status} {reason}: {message}")
        };
        if RATE_REASONS.contains(&reason) {
            return GoogleError::Retryable(described);
        }
        match (status, reason) {
            (401, _) => GoogleError::Auth(described),
            (403, "insufficientPermissions") => GoogleError::MissingScopes(described),
            (403, r) if REFUSAL_REASONS.contains(&r) => GoogleError::Fatal(described),
            (403, _) => GoogleError::Forbidden(described),
            (404, _) => GoogleError::Gone(GoneKind::NotFound),
            (409, _) => GoogleError::Conflict(ConflictKind::Duplicate),
            (410, "fullSyncRequired") => GoogleError::Gone(GoneKind::FullSyncRequired),
            (410, _) => GoogleError::Gone(GoneKind::Deleted),
            (412, _) => GoogleError::Conflict(ConflictKind::EtagMismatch),
            (408 | 429, _) | (500..=599, _) => GoogleError::Retryable(described),
            _ => GoogleError::Fatal(described),
        }
    }

    /// Classifies what google-calendar3 returned.
    pub fn from_client(err: common::Error) -> Self {
        match err {
            // google-calendar3 turns any non-2xx JSON body into `BadRequest`; the status is
            // in the body's `error.code`.
            common::Error::BadRequest(body) => {
                let status = body
                    .pointer("/error/code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(400);
                Self::from_status_and_body(status, &body)
            }
            common::Error::Failure(response) => Self::from_status_and_body(response.status().as_u16(), &Value::Null),
            common::Error::HttpError(e) => GoogleError::Retryable(format!("transport: {e}")),
            common::Error::Io(e) => GoogleError::Retryable(format!("transport: {e}")),
            // A 2xx whose body could not be read: the call may have taken effect; a retry
            // is safe because every write is idempotent (derived ids, If-Match).
            common::Error::JsonDecodeError(_, e) => GoogleError::Retryable(format!("unreadable response: {e}")),
            common::Error::MissingToken(e) => Self::from_token_error(e.as_ref()),
            other => GoogleError::Fatal(other.to_string()),
        }
    }

    /// Classifies a failure to get an access token.
    pub fn from_token_error(err: &(dyn std::error::Error + 'static)) -> Self {
        match err.downcast_ref::<VaultError>() {
            Some(VaultError::NeedsReauth) => GoogleError::Auth("the refresh token was refused".into()),
            Some(VaultError::NotConnected) => GoogleError::Auth("no Google account is connected".into()),
            Some(VaultError::OAuth(super::oauth::OAuthError::NotConfigured(var))) => {
                GoogleError::Fatal(format!("Google OAuth is not configured: set {var}"))
            }
            Some(VaultError::Crypto(e)) => GoogleError::Fatal(format!("stored tokens are unreadable: {e}")),
            Some(VaultError::ClientBroken(why)) => GoogleError::ClientBroken(why.clone()),
            _ => GoogleError::Retryable(format!("token refresh failed: {err}")),
        }
    }

    /// Whether a later retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, GoogleError::Retryable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: u16, reason: &str) -> Value {
        json!({"error": {"code": code, "message": "m", "errors": [{"domain": "global", "reason": reason, "message": "m"}]}})
    }

    fn classify(code: u16, reason: &str) -> GoogleError {
        GoogleError::from_client(common::Error::BadRequest(body(code, reason)))
    }

    #[test]
    fn quota_reasons_are_retryable_whatever_the_status() {
        for (code, reason) in [
            (403, "userRateLimitExceeded"),
            (403, "rateLimitExceeded"),
            (403, "quotaExceeded"),
            (429, "rateLimitExceeded"),
        ] {
            assert!(classify(code, reason).is_retryable(), "{code} {reason}");
        }
    }

    #[test]
    fn a_403_without_a_quota_reason_is_not_retried() {
        assert!(matches!(
            classify(403, "forbiddenForNonOrganizer"),
            GoogleError::Fatal(_)
        ));
        assert!(matches!(
            classify(403, "insufficientPermissions"),
            GoogleError::MissingScopes(_)
        ));
    }

    #[test]
    fn a_403_without_an_actionable_reason_is_told_apart_for_the_deleted_event_check() {
        assert!(matches!(classify(403, "forbidden"), GoogleError::Forbidden(_)));
        assert!(matches!(classify(403, "eventTypeRestriction"), GoogleError::Fatal(_)));
        assert!(classify(403, "userRateLimitExceeded").is_retryable());
    }

    #[test]
    fn the_410_reason_tells_a_deleted_event_from_a_stale_sync_token() {
        assert_eq!(classify(410, "deleted"), GoogleError::Gone(GoneKind::Deleted));
        assert_eq!(
            classify(410, "fullSyncRequired"),
            GoogleError::Gone(GoneKind::FullSyncRequired)
        );
        assert_eq!(classify(404, "notFound"), GoogleError::Gone(GoneKind::NotFound));
    }

    #[test]
    fn conflicts_auth_server_errors_and_bad_requests_are_told_apart() {
        assert_eq!(
            classify(409, "duplicate"),
            GoogleError::Conflict(ConflictKind::Duplicate)
        );
        assert_eq!(
            classify(412, "conditionNotMet"),
            GoogleError::Conflict(ConflictKind::EtagMismatch)
        );
        assert!(matches!(classify(401, "authError"), GoogleError::Auth(_)));
        assert!(classify(500, "backendError").is_retryable());
        assert!(classify(503, "backendError").is_retryable());
        let fatal = classify(400, "timeRangeEmpty");
        assert!(
            matches!(&fatal, GoogleError::Fatal(m) if m.contains("timeRangeEmpty")),
            "{fatal:?}"
        );
    }

    #[test]
    fn token_errors_become_auth_or_retryable() {
        let needs = VaultError::NeedsReauth;
        assert!(matches!(GoogleError::from_token_error(&needs), GoogleError::Auth(_)));
        let transport = VaultError::OAuth(super::super::oauth::OAuthError::Transport("down".into()));
        assert!(GoogleError::from_token_error(&transport).is_retryable());
        let broken = VaultError::ClientBroken("invalid_client".into());
        assert!(matches!(
            GoogleError::from_token_error(&broken),
            GoogleError::ClientBroken(_)
        ));
    }
}
