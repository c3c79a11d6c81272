//! `occurrence_exceptions`: the occurrences of a recurring slot that differ from its rule
//! (moved, retitled or cancelled), one per Google instance override.

use sea_orm::entity::prelude::*;

use crate::domain::OccurrenceOrigin;

/// Serialisable: the change log keeps the occurrence as it was after the change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "occurrence_exceptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot_id: Uuid,
    /// The original start's basic form (`20260302T080000Z`, or `20260302` all-day): the
    /// suffix of Google's instance id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub original_start: String,
    pub user_id: Uuid,
    /// The original start as an instant (all-day: local midnight in the slot's zone).
    pub original_at: DateTimeUtc,
    /// The occurrence is cancelled (the content columns are then null).
    pub cancelled: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub location: Option<String>,
    pub start_at: Option<DateTimeUtc>,
    pub end_at: Option<DateTimeUtc>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// Who made the exception.
    pub origin: OccurrenceOrigin,
    /// Fingerprint of what Google holds for this instance (`None`: not pushed yet).
    pub synced_fingerprint: Option<String>,
    pub google_etag: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
