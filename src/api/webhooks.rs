//! Google Calendar push notifications (the webhook), and re-creating a user's channel.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::auth::{AdminAuth, UserAuth};
use super::error::{answers::*, ApiError, ErrorBody, Fails};
use super::ApiTags;
use crate::observe;
use crate::state::AppState;
use crate::store::{self, channels::ChannelRow};
use crate::sync::channels::{self, Notification, Received, ResourceState};
use crate::sync::Refused;

/// A notification channel.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NotificationChannel {
    /// The channel's id (Google's `X-Goog-Channel-ID`).
    pub id: Uuid,
    /// Google's id of the watched calendar (`X-Goog-Resource-ID`).
    pub resource_id: Option<String>,
    /// When Google stops delivering; the renewal job replaces the channel before that.
    pub expires_at: DateTime<Utc>,
}

impl From<ChannelRow> for NotificationChannel {
    fn from(row: ChannelRow) -> Self {
        NotificationChannel {
            id: row.id,
            resource_id: row.resource_id,
            expires_at: row.expires_at,
        }
    }
}

/// A notification was taken.
#[derive(ApiResponse)]
pub enum NotificationAccepted {
    /// Accepted: a change requests a pull of the calendar (it runs shortly after, coalesced
    /// with other notifications); the `sync` handshake and redeliveries change nothing.
    #[oai(status = 200)]
    Ok,
}

/// A notification was refused; nothing was changed and Google was not called.
#[derive(ApiResponse)]
pub enum NotificationRefused {
    /// A header is missing or malformed (`field` names it), or the resource id is not the
    /// channel's.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The channel token does not belong to the channel.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such channel.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The channel was stopped or expired.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// Unexpected failure (Google retries the notification).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
}

impl NotificationRefused {
    /// The error code (the metric's reason).
    fn code(&self) -> &str {
        match self {
            NotificationRefused::BadRequest(b)
            | NotificationRefused::Forbidden(b)
            | NotificationRefused::NotFound(b)
            | NotificationRefused::Gone(b)
            | NotificationRefused::Internal(b) => &b.code,
        }
    }
}

fn body(code: &str, message: impl Into<String>, field: Option<&str>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.to_owned(),
        message: message.into(),
        field: field.map(str::to_owned),
        reason: None,
    })
}

fn required(name: &'static str, value: Option<String>) -> Result<String, NotificationRefused> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        NotificationRefused::BadRequest(body(
            "invalid_parameter",
            format!("the {name} header is required"),
            Some(name),
        ))
    })
}

fn malformed(name: &'static str, message: &str) -> NotificationRefused {
    NotificationRefused::BadRequest(body("invalid_parameter", message, Some(name)))
}

impl From<Refused> for NotificationRefused {
    fn from(e: Refused) -> Self {
        let message = e.to_string();
        match e {
            Refused::BadToken => {
                NotificationRefused::Forbidden(body("invalid_channel_token", message, Some("X-Goog-Channel-Token")))
            }
            Refused::UnknownChannel => {
                NotificationRefused::NotFound(body("not_found", message, Some("X-Goog-Channel-ID")))
            }
            Refused::Stopped => NotificationRefused::Gone(body("channel_stopped", message, Some("X-Goog-Channel-ID"))),
            Refused::Expired => NotificationRefused::Gone(body("channel_expired", message, Some("X-Goog-Channel-ID"))),
            Refused::ResourceMismatch => {
                NotificationRefused::BadRequest(body("resource_mismatch", message, Some("X-Goog-Resource-ID")))
            }
            Refused::Store(store) => match ApiError::from(store) {
                ApiError::Internal(b) => NotificationRefused::Internal(b),
                _ => NotificationRefused::Internal(body("internal", "internal error; see the server log", None)),
            },
        }
    }
}

/// Google push notifications, and channel set-up by an admin.
pub struct WebhooksApi;

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Google push notification (called by Google)
    ///
    /// Google Calendar push notifications (called by Google; no body, no bearer token: the
    /// channel token authenticates the call). A change (`exists`, `not_exists`) requests a
    /// pull of the user's calendar; the `sync` handshake and redeliveries are only
    /// acknowledged. Forged, unknown, stopped or expired channels are refused with a 4xx,
    /// without calling Google.
    #[oai(
        path = "/webhooks/google-calendar",
        method = "post",
        operation_id = "receive_google_notification"
    )]
    #[allow(clippy::too_many_arguments)] // one parameter per header Google sends
    async fn google_calendar(
        &self,
        state: Data<&AppState>,
        /// The channel id we chose (a UUID).
        #[oai(name = "X-Goog-Channel-ID")]
        channel_id: Header<Option<String>>,
        /// The channel token we gave Google.
        #[oai(name = "X-Goog-Channel-Token")]
        token: Header<Option<String>>,
        /// Google's id of the watched calendar.
        #[oai(name = "X-Goog-Resource-ID")]
        resource_id: Header<Option<String>>,
        /// `sync` (channel created), `exists` (something changed) or `not_exists`.
        #[oai(name = "X-Goog-Resource-State")]
        resource_state: Header<Option<String>>,
        /// Increases with every message of the channel (not necessarily by one).
        #[oai(name = "X-Goog-Message-Number")]
        message_number: Header<Option<String>>,
        /// When the channel expires (RFC 1123); informational.
        #[oai(name = "X-Goog-Channel-Expiration")]
        _channel_expiration: Header<Option<String>>,
    ) -> Result<NotificationAccepted, NotificationRefused> {
        let started = std::time::Instant::now();
        let headers = [channel_id.0, token.0, resource_id.0, resource_state.0, message_number.0];
        let result = notification(&state, headers).await;
        match &result {
            Ok(received) => observe::notification("accepted", received_label(received), started.elapsed()),
            Err(refused) => observe::notification("rejected", refused.code().to_owned(), started.elapsed()),
        }
        result.map(|_| NotificationAccepted::Ok)
    }

    /// Re-create a user's notification channel (admin)
    ///
    /// Re-create a user's notification channel (admin): a new channel is created first,
    /// then the older ones are stopped.
    #[oai(
        path = "/webhooks/setup/:user_id",
        method = "post",
        operation_id = "setup_user_channel"
    )]
    async fn setup(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// The user's id.
        user_id: Path<super::path_id::PathUuid>,
    ) -> Result<Json<NotificationChannel>, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | UNAVAILABLE | AUTHENTICATED }>>
    {
        let user = crate::domain::UserId(user_id.0.parse("user_id")?);
        store::users::find(&state.db, user)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(Json(channels::recreate(&state.sync, user).await?.into()))
    }
}

/// The caller's notification channel.
pub struct ChannelApi;

#[OpenApi(tag = "ApiTags::Sync")]
impl ChannelApi {
    /// Re-create your notification channel
    ///
    /// Re-create the caller's notification channel: a new channel is created first, then
    /// the older ones are stopped. Useful when notifications seem to have stopped.
    #[oai(path = "/sync/channel", method = "post", operation_id = "recreate_channel")]
    async fn recreate(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<NotificationChannel>, Fails<{ CONFLICT | UNAVAILABLE | AUTHENTICATED }>> {
        Ok(Json(channels::recreate(&state.sync, auth.user_id()).await?.into()))
    }
}

/// Checks the headers of a notification and hands it to the channel lifecycle.
async fn notification(state: &AppState, headers: [Option<String>; 5]) -> Result<Received, NotificationRefused> {
    let [channel_id, token, resource_id, resource_state, message_number] = headers;
    let channel_id = required("X-Goog-Channel-ID", channel_id)?;
    let token = required("X-Goog-Channel-Token", token)?;
    let resource_id = required("X-Goog-Resource-ID", resource_id)?;
    let resource_state = required("X-Goog-Resource-State", resource_state)?;
    let message_number = required("X-Goog-Message-Number", message_number)?;
    let state_value = ResourceState::parse(&resource_state)
        .ok_or_else(|| malformed("X-Goog-Resource-State", "expected `sync`, `exists` or `not_exists`"))?;
    let message_number = message_number
        .parse()
        .map_err(|_| malformed("X-Goog-Message-Number", "expected a non-negative integer"))?;
    // Not a UUID: not one of ours, whatever the token says.
    let channel_id = Uuid::parse_str(&channel_id).map_err(|_| Refused::UnknownChannel)?;
    let notification = Notification {
        channel_id,
        token,
        resource_id,
        state: state_value,
        message_number,
    };
    channels::receive(&state.sync, &notification).await.map_err(|refused| {
        tracing::debug!(%channel_id, reason = %refused, "notification refused");
        refused.into()
    })
}

/// The metric reason of an accepted notification.
fn received_label(received: &Received) -> &'static str {
    match received {
        Received::Handshake => "handshake",
        Received::Duplicate => "duplicate",
        Received::PullRequested(_) => "pull_requested",
    }
}
