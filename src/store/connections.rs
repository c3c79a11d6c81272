//! Google connections: one per user, tokens stored encrypted by the caller.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;

use super::entities::{dedicated_calendars, google_connections, slots, sync_states};
use super::StoreError;
use crate::domain::{ConnectionStatus, PushState, UserId};

pub use google_connections::Model as Connection;

/// What a successful OAuth exchange yields (tokens already encrypted).
pub struct NewConnection {
    pub user_id: UserId,
    pub google_email: Option<String>,
    /// The Google account's OpenID `sub`.
    pub google_sub: Option<String>,
    pub calendar_id: String,
    pub access_token_enc: String,
    pub refresh_token_enc: Option<String>,
    pub token_expires_at: DateTime<Utc>,
    pub granted_scopes: String,
}

/// Marks an `active` connection `needs_reauth` (a connection already revoked or stopped
/// keeps its status: a call in flight during a disconnect must not undo it).
pub async fn mark_needs_reauth(
    db: &impl ConnectionTrait,
    user_id: UserId,
    last_error: String,
) -> Result<(), StoreError> {
    google_connections::Entity::update_many()
        .col_expr(
            google_connections::Column::Status,
            Expr::value(ConnectionStatus::NeedsReauth),
        )
        .col_expr(google_connections::Column::LastError, Expr::value(Some(last_error)))
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
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
        user_id: Set(c.user_id.0),
        google_email: Set(c.google_email),
        calendar_id: Set(c.calendar_id),
        access_token_enc: Set(Some(c.access_token_enc)),
        refresh_token_enc: Set(refresh),
        token_expires_at: Set(Some(c.token_expires_at)),
        granted_scopes: Set(c.granted_scopes),
        status: Set(ConnectionStatus::Active),
        connected_at: Set(now),
        last_error: Set(None),
        google_sub: Set(c.google_sub),
        home_generation: Set(0),
    };
    google_connections::Entity::insert(model)
        .on_conflict(
            OnConflict::column(google_connections::Column::UserId)
                .update_columns([
                    google_connections::Column::GoogleEmail,
                    google_connections::Column::GoogleSub,
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
        user_id: Set(c.user_id.0),
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
        cleanup_total: Set(None),
        cleanup_done: Set(None),
        cleanup_failed: Set(None),
        cleanup_started_at: Set(None),
        cleanup_finished_at: Set(None),
        next_pull_at: Set(None),
        fallback_lease_until: Set(None),
        last_notified_at: Set(None),
        fallback_pulls: Set(0),
    })
    .on_conflict_do_nothing_on([sync_states::Column::UserId])
    .exec(db)
    .await?;
    find(db, c.user_id).await?.ok_or(StoreError::NotFound)
}

/// The user's connection, if any.
pub async fn find(db: &impl ConnectionTrait, user_id: UserId) -> Result<Option<Connection>, StoreError> {
    Ok(google_connections::Entity::find_by_id(user_id.0).one(db).await?)
}

/// Stores a refreshed access token (encrypted) and its expiry.
pub async fn save_refreshed_token(
    db: &impl ConnectionTrait,
    user_id: UserId,
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
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets the status and the last error.
pub async fn set_status(
    db: &impl ConnectionTrait,
    user_id: UserId,
    status: ConnectionStatus,
    last_error: Option<String>,
) -> Result<(), StoreError> {
    google_connections::Entity::update_many()
        .col_expr(google_connections::Column::Status, Expr::value(status))
        .col_expr(google_connections::Column::LastError, Expr::value(last_error))
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Erases the tokens and marks the connection `revoked` (the row stays for the status);
/// with `only_from`, only a connection in that status.
pub async fn erase_tokens(
    db: &impl ConnectionTrait,
    user_id: UserId,
    only_from: Option<ConnectionStatus>,
) -> Result<(), StoreError> {
    let mut update = google_connections::Entity::update_many();
    if let Some(status) = only_from {
        update = update.filter(google_connections::Column::Status.eq(status));
    }
    update
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
        .col_expr(
            google_connections::Column::Status,
            Expr::value(ConnectionStatus::Revoked),
        )
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .exec(db)
        .await?;
    Ok(())
}

/// The calendar and home generation of each of `users` whose connection is `active`.
pub async fn active_calendars(
    db: &impl ConnectionTrait,
    users: impl IntoIterator<Item = UserId>,
) -> Result<HashMap<UserId, (String, i64)>, StoreError> {
    let users: BTreeSet<Uuid> = users.into_iter().map(|u| u.0).collect();
    Ok(google_connections::Entity::find()
        .select_only()
        .column(google_connections::Column::UserId)
        .column(google_connections::Column::CalendarId)
        .column(google_connections::Column::HomeGeneration)
        .filter(google_connections::Column::UserId.is_in(users))
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .into_tuple::<(Uuid, String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(user, calendar, home)| (UserId(user), (calendar, home)))
        .collect())
}

/// Starts a new home for the user's connection (a re-homing): the generation after the
/// current one, which is returned.
pub async fn next_home(db: &impl ConnectionTrait, user_id: UserId) -> Result<i64, StoreError> {
    google_connections::Entity::update_many()
        .col_expr(
            google_connections::Column::HomeGeneration,
            Expr::col(google_connections::Column::HomeGeneration).add(1),
        )
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .exec(db)
        .await?;
    let conn = find(db, user_id).await?.ok_or(StoreError::NotFound)?;
    Ok(conn.home_generation)
}

/// The connection's home generation, read under a shared lock on PostgreSQL (a re-homing
/// waits for the transaction that read it; SQLite's write transactions are serial).
pub async fn home_locked(db: &impl ConnectionTrait, user_id: UserId) -> Result<Option<i64>, StoreError> {
    Ok(google_connections::Entity::find_by_id(user_id.0)
        .select_only()
        .column(google_connections::Column::HomeGeneration)
        .lock_shared()
        .into_tuple::<i64>()
        .one(db)
        .await?)
}

/// Records a grant that lacks a required scope: the new tokens and scopes, status
/// `missing_scopes` with `reason`. The connection's home (account, calendar, generation)
/// is left as it was: nothing can be synced until the scope is granted, and the next full
/// grant is compared with that home. Creates the row (home: the primary calendar) if the
/// user never connected.
pub async fn record_partial_grant(
    db: &impl ConnectionTrait,
    c: NewConnection,
    reason: &str,
) -> Result<Connection, StoreError> {
    let user_id = c.user_id;
    let refresh = c.refresh_token_enc.clone();
    if find(db, user_id).await?.is_none() {
        upsert(db, c).await?;
    } else {
        let mut update = google_connections::Entity::update_many()
            .col_expr(google_connections::Column::GoogleEmail, Expr::value(c.google_email))
            .col_expr(
                google_connections::Column::AccessTokenEnc,
                Expr::value(Some(c.access_token_enc)),
            )
            .col_expr(
                google_connections::Column::TokenExpiresAt,
                Expr::value(Some(c.token_expires_at)),
            )
            .col_expr(google_connections::Column::GrantedScopes, Expr::value(c.granted_scopes))
            .col_expr(google_connections::Column::ConnectedAt, Expr::value(Utc::now()));
        if let Some(r) = refresh {
            update = update.col_expr(google_connections::Column::RefreshTokenEnc, Expr::value(Some(r)));
        }
        update
            .filter(google_connections::Column::UserId.eq(user_id.0))
            .exec(db)
            .await?;
    }
    set_status(db, user_id, ConnectionStatus::MissingScopes, Some(reason.to_owned())).await?;
    find(db, user_id).await?.ok_or(StoreError::NotFound)
}

/// Moves an `active` connection to `status` with `reason` (a connection already revoked,
/// stopped or disconnecting keeps its status). Returns whether it moved.
pub async fn degrade(
    db: &impl ConnectionTrait,
    user_id: UserId,
    status: ConnectionStatus,
    reason: &str,
) -> Result<bool, StoreError> {
    let moved = google_connections::Entity::update_many()
        .col_expr(google_connections::Column::Status, Expr::value(status))
        .col_expr(
            google_connections::Column::LastError,
            Expr::value(Some(reason.to_owned())),
        )
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .exec(db)
        .await?;
    Ok(moved.rows_affected > 0)
}

/// Users whose connection is `disconnecting` (a disconnect's event deletion to finish).
pub async fn disconnecting_users(db: &impl ConnectionTrait) -> Result<Vec<UserId>, StoreError> {
    Ok(google_connections::Entity::find()
        .select_only()
        .column(google_connections::Column::UserId)
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Disconnecting))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .map(UserId)
        .collect())
}

/// Users whose connection is `active`.
pub async fn active_users(db: &impl ConnectionTrait) -> Result<Vec<UserId>, StoreError> {
    Ok(google_connections::Entity::find()
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .all(db)
        .await?
        .into_iter()
        .map(|c| UserId(c.user_id))
        .collect())
}

/// Users with slots waiting to be pushed.
fn with_pushes() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .distinct()
        .column(slots::Column::UserId)
        .from(slots::Entity)
        .and_where(slots::Column::PushState.eq(PushState::Dirty))
        .to_owned()
}

/// Active connections whose access token expires before `before` and that have work
/// waiting — a slot to push — for the refresh ahead of time; everyone else's token is
/// refreshed on use.
pub async fn expiring_tokens_with_work(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<Vec<UserId>, StoreError> {
    Ok(google_connections::Entity::find()
        .select_only()
        .column(google_connections::Column::UserId)
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .filter(google_connections::Column::TokenExpiresAt.lt(before))
        .filter(google_connections::Column::UserId.in_subquery(with_pushes()))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .map(UserId)
        .collect())
}

/// How many tokens [`expiring_tokens_with_work`] would refresh, and the soonest expiry
/// among them.
pub async fn expiring_with_work_backlog(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    let due = google_connections::Entity::find()
        .filter(google_connections::Column::Status.eq(ConnectionStatus::Active))
        .filter(google_connections::Column::TokenExpiresAt.lt(before))
        .filter(google_connections::Column::UserId.in_subquery(with_pushes()));
    let count = sea_orm::PaginatorTrait::count(due.clone(), db).await?;
    let soonest = due
        .select_only()
        .column(google_connections::Column::TokenExpiresAt)
        .order_by_asc(google_connections::Column::TokenExpiresAt)
        .limit(1)
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    Ok((count, soonest))
}

/// The dedicated calendar slotsync created for `user` in the Google account `account`.
pub async fn dedicated_calendar(
    db: &impl ConnectionTrait,
    user_id: UserId,
    account: &str,
) -> Result<Option<String>, StoreError> {
    Ok(dedicated_calendars::Entity::find_by_id((user_id.0, account.to_owned()))
        .one(db)
        .await?
        .map(|d| d.calendar_id))
}

/// Remembers (or replaces) the dedicated calendar of `user` in `account`.
pub async fn remember_dedicated_calendar(
    db: &impl ConnectionTrait,
    user_id: UserId,
    account: &str,
    calendar_id: &str,
) -> Result<(), StoreError> {
    dedicated_calendars::Entity::insert(dedicated_calendars::ActiveModel {
        user_id: Set(user_id.0),
        google_account: Set(account.to_owned()),
        calendar_id: Set(calendar_id.to_owned()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            dedicated_calendars::Column::UserId,
            dedicated_calendars::Column::GoogleAccount,
        ])
        .update_columns([
            dedicated_calendars::Column::CalendarId,
            dedicated_calendars::Column::CreatedAt,
        ])
        .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Connections holding a token in the format `prefix` marks (an older encryption).
pub async fn with_sealed_prefix(db: &impl ConnectionTrait, prefix: &str) -> Result<Vec<Connection>, StoreError> {
    let like = format!("{prefix}%");
    Ok(google_connections::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(google_connections::Column::AccessTokenEnc.like(like.clone()))
                .add(google_connections::Column::RefreshTokenEnc.like(like)),
        )
        .all(db)
        .await?)
}

/// Replaces one stored token ciphertext by `new`, only if it still is `old`.
pub async fn replace_sealed(
    db: &impl ConnectionTrait,
    user_id: UserId,
    refresh: bool,
    old: &str,
    new: String,
) -> Result<(), StoreError> {
    let column = if refresh {
        google_connections::Column::RefreshTokenEnc
    } else {
        google_connections::Column::AccessTokenEnc
    };
    google_connections::Entity::update_many()
        .col_expr(column, Expr::value(Some(new)))
        .filter(google_connections::Column::UserId.eq(user_id.0))
        .filter(column.eq(old))
        .exec(db)
        .await?;
    Ok(())
}
