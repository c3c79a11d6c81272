//! `slot_links`: the event a slot had in a home (Google account + calendar) it left, so a
//! return to that calendar links the slot to its event again rather than adding another.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "slot_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot_id: Uuid,
    /// `<account>|<calendar id>` (see `sync::home::Home::key`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub home_key: String,
    pub user_id: Uuid,
    pub event_id: String,
    pub etag: Option<String>,
    pub fingerprint: Option<String>,
    pub left_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
