//! Indexes for the retention job (`purge_old_records`): it deletes audit events and
//! idempotency keys older than a cut-off, in batches; without these, each batch scans the
//! table to find its rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SyncEvents {
    Table,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_events_at")
                    .table(SyncEvents::Table)
                    .col(SyncEvents::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created_at")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_idempotency_keys_created_at").to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_sync_events_at").to_owned())
            .await
    }
}
