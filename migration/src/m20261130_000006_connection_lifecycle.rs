//! The connection lifecycle (round 2): a connection's identity is (Google account `sub`,
//! calendar id), and its *home generation* counts the re-homings, so a sync outcome
//! computed for an earlier home is never recorded against the new one; the dedicated
//! calendar of each (user, Google account) is remembered; deletions held by the
//! mass-deletion guard; the event each slot had in each home it left (so returning to a
//! calendar re-links its events instead of duplicating them); the progress of a
//! disconnect's event deletion; the address an authorize link expects.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum GoogleConnections {
    Table,
    GoogleSub,
    HomeGeneration,
}

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    HomeGeneration,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncStates {
    Table,
    CleanupTotal,
    CleanupDone,
    CleanupFailed,
    CleanupStartedAt,
    CleanupFinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum OauthStates {
    Table,
    ExpectedEmail,
}

#[derive(DeriveIden, Clone, Copy)]
enum DedicatedCalendars {
    Table,
    UserId,
    GoogleAccount,
    CalendarId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum HeldDeletions {
    Table,
    SlotId,
    UserId,
    EventId,
    SlotVersion,
    HeldAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SlotLinks {
    Table,
    SlotId,
    HomeKey,
    UserId,
    EventId,
    Etag,
    Fingerprint,
    LeftAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            (
                GoogleConnections::Table.into_iden(),
                string_null(GoogleConnections::GoogleSub),
            ),
            (
                GoogleConnections::Table.into_iden(),
                big_integer(GoogleConnections::HomeGeneration).default(0).to_owned(),
            ),
            (
                Slots::Table.into_iden(),
                big_integer(Slots::HomeGeneration).default(0).to_owned(),
            ),
            (SyncStates::Table.into_iden(), integer_null(SyncStates::CleanupTotal)),
            (SyncStates::Table.into_iden(), integer_null(SyncStates::CleanupDone)),
            (SyncStates::Table.into_iden(), integer_null(SyncStates::CleanupFailed)),
            (
                SyncStates::Table.into_iden(),
                timestamp_with_time_zone_null(SyncStates::CleanupStartedAt),
            ),
            (
                SyncStates::Table.into_iden(),
                timestamp_with_time_zone_null(SyncStates::CleanupFinishedAt),
            ),
            (OauthStates::Table.into_iden(), string_null(OauthStates::ExpectedEmail)),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(DedicatedCalendars::Table)
                    .if_not_exists()
                    .col(uuid(DedicatedCalendars::UserId))
                    .col(string(DedicatedCalendars::GoogleAccount))
                    .col(string(DedicatedCalendars::CalendarId))
                    .col(timestamp_with_time_zone(DedicatedCalendars::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(DedicatedCalendars::UserId)
                            .col(DedicatedCalendars::GoogleAccount),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_dedicated_calendars_user")
                            .from(DedicatedCalendars::Table, DedicatedCalendars::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeldDeletions::Table)
                    .if_not_exists()
                    .col(uuid(HeldDeletions::SlotId).primary_key())
                    .col(uuid(HeldDeletions::UserId))
                    .col(string(HeldDeletions::EventId))
                    .col(big_integer(HeldDeletions::SlotVersion))
                    .col(timestamp_with_time_zone(HeldDeletions::HeldAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_held_deletions_user")
                            .from(HeldDeletions::Table, HeldDeletions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SlotLinks::Table)
                    .if_not_exists()
                    .col(uuid(SlotLinks::SlotId))
                    .col(string(SlotLinks::HomeKey))
                    .col(uuid(SlotLinks::UserId))
                    .col(string(SlotLinks::EventId))
                    .col(string_null(SlotLinks::Etag))
                    .col(string_null(SlotLinks::Fingerprint))
                    .col(timestamp_with_time_zone(SlotLinks::LeftAt))
                    .primary_key(Index::create().col(SlotLinks::SlotId).col(SlotLinks::HomeKey))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_slot_links_user")
                            .from(SlotLinks::Table, SlotLinks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_slot_links_user_home")
                    .table(SlotLinks::Table)
                    .col(SlotLinks::UserId)
                    .col(SlotLinks::HomeKey)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_held_deletions_user")
                    .table(HeldDeletions::Table)
                    .col(HeldDeletions::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SlotLinks::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(HeldDeletions::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DedicatedCalendars::Table).if_exists().to_owned())
            .await?;
        let columns = [
            (OauthStates::Table.into_iden(), OauthStates::ExpectedEmail.into_iden()),
            (SyncStates::Table.into_iden(), SyncStates::CleanupFinishedAt.into_iden()),
            (SyncStates::Table.into_iden(), SyncStates::CleanupStartedAt.into_iden()),
            (SyncStates::Table.into_iden(), SyncStates::CleanupFailed.into_iden()),
            (SyncStates::Table.into_iden(), SyncStates::CleanupDone.into_iden()),
            (SyncStates::Table.into_iden(), SyncStates::CleanupTotal.into_iden()),
            (Slots::Table.into_iden(), Slots::HomeGeneration.into_iden()),
            (
                GoogleConnections::Table.into_iden(),
                GoogleConnections::HomeGeneration.into_iden(),
            ),
            (
                GoogleConnections::Table.into_iden(),
                GoogleConnections::GoogleSub.into_iden(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
