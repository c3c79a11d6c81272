//! `held_deletions`: deletions from Google that the mass-deletion guard held for the user
//! to apply or discard.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "held_deletions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot_id: Uuid,
    pub user_id: Uuid,
    /// The event Google deleted.
    pub event_id: String,
    /// The slot's version when the deletion was held: applied only if still there.
    pub slot_version: i64,
    pub held_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
