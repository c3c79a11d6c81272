//! `change_heads`: each user's last change-log sequence number, and how far the retention
//! job has purged the log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The sequence number of the user's last change.
    pub seq: i64,
    /// Changes up to this sequence number were purged (older than the retention).
    pub purged_through: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
