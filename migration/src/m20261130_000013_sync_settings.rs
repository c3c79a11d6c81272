//! Per-user sync settings and selective import (issue 17): a `sync_settings` row per user
//! who chose something (a null column follows the deployment's default), and on each
//! slot what an imported event is (`event_type`), why it is read-only, how many attendees
//! a meeting the user organises lists, and the attendees' notification chosen with a
//! deletion (`delete_send_updates`, read by the push).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SyncSettings {
    Table,
    UserId,
    Import,
    SkipFree,
    SkipPrivate,
    SkipDeclined,
    EventTypes,
    ConflictPolicy,
    FullSyncWindowDays,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    EventType,
    ReadOnlyReason,
    AttendeeCount,
    DeleteSendUpdates,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncSettings::Table)
                    .if_not_exists()
                    .col(uuid(SyncSettings::UserId).primary_key())
                    .col(boolean_null(SyncSettings::Import))
                    .col(boolean_null(SyncSettings::SkipFree))
                    .col(boolean_null(SyncSettings::SkipPrivate))
                    .col(boolean_null(SyncSettings::SkipDeclined))
                    .col(text_null(SyncSettings::EventTypes))
                    .col(string_null(SyncSettings::ConflictPolicy))
                    .col(integer_null(SyncSettings::FullSyncWindowDays))
                    .col(timestamp_with_time_zone(SyncSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_settings_user")
                            .from(SyncSettings::Table, SyncSettings::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            string_null(Slots::EventType),
            text_null(Slots::ReadOnlyReason),
            integer_null(Slots::AttendeeCount),
            string_null(Slots::DeleteSendUpdates),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Slots::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Slots::EventType,
            Slots::ReadOnlyReason,
            Slots::AttendeeCount,
            Slots::DeleteSendUpdates,
        ] {
            manager
                .alter_table(Table::alter().table(Slots::Table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(SyncSettings::Table).if_exists().to_owned())
            .await?;
        Ok(())
    }
}
