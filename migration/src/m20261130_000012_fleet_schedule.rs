//! Periodic work for a fleet (issue 18): each connection's sync state carries when its
//! next fallback pull is due, the lease of the instance that claimed it, when its channel
//! last delivered a notification, and how many fallback pulls it had; one heartbeat row
//! per running instance, so each takes its share of the Google quota.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SyncStates {
    Table,
    NextPullAt,
    FallbackLeaseUntil,
    LastNotifiedAt,
    FallbackPulls,
}

#[derive(DeriveIden, Clone, Copy)]
enum Instances {
    Table,
    Id,
    Host,
    StartedAt,
    HeartbeatAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time. Existing
        // connections get their first due time from the next `fallback_sync` run (a random
        // phase within the interval), so the migration writes no rows.
        let columns = [
            timestamp_with_time_zone_null(SyncStates::NextPullAt),
            timestamp_with_time_zone_null(SyncStates::FallbackLeaseUntil),
            timestamp_with_time_zone_null(SyncStates::LastNotifiedAt),
            big_integer(SyncStates::FallbackPulls).default(0).to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncStates::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_states_next_pull_at")
                    .table(SyncStates::Table)
                    .col(SyncStates::NextPullAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Instances::Table)
                    .if_not_exists()
                    .col(uuid(Instances::Id).primary_key())
                    .col(string(Instances::Host))
                    .col(timestamp_with_time_zone(Instances::StartedAt))
                    .col(timestamp_with_time_zone(Instances::HeartbeatAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Instances::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sync_states_next_pull_at")
                    .table(SyncStates::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            SyncStates::NextPullAt,
            SyncStates::FallbackLeaseUntil,
            SyncStates::LastNotifiedAt,
            SyncStates::FallbackPulls,
        ] {
            manager
                .alter_table(Table::alter().table(SyncStates::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
