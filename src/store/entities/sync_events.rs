//! `sync_events`: the audit and conflict log (connect, disconnect, conflict, breaker_tripped, …).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub slot_id: Option<Uuid>,
    /// An `AuditKind`'s spelling, kept a string: older rows may hold kinds no longer written.
    pub kind: String,
    /// JSON object with the details of the event.
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
