//! Notification channels of a user (created by the channel lifecycle; stopped on disconnect).

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::channels;
use super::StoreError;

pub use channels::Model as ChannelRow;

/// Channels of `user_id` not yet stopped.
pub async fn live(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<ChannelRow>, StoreError> {
    Ok(channels::Entity::find()
        .filter(channels::Column::UserId.eq(user_id))
        .filter(channels::Column::StoppedAt.is_null())
        .all(db)
        .await?)
}

/// Marks one channel stopped.
pub async fn mark_stopped(db: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    channels::Entity::update_many()
        .col_expr(channels::Column::StoppedAt, Expr::value(Some(Utc::now())))
        .filter(channels::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
