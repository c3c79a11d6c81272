//! `changes`: the change log, one row per change of a user, in sequence order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// `slot.created`, `connection.needs_reauth`, …
    pub kind: String,
    /// Who made a slot change: `api`, `google` or `system`.
    pub origin: Option<String>,
    pub slot_id: Option<Uuid>,
    /// JSON: the slot as it was after the change, or the event's detail.
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
