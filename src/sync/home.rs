//! A connection's *home*: the Google account and calendar its slots live in. Identity
//! rules (same account and calendar = a continuation, anything else = a re-homing), and
//! the two ways a home stops working while syncing — the calendar is deleted in Google, or
//! the grant loses the calendar scope — which put the connection in `calendar_missing` or
//! `missing_scopes` and pause the slots with the reason, instead of failing them for good
//! or deleting anything.

use serde_json::json;

use crate::domain::{AuditKind, ConnectionStatus, UserId};
use crate::google::oauth::GoogleAccount;
use crate::google::{CalendarGateway, GoneKind, GoogleError};
use crate::store::{self, audit, connections, StoreError};
use sea_orm::DatabaseConnection;

/// Where a connection's slots live: a Google account and one of its calendars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// The account's OpenID `sub` (stable), when known.
    pub sub: Option<String>,
    /// The account's address, when known (identifies legacy rows without `sub`).
    pub email: Option<String>,
    /// `primary` or a calendar id. `primary` of two accounts are two calendars.
    pub calendar_id: String,
}

impl Home {
    /// The home of a stored connection.
    pub fn of(conn: &connections::Connection) -> Self {
        Self {
            sub: conn.google_sub.clone(),
            email: conn.google_email.clone(),
            calendar_id: conn.calendar_id.clone(),
        }
    }

    /// `account`'s calendar `calendar_id`.
    pub fn new(account: &GoogleAccount, calendar_id: String) -> Self {
        Self {
            sub: account.sub.clone(),
            email: account.email.clone(),
            calendar_id,
        }
    }

    /// Whether both name the same Google account: by `sub` when both know it, else by
    /// address (case-insensitive). Two unknown accounts are not assumed to be the same.
    pub fn same_account(&self, other: &Home) -> bool {
        match (&self.sub, &other.sub) {
            (Some(a), Some(b)) => a == b,
            _ => match (&self.email, &other.email) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            },
        }
    }

    /// Whether `other` is this very home (a reconnect that continues).
    pub fn is_same(&self, other: &Home) -> bool {
        self.same_account(other) && self.calendar_id == other.calendar_id
    }

    /// How the account is keyed for its remembered dedicated calendar.
    pub fn account_key(&self) -> Option<String> {
        self.sub
            .clone()
            .or_else(|| self.email.as_ref().map(|e| e.to_lowercase()))
    }

    /// The key slots remember their event in this home under: `<account>|<calendar>`.
    pub fn key(&self) -> String {
        format!(
            "{}|{}",
            self.account_key().unwrap_or_else(|| "?".to_owned()),
            self.calendar_id
        )
    }

    /// The home as an audit detail.
    pub fn describe(&self) -> serde_json::Value {
        json!({ "google_email": self.email, "google_sub": self.sub, "calendar_id": self.calendar_id })
    }
}

/// What the user should do when the calendar is gone.
pub const CALENDAR_MISSING_HINT: &str = "the connected Google calendar no longer exists (deleted in Google); \
     connect again (GET /auth/google/authorize, calendar=primary or dedicated) or pick a calendar with \
     POST /auth/google/calendar: the slots are pushed there, nothing is lost";

/// What the user should do when the calendar scope is missing.
pub const MISSING_SCOPES_HINT: &str = "Google did not grant calendar access (the calendar permission was \
     unticked on the consent screen, or removed in the Google account); connect again with \
     GET /auth/google/authorize and allow \"See, edit, share and permanently delete all the calendars\"";

/// After a call on `calendar` answered 404: asks Google whether the calendar itself still
/// exists. If it does not, the connection becomes `calendar_missing`, its slots are paused
/// with the reason, and `true` is returned; a calendar that exists (the 404 was about an
/// event, or transient) returns `false`.
pub async fn calendar_missing(
    db: &DatabaseConnection,
    gateway: &dyn CalendarGateway,
    user: UserId,
    calendar: &str,
) -> Result<bool, StoreError> {
    match gateway.get_calendar(user, calendar).await {
        Err(GoogleError::Gone(GoneKind::NotFound | GoneKind::Deleted)) => {}
        _ => return Ok(false),
    }
    let reason = format!("calendar `{calendar}`: {CALENDAR_MISSING_HINT}");
    degrade(
        db,
        user,
        ConnectionStatus::CalendarMissing,
        AuditKind::CalendarMissing,
        &reason,
        json!({ "calendar_id": calendar }),
    )
    .await?;
    Ok(true)
}

/// Google refused a call for a missing scope (403 `insufficientPermissions`): the
/// connection becomes `missing_scopes` and its slots wait, paused with the reason.
pub async fn scopes_missing(db: &DatabaseConnection, user: UserId, google_said: &str) -> Result<(), StoreError> {
    degrade(
        db,
        user,
        ConnectionStatus::MissingScopes,
        AuditKind::MissingScopes,
        MISSING_SCOPES_HINT,
        json!({ "google_said": google_said }),
    )
    .await
}

/// Moves an active connection to `status`, pauses the live slots with `reason`, and logs
/// it as `kind` (once: a connection already moved is left alone).
async fn degrade(
    db: &DatabaseConnection,
    user: UserId,
    status: ConnectionStatus,
    kind: AuditKind,
    reason: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let txn = store::begin_write(db).await?;
    if connections::degrade(&txn, user, status, reason).await? {
        let paused = store::slots::pause_all(&txn, user, reason).await?;
        tracing::warn!(user_id = %user, status = status.as_str(), paused, "connection cannot sync: {reason}");
        let mut detail = detail;
        detail["slots_paused"] = json!(paused);
        detail["reason"] = json!(reason);
        audit::record(&txn, user, None, kind, detail).await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(sub: Option<&str>, email: Option<&str>, calendar: &str) -> Home {
        Home {
            sub: sub.map(str::to_owned),
            email: email.map(str::to_owned),
            calendar_id: calendar.to_owned(),
        }
    }

    #[test]
    fn the_same_account_is_told_by_sub_first_then_by_address() {
        let a = home(Some("1"), Some("a@x.com"), "primary");
        assert!(a.is_same(&home(Some("1"), Some("renamed@x.com"), "primary")));
        assert!(
            !a.is_same(&home(Some("2"), Some("a@x.com"), "primary")),
            "another account's primary"
        );
        assert!(
            !a.is_same(&home(Some("1"), Some("a@x.com"), "cal-1")),
            "another calendar"
        );
        // A row from before `sub` was recorded: the address decides.
        let legacy = home(None, Some("A@x.com"), "primary");
        assert!(legacy.is_same(&home(Some("1"), Some("a@x.com"), "primary")));
        assert!(!home(None, None, "primary").is_same(&home(None, None, "primary")));
    }
}
