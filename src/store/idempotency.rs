//! Idempotency keys for `POST /slots`: the first response is kept and replayed.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use super::entities::idempotency_keys;
use super::StoreError;

pub use idempotency_keys::Model as StoredResponse;

/// The stored response for `(user, key)`, if any.
pub async fn find(db: &impl ConnectionTrait, user_id: Uuid, key: &str) -> Result<Option<StoredResponse>, StoreError> {
    Ok(idempotency_keys::Entity::find_by_id((user_id, key.to_owned()))
        .one(db)
        .await?)
}

/// Records the response to `(user, key)`; a concurrent first use of the same key is
/// [`StoreError::Duplicate`] (the caller's transaction then rolls back and replays).
pub async fn save(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    idempotency_keys::ActiveModel {
        user_id: Set(user_id),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response_status: Set(i32::from(status)),
        response_body: Set(body.to_owned()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .map_err(|e| StoreError::from_insert(e, "this idempotency key"))?;
    Ok(())
}
