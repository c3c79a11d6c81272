//! `ApiError`: the one error body of the API, `{code, message, field?}`, and the only
//! place where errors become HTTP statuses.

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::{IntoResponse, Response};
use poem_openapi::error::{AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::domain::ValidationError;
use crate::store::StoreError;
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

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Unavailable(body("unavailable", message, None))
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
            StoreError::VersionMismatch { current } => ApiError::PreconditionFailed(body(
                "version_mismatch",
                format!("If-Match names a stale version; the current version is {current}"),
                Some("If-Match"),
            )),
            StoreError::Db(db) => ApiError::internal(&db),
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Invalid(v) => v.into(),
            SyncError::IdempotencyMismatch => ApiError::Unprocessable(body(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
                Some("Idempotency-Key"),
            )),
            SyncError::NotSyncing(n) => ApiError::Conflict(body("not_connected", n.to_string(), None)),
            SyncError::Store(s) => s.into(),
        }
    }
}

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
            }),
        )
            .into_response();
    } else {
        ApiError::internal(&std::io::Error::other(err.to_string()))
    };
    api_error.into_response()
}
