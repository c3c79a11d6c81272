//! Everything that talks to Google: endpoints, the OAuth client, the token vault, the
//! Calendar gateway with its rate limits and error classification, and the slot ↔ event
//! mapping. Real Google by default; `GOOGLE_EMULATOR_URL` points every endpoint at an
//! emulator.

pub mod client_health;
pub mod error;
pub mod gateway;
pub mod hub;
pub mod limits;
pub mod mapping;
pub mod oauth;
pub mod vault;

pub use error::{ConflictKind, GoneKind, GoogleError};
pub use gateway::{CalendarGateway, EventPage, GoogleCalendar, ListFrom, WatchedChannel};

use crate::config::Settings;

/// Full calendar access: slotsync writes events and watches calendars.
pub const SCOPE_CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
/// OpenID Connect, for the Google account's identity.
pub const SCOPE_OPENID: &str = "openid";
/// The Google account's email address.
pub const SCOPE_EMAIL: &str = "email";
/// Scopes slotsync asks for.
pub const REQUESTED_SCOPES: [&str; 3] = [SCOPE_CALENDAR, SCOPE_OPENID, SCOPE_EMAIL];
/// Scopes slotsync cannot work without.
pub const REQUIRED_SCOPES: [&str; 1] = [SCOPE_CALENDAR];

/// Where each Google endpoint lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleEndpoints {
    pub authorize: String,
    pub token: String,
    pub revoke: String,
    pub userinfo: String,
    /// Calendar API base, with a trailing slash (as google-calendar3 needs).
    pub calendar: String,
}

impl GoogleEndpoints {
    /// Google's own endpoints.
    pub fn google() -> Self {
        Self {
            authorize: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token: "https://oauth2.googleapis.com/token".into(),
            revoke: "https://oauth2.googleapis.com/revoke".into(),
            userinfo: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            calendar: "https://www.googleapis.com/calendar/v3/".into(),
        }
    }

    /// An emulator's endpoints under `base` (e.g. `http://127.0.0.1:8085`).
    pub fn emulator(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            authorize: format!("{base}/o/oauth2/v2/auth"),
            token: format!("{base}/token"),
            revoke: format!("{base}/revoke"),
            userinfo: format!("{base}/v1/userinfo"),
            calendar: format!("{base}/calendar/v3/"),
        }
    }

    /// From the settings: the emulator when `GOOGLE_EMULATOR_URL` is set, Google otherwise.
    pub fn from_settings(settings: &Settings) -> Self {
        match &settings.google_emulator_url {
            Some(url) => Self::emulator(url),
            None => Self::google(),
        }
    }
}

/// Scopes among `required` that `granted` (space separated) lacks.
pub fn missing_scopes(granted: &str) -> Vec<String> {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    REQUIRED_SCOPES
        .iter()
        .filter(|s| !granted.contains(s))
        .map(|s| (*s).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_endpoints_hang_off_its_base_url() {
        let e = GoogleEndpoints::emulator("http://127.0.0.1:9/");
        assert_eq!(e.authorize, "http://127.0.0.1:9/o/oauth2/v2/auth");
        assert_eq!(e.calendar, "http://127.0.0.1:9/calendar/v3/");
    }

    #[test]
    fn missing_scopes_are_named() {
        assert!(missing_scopes("openid https://www.googleapis.com/auth/calendar email").is_empty());
        assert_eq!(
            missing_scopes("openid https://www.googleapis.com/auth/calendar.readonly"),
            vec![SCOPE_CALENDAR.to_owned()]
        );
    }
}
