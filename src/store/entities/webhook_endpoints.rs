//! `webhook_endpoints`: where a user's changes are delivered as signed webhooks.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner; `None` for a deployment-wide endpoint (created by the admin) that
    /// receives every user's changes.
    pub user_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// JSON array of change types; empty = every type.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    pub enabled: bool,
    /// The signing secret (`whsec_…`), encrypted.
    #[sea_orm(column_type = "Text")]
    pub secret_enc: String,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    #[sea_orm(column_type = "Text", nullable)]
    pub previous_secret_enc: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    /// Why it was disabled (410, failing too long), when it was.
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed (cleared by a success).
    pub failing_since: Option<DateTimeUtc>,
    /// A worker delivers to it until then (its lease).
    pub delivering_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
