//! `dedicated_calendars`: the calendar slotsync created for a (user, Google account), so a
//! reconnect reuses it rather than creating another.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dedicated_calendars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The Google account's `sub` (its email when Google gave no `sub`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub google_account: String,
    pub calendar_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
