//! `ApiError`: the one error body of the API, `{code, message, field?}`, and the only
//! place where errors become HTTP statuses.

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::{IntoResponse, Response};
use poem_openapi::error::{AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};

use crate::domain::ValidationError;
use crate::store::StoreError;
use crate::sync::error::{GoogleError, OAuthError};
use crate::sync::SyncError;

/// Every error answer has this body.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`, `version_mismatch`.
    pub code: String,
    /// What went wrong and what is expected, for people.
    pub message: String,
    /// The request field, parameter or header at fault, when there is one.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why the resource's state refuses the request, when it says (a read-only slot's
    /// `read_only_reason`, e.g. `event_type:outOfOffice` or `not_organizer`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Error answers shared by every operation.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or breaks a rule; nothing was changed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or unknown bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such resource for this caller (another user's resources are reported this way too).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The resource already exists, or its state does not allow the request.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// What the request points at is gone for good (a feed cursor older than the
    /// retention): start again as the message says.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// `If-Match` names a version that is no longer current; nothing was changed.
    #[oai(status = 412)]
    PreconditionFailed(Json<ErrorBody>),
    /// The `Idempotency-Key` was already used with a different body.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// Unexpected failure; the cause is in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (the database) is not available.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: &str, message: impl Into<String>, field: Option<&str>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.to_owned(),
        message: message.into(),
        field: field.map(str::to_owned),
        reason: None,
    })
}

impl ApiError {
    /// 400 naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body("invalid_field", message, Some(field)))
    }

    /// 400 without a particular field.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body(code, message, None))
    }

    /// 400 on the `Content-Type` header.
    pub fn unsupported_content_type(message: impl Into<String>) -> Self {
        ApiError::BadRequest(body("unsupported_content_type", message, Some("Content-Type")))
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized(body("unauthorized", message, None))
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(body("not_found", format!("{what} not found"), None))
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        ApiError::TooManyRequests(
            body(
                "rate_limited",
                format!("too many requests; retry after {retry_after_secs} s"),
                None,
            ),
            retry_after_secs,
        )
    }

    /// 500 after logging the cause chain; the answer says nothing about it.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        ApiError::Internal(body("internal", "internal error; see the server log", None))
    }

    /// 409: the resource's state does not allow the request.
    pub fn conflict_message(code: &str, message: impl Into<String>) -> Self {
        ApiError::Conflict(body(code, message, None))
    }

    /// 410 with a code saying what is gone.
    pub fn gone(code: &str, message: impl Into<String>) -> Self {
        ApiError::Gone(body(code, message, None))
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Unavailable(body("unavailable", message, None))
    }

    /// 503 `google_client_degraded`: Google refuses the deployment's OAuth client.
    pub fn google_client_degraded(degraded: &crate::google::client_health::Degraded) -> Self {
        ApiError::Unavailable(body(
            "google_client_degraded",
            format!(
                "Google refuses this deployment's OAuth client since {} ({}); pushes and pulls are paused \
                 until it is accepted again (check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)",
                degraded.since.to_rfc3339(),
                degraded.reason
            ),
            None,
        ))
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => {
                ApiError::Conflict(body("duplicate", format!("{what} already exists"), None))
            }
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::ReadOnly(reason) => ApiError::Conflict(Json(ErrorBody {
                code: "read_only".to_owned(),
                message: format!(
                    "this slot is read-only ({reason}): Google refuses changes to it from here; \
                     change it in Google Calendar (its changes keep coming in)"
                ),
                field: None,
                reason: Some(reason),
            })),
            StoreError::Invalid(v) => v.into(),
            StoreError::VersionMismatch { current } => ApiError::PreconditionFailed(body(
                "version_mismatch",
                format!("If-Match names a stale version; the current version is {current}"),
                Some("If-Match"),
            )),
            StoreError::Db(db) => ApiError::internal(&db),
        }
    }
}

/// Every engine failure's HTTP meaning, in one place.
impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        let message = e.to_string();
        match e {
            SyncError::Invalid(v) => v.into(),
            SyncError::IdempotencyMismatch => {
                ApiError::Unprocessable(body("idempotency_key_reused", message, Some("Idempotency-Key")))
            }
            // The connection's state: the client has to act (connect, reconnect, wait).
            SyncError::NotConnected | SyncError::Unusable(_) => {
                ApiError::Conflict(body("not_connected", message, None))
            }
            SyncError::NoConnection => ApiError::not_found("Google connection"),
            SyncError::OccurrenceNotFound(_) => ApiError::NotFound(body("not_found", message, Some("original_start"))),
            SyncError::ConnectionUnusable(_) => ApiError::conflict_message("connection_unusable", message),
            SyncError::PullRunning => ApiError::conflict_message("pull_running", message),
            SyncError::CalendarMissing => ApiError::conflict_message("calendar_missing", message),
            SyncError::MissingScopes => ApiError::conflict_message("missing_scopes", message),
            SyncError::Rehomed => ApiError::unavailable(message),
            SyncError::ChannelsOff => ApiError::Unavailable(body("channels_off", message, None)),
            // Connecting.
            SyncError::OAuthNotConfigured(_) => ApiError::unavailable(message),
            SyncError::InvalidState(_) => ApiError::invalid("state", message),
            SyncError::AccessDenied => ApiError::bad_request("access_denied", message),
            SyncError::GoogleRefused(_) => ApiError::invalid("error", message),
            SyncError::MissingCode => ApiError::invalid("code", message),
            SyncError::WrongAccount { .. } => ApiError::bad_request("wrong_google_account", message),
            SyncError::OAuth(OAuthError::InvalidGrant(_)) => ApiError::bad_request(
                "invalid_grant",
                "Google refused the authorization code (expired, reused or wrong verifier); start again",
            ),
            SyncError::OAuth(OAuthError::NotConfigured(_)) => ApiError::unavailable(message),
            SyncError::OAuth(OAuthError::ClientBroken(_)) => {
                ApiError::Unavailable(body("google_client_degraded", message, None))
            }
            SyncError::OAuth(OAuthError::Transport(_)) => {
                ApiError::Unavailable(body("google_unavailable", message, None))
            }
            SyncError::Calendar(_) => ApiError::unavailable(format!("{message}; nothing was changed, connect again")),
            // Google.
            SyncError::Google(GoogleError::Auth(_)) => ApiError::Conflict(body(
                "needs_reauth",
                format!("{message}; connect the Google account again"),
                None,
            )),
            SyncError::Google(GoogleError::ClientBroken(_)) => {
                ApiError::Unavailable(body("google_client_degraded", message, None))
            }
            SyncError::Google(GoogleError::Retryable(_)) => {
                ApiError::Unavailable(body("google_unavailable", message, None))
            }
            SyncError::Google(_) => ApiError::Unavailable(body("google_refused", message, None)),
            SyncError::Store(s) => s.into(),
        }
    }
}

/// Which error answers an operation can give: a set of bits, one per status, for
/// [`Fails`]. Each operation's signature names its set, so the spec lists exactly those.
pub mod answers {
    /// 400: a parameter, header or body is malformed or breaks a rule.
    pub const BAD_REQUEST: u32 = 1 << 0;
    /// 401: no usable bearer token.
    pub const UNAUTHORIZED: u32 = 1 << 1;
    /// 404: no such resource for this caller.
    pub const NOT_FOUND: u32 = 1 << 2;
    /// 409: the resource's state does not allow the request.
    pub const CONFLICT: u32 = 1 << 3;
    /// 412: `If-Match` names a stale version.
    pub const PRECONDITION_FAILED: u32 = 1 << 4;
    /// 422: an `Idempotency-Key` reused with another body.
    pub const UNPROCESSABLE: u32 = 1 << 5;
    /// 429: the inbound rate limit.
    pub const TOO_MANY_REQUESTS: u32 = 1 << 6;
    /// 500: an unexpected failure (the database failed mid-request, say).
    pub const INTERNAL: u32 = 1 << 7;
    /// 503: a dependency (the database, Google, the OAuth set-up) is not available.
    pub const UNAVAILABLE: u32 = 1 << 8;
    /// 410: gone for good (a feed cursor older than the retention).
    pub const GONE: u32 = 1 << 9;
    /// What every route behind a bearer token can answer before it runs: 401, and 429
    /// (the inbound limit).
    pub const BEARER: u32 = UNAUTHORIZED | TOO_MANY_REQUESTS;
    /// [`BEARER`] and 500: a user's token is looked up in the database, and so is almost
    /// everything an authenticated route does.
    pub const AUTHENTICATED: u32 = BEARER | INTERNAL;

    /// The bit of an HTTP status, 0 for a status no operation documents this way.
    pub const fn bit(status: u16) -> u32 {
        match status {
            400 => BAD_REQUEST,
            401 => UNAUTHORIZED,
            404 => NOT_FOUND,
            409 => CONFLICT,
            410 => GONE,
            412 => PRECONDITION_FAILED,
            422 => UNPROCESSABLE,
            429 => TOO_MANY_REQUESTS,
            500 => INTERNAL,
            503 => UNAVAILABLE,
            _ => 0,
        }
    }
}

/// An [`ApiError`] answered by an operation that documents only the statuses in `S` (bits
/// of [`answers`]). The answer is the same; only the spec differs. Answering a status
/// outside `S` is a bug: it is logged at `ERROR`, and the fuzzer in CI fails on it.
#[derive(Debug)]
pub struct Fails<const S: u32>(pub ApiError);

impl<const S: u32> Fails<S> {
    /// Whether the set documents `status`.
    pub const fn documents(status: u16) -> bool {
        answers::bit(status) & S != 0
    }
}

impl<const S: u32> ApiResponse for Fails<S> {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses.retain(|r| r.status.is_some_and(Self::documents));
        meta
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl<const S: u32> IntoResponse for Fails<S> {
    fn into_response(self) -> Response {
        let response = self.0.into_response();
        let status = response.status().as_u16();
        if !Self::documents(status) {
            tracing::error!(status, "an operation answered a status its spec does not list");
        }
        response
    }
}

impl<const S: u32> From<Fails<S>> for poem::Error {
    fn from(f: Fails<S>) -> Self {
        poem::Error::from_response(f.into_response())
    }
}

/// `?` in a handler: every error that becomes an [`ApiError`] becomes a [`Fails`] too.
macro_rules! fails_from {
    ($($t:ty),* $(,)?) => {$(
        impl<const S: u32> From<$t> for Fails<S> {
            fn from(e: $t) -> Self {
                Fails(ApiError::from(e))
            }
        }
    )*};
}

fails_from!(ApiError, ValidationError, StoreError, SyncError);

/// Turns any error that escaped an endpoint (bad parameters, missing auth, unknown routes,
/// wrong content type) into the same JSON body as every other error.
pub async fn render_any_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let api_error = if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::BadRequest(body("invalid_parameter", e.reason.clone(), Some(e.name)))
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::BadRequest(body("malformed_json", e.reason.clone(), None))
    } else if err.is::<AuthorizationError>() {
        ApiError::unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        ApiError::unsupported_content_type(format!("{e}; send application/json"))
    } else if err.is::<NotFoundError>() {
        ApiError::not_found("route")
    } else if err.is::<MethodNotAllowedError>() {
        return (
            poem::http::StatusCode::METHOD_NOT_ALLOWED,
            poem::web::Json(ErrorBody {
                code: "method_not_allowed".into(),
                message: "this method is not allowed on this route".into(),
                field: None,
                reason: None,
            }),
        )
            .into_response();
    } else if err.status().is_client_error() {
        let status = err.status();
        return (
            status,
            poem::web::Json(ErrorBody {
                code: status
                    .canonical_reason()
                    .unwrap_or("client_error")
                    .to_lowercase()
                    .replace(' ', "_"),
                message: err.to_string(),
                field: None,
                reason: None,
            }),
        )
            .into_response();
    } else {
        ApiError::internal(&std::io::Error::other(err.to_string()))
    };
    api_error.into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the events logged at `ERROR`.
    #[derive(Clone, Default)]
    struct ErrorCount(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCount {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::ERROR {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn client_errors_are_not_logged_as_errors_and_server_faults_are() {
        let errors = ErrorCount::default();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(errors.clone()));

        let client_faults: Vec<poem::Error> = vec![
            ParseParamError {
                name: "limit",
                reason: "not a number".into(),
            }
            .into(),
            ParseRequestPayloadError {
                reason: "expected value".into(),
            }
            .into(),
            AuthorizationError.into(),
            ContentTypeError::NotSupported {
                content_type: "text/plain".into(),
            }
            .into(),
            NotFoundError.into(),
            MethodNotAllowedError.into(),
            Fails::<{ answers::BAD_REQUEST }>(ApiError::invalid("title", "is required")).into(),
        ];
        for err in client_faults {
            let status = render_any_error(err).await.status();
            assert!(status.is_client_error(), "{status}");
        }
        assert_eq!(errors.0.load(Ordering::SeqCst), 0, "a client error was logged at ERROR");

        // The counter sees what it should: a server fault is logged at ERROR.
        let status = render_any_error(poem::Error::from_status(poem::http::StatusCode::BAD_GATEWAY))
            .await
            .status();
        assert_eq!(status, 500);
        assert_eq!(errors.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_operation_documents_exactly_its_set() {
        type SlotRead = Fails<{ answers::BAD_REQUEST | answers::NOT_FOUND | answers::AUTHENTICATED }>;
        let statuses: Vec<u16> = SlotRead::meta().responses.iter().filter_map(|r| r.status).collect();
        assert_eq!(statuses, [400, 401, 404, 429, 500]);
        assert!(!SlotRead::documents(412));
    }

    #[test]
    fn every_engine_failure_keeps_its_http_meaning() {
        let cases: Vec<(SyncError, u16)> = vec![
            (SyncError::IdempotencyMismatch, 422),
            (SyncError::NotConnected, 409),
            (SyncError::NoConnection, 404),
            (SyncError::Unusable(crate::domain::ConnectionStatus::Revoked), 409),
            (SyncError::ConnectionUnusable("why".into()), 409),
            (SyncError::PullRunning, 409),
            (SyncError::CalendarMissing, 409),
            (SyncError::MissingScopes, 409),
            (SyncError::Rehomed, 503),
            (
                SyncError::OccurrenceNotFound("occurrence 2026-01-01 not found".into()),
                404,
            ),
            (SyncError::ChannelsOff, 503),
            (SyncError::OAuthNotConfigured("GOOGLE_CLIENT_ID"), 503),
            (SyncError::InvalidState("forged"), 400),
            (SyncError::AccessDenied, 400),
            (SyncError::MissingCode, 400),
            (SyncError::OAuth(OAuthError::InvalidGrant("reused".into())), 400),
            (SyncError::OAuth(OAuthError::Transport("reset".into())), 503),
            (SyncError::Calendar("calendars.insert: 500".into()), 503),
            (SyncError::Google(GoogleError::Auth("invalid_grant".into())), 409),
            (SyncError::Google(GoogleError::Retryable("503".into())), 503),
            (SyncError::Google(GoogleError::Fatal("400".into())), 503),
            (SyncError::Google(GoogleError::Forbidden("403 forbidden".into())), 503),
            (
                SyncError::Google(GoogleError::ClientBroken("invalid_client".into())),
                503,
            ),
            (SyncError::OAuth(OAuthError::ClientBroken("deleted_client".into())), 503),
            (SyncError::Store(StoreError::NotFound), 404),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            let status = ApiError::from(error).into_response().status().as_u16();
            assert_eq!(status, expected, "{shown}");
        }
    }
}
