//! The change log (issue 16): what changed for each user, written in the same transaction
//! as the change, strictly ordered per user. `change_heads` holds each user's last
//! sequence number (taken with a row lock, so sequence order is commit order) and how far
//! the retention job has purged; `changes` holds one row per change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ChangeHeads {
    Table,
    UserId,
    Seq,
    PurgedThrough,
}

#[derive(DeriveIden, Clone, Copy)]
enum Changes {
    Table,
    UserId,
    Seq,
    Kind,
    Origin,
    SlotId,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeHeads::Table)
                    .if_not_exists()
                    .col(uuid(ChangeHeads::UserId).primary_key())
                    .col(big_integer(ChangeHeads::Seq).default(0))
                    .col(big_integer(ChangeHeads::PurgedThrough).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_change_heads_user")
                            .from(ChangeHeads::Table, ChangeHeads::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .if_not_exists()
                    .col(uuid(Changes::UserId))
                    .col(big_integer(Changes::Seq))
                    .col(string(Changes::Kind))
                    .col(string_null(Changes::Origin))
                    .col(uuid_null(Changes::SlotId))
                    .col(text(Changes::Data))
                    .col(timestamp_with_time_zone(Changes::CreatedAt))
                    .primary_key(Index::create().col(Changes::UserId).col(Changes::Seq))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_changes_user")
                            .from(Changes::Table, Changes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changes_created_at")
                    .table(Changes::Table)
                    .col(Changes::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Changes::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ChangeHeads::Table).if_exists().to_owned())
            .await
    }
}
