//! Push bookkeeping per connection: the last push error and when it happened, shown by
//! `GET /sync/status`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SyncStates {
    Table,
    LastPushError,
    LastPushErrorAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(SyncStates::Table)
                    .add_column(text_null(SyncStates::LastPushError))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SyncStates::Table)
                    .add_column(timestamp_with_time_zone_null(SyncStates::LastPushErrorAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [SyncStates::LastPushErrorAt, SyncStates::LastPushError] {
            manager
                .alter_table(Table::alter().table(SyncStates::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
