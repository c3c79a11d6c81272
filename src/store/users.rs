//! Users: created by an admin, authenticated by the hash of their API token.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;

use super::entities::{
    change_heads, changes, channels, dedicated_calendars, google_connections, held_deletions, idempotency_keys,
    oauth_states, slot_links, slots, sync_events, sync_states, users, webhook_deliveries, webhook_endpoints,
};
use super::StoreError;
use crate::domain::UserId;

pub use users::Model as User;

/// Inserts a user; a taken email is [`StoreError::Duplicate`].
pub async fn create(
    db: &impl ConnectionTrait,
    email: &str,
    display_name: Option<String>,
    api_token_hash: String,
) -> Result<User, StoreError> {
    users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.to_owned()),
        display_name: Set(display_name),
        api_token_hash: Set(api_token_hash),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .map_err(|e| StoreError::from_insert(e, "a user with this email"))
}

/// The user whose API token hashes to `hash`.
pub async fn find_by_token_hash(db: &impl ConnectionTrait, hash: &str) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::ApiTokenHash.eq(hash))
        .one(db)
        .await?)
}

/// One user by id.
pub async fn find(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find_by_id(id.0).one(db).await?)
}

/// A page of users ordered by email, after `after_email` (exclusive); `limit + 1` rows are
/// read so the caller knows whether another page follows.
pub async fn list(db: &impl ConnectionTrait, after_email: Option<&str>, limit: u64) -> Result<Vec<User>, StoreError> {
    let mut q = users::Entity::find().order_by_asc(users::Column::Email);
    if let Some(after) = after_email {
        q = q.filter(users::Column::Email.gt(after));
    }
    Ok(q.limit(limit + 1).all(db).await?)
}

/// Replaces the user's API token hash (the old token stops working with this write).
/// Returns whether the user exists.
pub async fn set_token_hash(db: &impl ConnectionTrait, id: UserId, api_token_hash: String) -> Result<bool, StoreError> {
    use sea_orm::sea_query::Expr;
    let done = users::Entity::update_many()
        .col_expr(users::Column::ApiTokenHash, Expr::value(api_token_hash))
        .filter(users::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Deletes a user and everything they own, in one transaction.
pub async fn delete_with_data(db: &sea_orm::DatabaseConnection, id: UserId) -> Result<(), StoreError> {
    let UserId(id) = id;
    let txn = super::begin_write(db).await?;
    if users::Entity::find_by_id(id).one(&txn).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    webhook_endpoints::Entity::delete_many()
        .filter(webhook_endpoints::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    changes::Entity::delete_many()
        .filter(changes::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    change_heads::Entity::delete_many()
        .filter(change_heads::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    sync_events::Entity::delete_many()
        .filter(sync_events::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    channels::Entity::delete_many()
        .filter(channels::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    sync_states::Entity::delete_many()
        .filter(sync_states::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    google_connections::Entity::delete_many()
        .filter(google_connections::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    held_deletions::Entity::delete_many()
        .filter(held_deletions::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    slot_links::Entity::delete_many()
        .filter(slot_links::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    dedicated_calendars::Entity::delete_many()
        .filter(dedicated_calendars::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    slots::Entity::delete_many()
        .filter(slots::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    users::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}
