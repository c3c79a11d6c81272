//! Authorizations in flight: created by `GET /auth/google/authorize`, consumed once by the
//! callback.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::entities::oauth_states;
use super::StoreError;
use crate::domain::UserId;

pub use oauth_states::Model as PendingAuthorization;

/// Records a new authorization.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    db: &impl ConnectionTrait,
    nonce: &str,
    user_id: UserId,
    code_verifier_enc: String,
    return_to: Option<String>,
    calendar_mode: &str,
    expected_email: Option<String>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    oauth_states::ActiveModel {
        nonce: Set(nonce.to_owned()),
        user_id: Set(user_id.0),
        code_verifier_enc: Set(code_verifier_enc),
        return_to: Set(return_to),
        calendar_mode: Set(calendar_mode.to_owned()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(Utc::now()),
        expected_email: Set(expected_email),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Marks the authorization used and returns it — only the first caller gets it; a replay
/// (or an unknown nonce) gets `None`. Atomic across instances.
pub async fn consume(db: &impl ConnectionTrait, nonce: &str) -> Result<Option<PendingAuthorization>, StoreError> {
    let now = Utc::now();
    let updated = oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_states::Column::Nonce.eq(nonce))
        .filter(oauth_states::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    Ok(oauth_states::Entity::find_by_id(nonce.to_owned()).one(db).await?)
}

/// Removes authorizations that expired before `before`.
pub async fn purge_expired(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// Authorizations whose verifier is in the format `prefix` marks (an older encryption).
pub async fn with_sealed_prefix(
    db: &impl ConnectionTrait,
    prefix: &str,
) -> Result<Vec<PendingAuthorization>, StoreError> {
    Ok(oauth_states::Entity::find()
        .filter(oauth_states::Column::CodeVerifierEnc.like(format!("{prefix}%")))
        .all(db)
        .await?)
}

/// Replaces an authorization's verifier ciphertext by `new`, only if it still is `old`.
pub async fn replace_sealed(db: &impl ConnectionTrait, nonce: &str, old: &str, new: String) -> Result<(), StoreError> {
    oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::CodeVerifierEnc, Expr::value(new))
        .filter(oauth_states::Column::Nonce.eq(nonce))
        .filter(oauth_states::Column::CodeVerifierEnc.eq(old))
        .exec(db)
        .await?;
    Ok(())
}
