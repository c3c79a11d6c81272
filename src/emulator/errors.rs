//! Google's error bodies: the Calendar API's `{"error":{…}}` and OAuth's `{"error":"…"}`.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde_json::json;

/// A Calendar API error, rendered exactly as Google does.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `errors[0].reason`.
    pub reason: &'static str,
    /// `errors[0].domain`.
    pub domain: &'static str,
    /// Top-level and item message.
    pub message: Box<str>,
    /// `errors[0].locationType` and `location`, when Google names one.
    pub location: Option<(&'static str, Box<str>)>,
    /// `WWW-Authenticate` header value (401 and scope errors).
    pub www_authenticate: Option<&'static str>,
    /// Parts of the body only some errors carry (boxed: errors travel in `Result`s).
    pub extras: Option<Box<ErrorExtras>>,
}

/// Body parts only some Calendar API errors carry.
#[derive(Debug, Clone, Default)]
pub struct ErrorExtras {
    /// `errors[0].message` when it differs from the top-level message.
    pub item_message: Option<&'static str>,
    /// `error.details` (`google.rpc` detail objects).
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    fn new(code: u16, domain: &'static str, reason: &'static str, message: &str) -> Self {
        Self {
            code,
            reason,
            domain,
            message: message.into(),
            location: None,
            www_authenticate: None,
            extras: None,
        }
    }

    fn at(mut self, location_type: &'static str, location: &str) -> Self {
        self.location = Some((location_type, location.into()));
        self
    }

    /// 400 `invalid` (global) about a parameter.
    pub fn invalid_parameter(param: &str, message: &str) -> Self {
        Self::new(400, "global", "invalid", message).at("parameter", param)
    }

    /// 400 `invalid` (global) about the request body.
    pub fn invalid(message: &str) -> Self {
        Self::new(400, "global", "invalid", message)
    }

    /// 400 `required` (global): a field is missing.
    pub fn required(message: &str) -> Self {
        Self::new(400, "global", "required", message)
    }

    /// 400 `parseError` (global): the body is not valid JSON.
    pub fn parse_error() -> Self {
        Self::new(400, "global", "parseError", "Parse Error")
    }

    /// 400 `timeRangeEmpty` (calendar).
    pub fn time_range_empty(location: &str) -> Self {
        Self::new(400, "calendar", "timeRangeEmpty", "The specified time range is empty.").at("parameter", location)
    }

    /// 401 for a request without credentials (`Login Required`).
    pub fn login_required() -> Self {
        let mut e = Self::new(
            401,
            "global",
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        )
        .at("header", "Authorization");
        e.www_authenticate = Some(r#"Bearer realm="https://accounts.google.com/""#);
        e
    }

    /// 401 `authError` for an unknown, expired or revoked access token.
    pub fn invalid_credentials() -> Self {
        let mut e = Self::new(
            401,
            "global",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        )
        .at("header", "Authorization");
        e.www_authenticate = Some(r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#);
        e
    }

    /// 403 `insufficientPermissions`: the token lacks a scope operation `op` (e.g.
    /// `events.list`) needs. Body as Google's: item message "Insufficient Permission" and
    /// an `ErrorInfo` detail `ACCESS_TOKEN_SCOPE_INSUFFICIENT` naming the method.
    pub fn insufficient_scopes(op: &str) -> Self {
        let mut e = Self::new(
            403,
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        );
        e.www_authenticate = Some(r#"Bearer realm="https://accounts.google.com/", error="insufficient_scope""#);
        e.extras = Some(Box::new(ErrorExtras {
            item_message: Some("Insufficient Permission"),
            details: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
                "metadata": {"service": "calendar-json.googleapis.com", "method": rpc_method(op)},
            }])),
        }));
        e
    }

    /// 403 `userRateLimitExceeded` (usageLimits).
    pub fn user_rate_limit() -> Self {
        Self::new(403, "usageLimits", "userRateLimitExceeded", "Rate Limit Exceeded")
    }

    /// 429 `rateLimitExceeded` (usageLimits).
    pub fn rate_limit() -> Self {
        Self::new(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded")
    }

    /// 400 `eventTypeRestriction` (calendar): the change is not allowed for the event's
    /// `eventType`.
    pub fn event_type_restriction(message: &str) -> Self {
        Self::new(400, "calendar", "eventTypeRestriction", message)
    }

    /// 403 `forbiddenForNonOrganizer` (calendar): an attendee changed a shared field.
    pub fn forbidden_for_non_organizer() -> Self {
        Self::new(
            403,
            "calendar",
            "forbiddenForNonOrganizer",
            "Shared properties can only be changed by the organizer of the event.",
        )
    }

    /// 403 `forbidden` (global): what writes to an event deleted in the Google UI have been
    /// answered in the wild (instead of 410 `deleted`).
    pub fn forbidden() -> Self {
        Self::new(403, "global", "forbidden", "Forbidden")
    }

    /// 404 `notFound`.
    pub fn not_found() -> Self {
        Self::new(404, "global", "notFound", "Not Found")
    }

    /// 409 `duplicate`: the identifier exists (or existed).
    pub fn duplicate() -> Self {
        Self::new(409, "global", "duplicate", "The requested identifier already exists.")
    }

    /// 410 `deleted`: the resource was already deleted.
    pub fn deleted() -> Self {
        Self::new(410, "global", "deleted", "Resource has been deleted")
    }

    /// 410 `fullSyncRequired`: the sync token is unknown or invalidated.
    pub fn full_sync_required() -> Self {
        Self::new(
            410,
            "calendar",
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
        )
        .at("parameter", "syncToken")
    }

    /// 412 `conditionNotMet`: `If-Match` named a stale etag.
    pub fn condition_not_met() -> Self {
        Self::new(412, "global", "conditionNotMet", "Precondition Failed").at("header", "If-Match")
    }

    /// 500/502/503/504 `backendError`, or any other injected status.
    pub fn injected(code: u16) -> Self {
        match code {
            401 => Self::invalid_credentials(),
            403 => Self::user_rate_limit(),
            404 => Self::not_found(),
            409 => Self::duplicate(),
            410 => Self::deleted(),
            412 => Self::condition_not_met(),
            429 => Self::rate_limit(),
            400 => Self::invalid("Bad Request"),
            _ => Self::new(code, "global", "backendError", "Backend Error"),
        }
    }

    /// The `status` string newer Google responses carry.
    fn status_text(&self) -> &'static str {
        match self.code {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            410 => "FAILED_PRECONDITION",
            412 => "FAILED_PRECONDITION",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut item = json!({
            "domain": self.domain,
            "reason": self.reason,
            "message": match self.extras.as_ref().and_then(|x| x.item_message) {
                Some(m) => m,
                None => &*self.message,
            },
        });
        if let Some((kind, loc)) = &self.location {
            item["locationType"] = json!(kind);
            item["location"] = json!(loc);
        }
        let mut body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "errors": [item],
            "status": self.status_text(),
        }});
        if let Some(details) = self.extras.as_ref().and_then(|x| x.details.as_ref()) {
            body["error"]["details"] = details.clone();
        }
        body
    }
}

/// The RPC method name Google reports for an operation: `events.list` →
/// `calendar.v3.Events.List`.
fn rpc_method(op: &str) -> String {
    let capitalized: Vec<String> = op
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("calendar.v3.{}", capitalized.join("."))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = Response::builder()
            .status(status)
            .content_type("application/json; charset=UTF-8");
        if let Some(v) = self.www_authenticate {
            builder = builder.header("WWW-Authenticate", v);
        }
        builder.body(self.body().to_string())
    }
}

/// An OAuth endpoint error: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {error}: {description}")]
pub struct OAuthError {
    /// HTTP status code.
    pub status: u16,
    /// The `error` code (`invalid_grant`, `invalid_client`, …).
    pub error: &'static str,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// Builds an OAuth error.
    pub fn new(status: u16, error: &'static str, description: &str) -> Self {
        Self {
            status,
            error,
            description: description.to_owned(),
        }
    }

    /// 400 `invalid_grant` with the given description.
    pub fn invalid_grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    /// 400 `invalid_grant` "Token has been expired or revoked." (Google's exact text).
    pub fn expired_or_revoked() -> Self {
        Self::invalid_grant("Token has been expired or revoked.")
    }

    /// 401 `invalid_client`.
    pub fn invalid_client() -> Self {
        Self::new(401, "invalid_client", "The OAuth client was not found.")
    }

    /// 401 `deleted_client`: the OAuth client was deleted in the Cloud console.
    pub fn deleted_client() -> Self {
        Self::new(401, "deleted_client", "The OAuth client was deleted.")
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut builder = Response::builder()
            .status(status)
            .content_type("application/json; charset=utf-8");
        if self.status == 401 {
            builder = builder.header(
                "WWW-Authenticate",
                r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#,
            );
        }
        builder.body(json!({"error": self.error, "error_description": self.description}).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_method_names_follow_googles_service_method_spelling() {
        assert_eq!(rpc_method("events.list"), "calendar.v3.Events.List");
        assert_eq!(rpc_method("calendarList.list"), "calendar.v3.CalendarList.List");
    }

    #[test]
    fn insufficient_scopes_has_googles_item_message_and_error_info() {
        let body = ApiError::insufficient_scopes("events.insert").body();
        assert_eq!(
            body["error"]["message"],
            "Request had insufficient authentication scopes."
        );
        assert_eq!(body["error"]["errors"][0]["message"], "Insufficient Permission");
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(body["error"]["details"][0]["reason"], "ACCESS_TOKEN_SCOPE_INSUFFICIENT");
        assert_eq!(
            body["error"]["details"][0]["metadata"]["method"],
            "calendar.v3.Events.Insert"
        );
    }
}
