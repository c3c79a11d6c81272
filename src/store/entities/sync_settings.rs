//! `sync_settings`: what a user chose for their sync; a null column follows the
//! deployment's default.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub import: Option<bool>,
    pub skip_free: Option<bool>,
    pub skip_private: Option<bool>,
    pub skip_declined: Option<bool>,
    /// JSON object: special event type → `skip | read_only | import` (types chosen only).
    #[sea_orm(column_type = "Text", nullable)]
    pub event_types: Option<String>,
    pub conflict_policy: Option<String>,
    pub full_sync_window_days: Option<i32>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
