//! Recurring slots (issue 15): `occurrence_exceptions` holds the occurrences of a series
//! that differ from its rule — moved, retitled or cancelled — keyed by (slot, original
//! start), one row per Google instance override. `original_start` is the instance id's
//! suffix (`20260302T080000Z`, or `20260302` for all-day series). The override's content
//! columns are null for a cancellation. `synced_fingerprint`/`google_etag` say what Google
//! holds for the instance: a row whose content's fingerprint differs is pushed with the
//! slot. `slots.series_of` links the second part of a "this and following" split in
//! Google to the series it was cut from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum OccurrenceExceptions {
    Table,
    SlotId,
    OriginalStart,
    UserId,
    OriginalAt,
    Cancelled,
    Title,
    Description,
    Location,
    StartAt,
    EndAt,
    StartDate,
    EndDate,
    Origin,
    SyncedFingerprint,
    GoogleEtag,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    SeriesOf,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OccurrenceExceptions::Table)
                    .if_not_exists()
                    .col(uuid(OccurrenceExceptions::SlotId))
                    .col(string(OccurrenceExceptions::OriginalStart))
                    .col(uuid(OccurrenceExceptions::UserId))
                    .col(timestamp_with_time_zone(OccurrenceExceptions::OriginalAt))
                    .col(boolean(OccurrenceExceptions::Cancelled).default(false))
                    .col(text_null(OccurrenceExceptions::Title))
                    .col(text_null(OccurrenceExceptions::Description))
                    .col(text_null(OccurrenceExceptions::Location))
                    .col(timestamp_with_time_zone_null(OccurrenceExceptions::StartAt))
                    .col(timestamp_with_time_zone_null(OccurrenceExceptions::EndAt))
                    .col(date_null(OccurrenceExceptions::StartDate))
                    .col(date_null(OccurrenceExceptions::EndDate))
                    .col(string(OccurrenceExceptions::Origin))
                    .col(string_null(OccurrenceExceptions::SyncedFingerprint))
                    .col(string_null(OccurrenceExceptions::GoogleEtag))
                    .col(timestamp_with_time_zone(OccurrenceExceptions::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(OccurrenceExceptions::SlotId)
                            .col(OccurrenceExceptions::OriginalStart),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_occurrence_exceptions_slot")
                            .from(OccurrenceExceptions::Table, OccurrenceExceptions::SlotId)
                            .to(Slots::Table, Slots::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Slots::Table)
                    .add_column(ColumnDef::new(Slots::SeriesOf).uuid().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Slots::Table)
                    .drop_column(Slots::SeriesOf)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(OccurrenceExceptions::Table).if_exists().to_owned())
            .await
    }
}
