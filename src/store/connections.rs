//! Google connections: one per user, tokens stored encrypted by the caller.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use super::entities::{google_connections, sync_states};
use super::StoreError;

pub use google_connections::Model as Connection;

/// Connection status values.
pub const ACTIVE: &str = "active";
/// The refresh token stopped working: the user must connect again.
pub const NEEDS_REAUTH: &str = "needs_reauth";
/// The user disconnected.
pub const REVOKED: &str = "revoked";
/// The user stopped syncing (`DELETE /sync`); tokens are kept, nothing is called.
pub const STOPPED: &str = "stopped";

/// What a successful OAuth exchange yields (tokens already encrypted).
pub struct NewConnection {
    pub user_id: Uuid,
    pub google_email: Option<String>,
    pub calendar_id: String,
    pub access_token_enc: String,
    pub refresh_token_enc: Option<String>,
    pub token_expires_at: DateTime<Utc>,
    pub granted_scopes: String,
}

/// Marks an `active` connection `needs_reauth` (a connection already revoked or stopped
/// keeps its status: a call in flight during a disconnect must not undo it).
pub async fn mark_needs_reauth(db: &impl ConnectionTrait, user_id: Uuid, last_error: String) -> Result<(), StoreError> {
    google_connections::Entity::update_many()
        .col_expr(google_connections::Column::Status, Expr::value(NEEDS_REAUTH))
        .col_expr(google_connections::Column::LastError, Expr::value(Some(last_error)))
        .filter(google_connections::Column::UserId.eq(user_id))
        .filter(google_connections::Column::Status.eq(ACTIVE))
        .exec(db)
        .await?;
    Ok(())
}

/// Creates or replaces the user's connection (status `active`), and makes sure a sync
/// state row exists for it.
pub async fn upsert(db: &impl ConnectionTrait, c: NewConnection) -> Result<Connection, StoreError> {
    let now = Utc::now();
    let existing = find(db, c.user_id).await?;
    // Google sends a refresh token only with consent; keep the old one if none came back.
    let refresh = c
        .refresh_token_enc
        .or_else(|| existing.as_ref().and_then(|e| e.refresh_token_enc.clone()));
    let model = google_connections::ActiveModel {
        user_id: Set(c.user_id),
        google_email: Set(c.google_email),
        calendar_id: Set(c.calendar_id),
        access_token_enc: Set(Some(c.access_token_enc)),
        refresh_token_enc: Set(refresh),
        token_expires_at: Set(Some(c.token_expires_at)),
        granted_scopes: Set(c.granted_scopes),
        status: Set(ACTIVE.to_owned()),
        connected_at: Set(now),
        last_error: Set(None),
    };
    google_connections::Entity::insert(model)
        .on_conflict(
            OnConflict::column(google_connections::Column::UserId)
                .update_columns([
                    google_connections::Column::GoogleEmail,
                    google_connections::Column::CalendarId,
                    google_connections::Column::AccessTokenEnc,
                    google_connections::Column::RefreshTokenEnc,
                    google_connections::Column::TokenExpiresAt,
                    google_connections::Column::GrantedScopes,
                    google_connections::Column::Status,
                    google_connections::Column::ConnectedAt,
                    google_connections::Column::LastError,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    sync_states::Entity::insert(sync_states::ActiveModel {
        user_id: Set(c.user_id),
        sync_token: Set(None),
        full_synced_at: Set(None),
        last_pull_at: Set(None),
        pull_requested_at: Set(None),
        pull_lease_until: Set(None),
        last_message_number: Set(None),
        consecutive_failures: Set(0),
        breaker_open_until: Set(None),
        last_error: Set(None),
        last_push_error: Set(None),
        last_push_error_at: Set(None),
    })
    .on_conflict_do_nothing_on([sync_states::Column::UserId])
    .exec(db)
    .await?;
    find(db, c.user_id).await?.ok_or(StoreError::NotFound)
}

/// The user's connection, if any.
pub async fn find(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Connection>, StoreError> {
    Ok(google_connections::Entity::find_by_id(user_id).one(db).await?)
}

/// Stores a refreshed access token (encrypted) and its expiry.
pub async fn save_refreshed_token(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    access_token_enc: String,
    expires_at: DateTime<Utc>,
    refresh_token_enc: Option<String>,
) -> Result<(), StoreError> {
    let mut update = google_connections::Entity::update_many()
        .col_expr(
            google_connections::Column::AccessTokenEnc,
            Expr::value(Some(access_token_enc)),
        )
        .col_expr(
            google_connections::Column::TokenExpiresAt,
            Expr::value(Some(expires_at)),
        )
        .col_expr(
            google_connections::Column::LastError,
            Expr::value(Option::<String>::None),
        );
    if let Some(r) = refresh_token_enc {
        update = update.col_expr(google_connections::Column::RefreshTokenEnc, Expr::value(Some(r)));
    }
    update
        .filter(google_connections::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets the status and the last error.
pub async fn set_status(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    status: &str,
    last_error: Option<String>,
) -> Result<(), StoreError> {
    google_connections::Entity::update_many()
        .col_expr(google_connections::Column::Status, Expr::value(status))
        .col_expr(google_connections::Column::LastError, Expr::value(last_error))
        .filter(google_connections::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Erases the tokens and marks the connection `revoked` (the row stays for the status).
pub async fn erase_tokens(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), StoreError> {
    google_connections::Entity::update_many()
        .col_expr(
            google_connections::Column::AccessTokenEnc,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            google_connections::Column::RefreshTokenEnc,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            google_connections::Column::TokenExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(google_connections::Column::Status, Expr::value(REVOKED))
        .filter(google_connections::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The calendar of each of `users` whose connection is `active`.
pub async fn active_calendars(
    db: &impl ConnectionTrait,
    users: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, StoreError> {
    let users: BTreeSet<Uuid> = users.into_iter().collect();
    Ok(google_connections::Entity::find()
        .select_only()
        .column(google_connections::Column::UserId)
        .column(google_connections::Column::CalendarId)
        .filter(google_connections::Column::UserId.is_in(users))
        .filter(google_connections::Column::Status.eq(ACTIVE))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Users whose connection is `active`.
pub async fn active_users(db: &impl ConnectionTrait) -> Result<Vec<Uuid>, StoreError> {
    Ok(google_connections::Entity::find()
        .filter(google_connections::Column::Status.eq(ACTIVE))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.user_id)
        .collect())
}

/// Active connections whose access token expires before `before` (for the refresh job).
pub async fn expiring_tokens(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    Ok(google_connections::Entity::find()
        .filter(google_connections::Column::Status.eq(ACTIVE))
        .filter(google_connections::Column::TokenExpiresAt.lt(before))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.user_id)
        .collect())
}
