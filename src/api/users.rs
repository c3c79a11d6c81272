//! Users: created and removed by an admin; each gets an API token shown once.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::auth::{hash_token, new_api_token, AdminAuth, UserAuth};
use super::body::JsonBody;
use super::error::{answers::*, ApiError, Fails};
use super::{pagination, ApiTags};
use crate::domain::UserId;
use crate::state::AppState;
use crate::store::{self, users::User as UserRow};

/// Longest email address accepted.
const MAX_EMAIL_CHARS: usize = 254;
/// Longest display name accepted.
const MAX_NAME_CHARS: usize = 256;

/// A user.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct User {
    /// The user's id.
    pub id: Uuid,
    /// The user's email (unique, stored lowercase).
    pub email: String,
    /// A name to show, if given.
    pub display_name: Option<String>,
    /// When the user was created (UTC).
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            created_at: u.created_at,
        }
    }
}

/// Body of `POST /auth/users`.
#[derive(Debug, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none, example)]
#[serde(deny_unknown_fields)]
#[oai(deny_unknown_fields)]
pub struct NewUser {
    /// Email address, `name@domain` (unique; stored lowercase).
    #[oai(validator(max_length = 254, pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"))]
    pub email: String,
    /// Optional name to show, 1–256 characters, not only spaces or control characters.
    #[oai(validator(min_length = 1, max_length = 256, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub display_name: Option<String>,
}

impl poem_openapi::types::Example for NewUser {
    fn example() -> Self {
        NewUser {
            email: "ada@example.com".into(),
            display_name: Some("Ada Lovelace".into()),
        }
    }
}

/// A new user and its API token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedUser {
    /// The user.
    pub user: User,
    /// The user's API token. It is shown only here, once: slotsync stores only its hash.
    pub api_token: String,
}

/// A page of users.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserPage {
    /// Users ordered by email.
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum CreateUserResponse {
    /// The user was created; keep `api_token`, it is not shown again.
    #[oai(status = 201)]
    Created(Json<CreatedUser>),
}

/// A new API token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RotatedToken {
    /// The new API token, shown only here. The previous token stopped working.
    pub api_token: String,
}

#[derive(ApiResponse)]
enum DeleteUserResponse {
    /// The user and all their slots are gone.
    #[oai(status = 204)]
    Deleted,
}

/// Checks an email address the way the spec's pattern does (`name@domain`, one `@`, no
/// spaces or control characters) and lowercases it.
fn check_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.to_lowercase();
    let (local, domain) = email
        .split_once('@')
        .ok_or_else(|| ApiError::invalid("email", "is not an email address (name@domain)"))?;
    let bad = |c: char| c.is_whitespace() || c.is_control();
    if local.is_empty() || domain.is_empty() || domain.contains('@') || email.chars().any(bad) {
        return Err(ApiError::invalid(
            "email",
            "is not an email address (name@domain, without spaces or control characters)",
        ));
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(ApiError::invalid(
            "email",
            format!("is longer than {MAX_EMAIL_CHARS} characters"),
        ));
    }
    Ok(email)
}

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(n) if crate::domain::slot::is_blank(&n) => Err(ApiError::invalid(
            "display_name",
            "must not be empty or only spaces and control characters (omit it or send null instead)",
        )),
        Some(n) if n.chars().count() > MAX_NAME_CHARS => Err(ApiError::invalid(
            "display_name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        )),
        other => Ok(other),
    }
}

/// Users and their API tokens.
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Create a user (admin)
    ///
    /// Create a user (admin). The answer carries the user's API token, shown only once.
    #[oai(path = "/auth/users", method = "post", operation_id = "create_user")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        body: JsonBody<NewUser>,
    ) -> Result<CreateUserResponse, Fails<{ BAD_REQUEST | CONFLICT | AUTHENTICATED }>> {
        let email = check_email(&body.value.email)?;
        let display_name = check_name(body.value.display_name)?;
        let token = new_api_token();
        let user = store::users::create(&state.db, &email, display_name, hash_token(&token)).await?;
        tracing::info!(user_id = %user.id, "user created");
        Ok(CreateUserResponse::Created(Json(CreatedUser {
            user: user.into(),
            api_token: token,
        })))
    }

    /// List users (admin)
    ///
    /// List users (admin), ordered by email, a page at a time.
    #[oai(path = "/auth/users", method = "get", operation_id = "list_users")]
    async fn list_users(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<UserPage>, Fails<{ BAD_REQUEST | AUTHENTICATED }>> {
        let limit = pagination::page_size(limit.0)?;
        let after = cursor.0.as_deref().map(pagination::decode).transpose()?;
        let mut rows = store::users::list(&state.db, after.as_deref(), limit).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|u| pagination::encode(&u.email))
        } else {
            None
        };
        Ok(Json(UserPage {
            items: rows.into_iter().map(User::from).collect(),
            next_cursor,
        }))
    }

    /// The calling user
    ///
    /// The caller (user token).
    #[oai(path = "/auth/users/me", method = "get", operation_id = "get_me")]
    async fn me(&self, auth: UserAuth) -> Result<Json<User>, Fails<{ AUTHENTICATED }>> {
        Ok(Json(auth.0.into()))
    }

    /// Replace your API token
    ///
    /// Replace the caller's API token: the answer carries the new one; the old one stops
    /// working at once.
    #[oai(path = "/auth/users/me/token", method = "post", operation_id = "rotate_own_token")]
    async fn rotate_own_token(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<RotatedToken>, Fails<{ NOT_FOUND | AUTHENTICATED }>> {
        Ok(rotate(&state, auth.user_id()).await?)
    }

    /// Replace a user's API token (admin)
    ///
    /// Replace a user's API token (admin), e.g. after it leaked: the answer carries the
    /// new one; the old one stops working at once.
    #[oai(
        path = "/auth/users/:user_id/token",
        method = "post",
        operation_id = "rotate_user_token"
    )]
    async fn rotate_token(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// The user's id.
        user_id: Path<super::path_id::PathUuid>,
    ) -> Result<Json<RotatedToken>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let user_id = UserId(user_id.0.parse("user_id")?);
        Ok(rotate(&state, user_id).await?)
    }

    /// Delete a user and their data (admin)
    ///
    /// Delete a user and everything they own (admin). A connected Google account is
    /// disconnected first (channels stopped, grant revoked; the events stay in Google).
    #[oai(path = "/auth/users/:user_id", method = "delete", operation_id = "delete_user")]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        _admin: AdminAuth,
        /// The user's id.
        user_id: Path<super::path_id::PathUuid>,
    ) -> Result<DeleteUserResponse, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let user_id = UserId(user_id.0.parse("user_id")?);
        match crate::sync::disconnect::disconnect(&state.sync, user_id, false).await {
            Ok(_) | Err(crate::sync::SyncError::NoConnection) => {}
            Err(e) => tracing::warn!(%user_id, error = %e, "disconnecting before deletion failed; deleting anyway"),
        }
        let deleted = store::users::delete_with_data(&state.db, user_id).await;
        // Their channel rows are gone (stopped ones were forgotten by the disconnect).
        state.channel_directory.forget_user(user_id.0);
        match deleted {
            Ok(()) => {
                tracing::info!(%user_id, "user deleted");
                Ok(DeleteUserResponse::Deleted)
            }
            Err(store::StoreError::NotFound) => Err(ApiError::not_found("user").into()),
            Err(e) => Err(ApiError::from(e).into()),
        }
    }
}

/// Gives `user_id` a new API token; the old one's hash is overwritten.
async fn rotate(state: &AppState, user_id: UserId) -> Result<Json<RotatedToken>, ApiError> {
    let token = new_api_token();
    if !store::users::set_token_hash(&state.db, user_id, hash_token(&token)).await? {
        return Err(ApiError::not_found("user"));
    }
    tracing::info!(%user_id, "API token rotated");
    Ok(Json(RotatedToken { api_token: token }))
}
