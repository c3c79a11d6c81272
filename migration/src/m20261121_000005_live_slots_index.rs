//! An index of live slots only, for `GET /slots`: the list filters `deleted_at IS NULL`
//! and orders by `start_at, id`. The index of all slots (`idx_slots_user_start`) made each
//! page visit every slot the user ever deleted (deleted slots are kept, see
//! `docs/decisions.md`), so a list slowed down as deletions accumulated. SQLite and
//! PostgreSQL both support partial indexes, with the same syntax.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_slots_user_start_live ON slots (user_id, start_at, id) WHERE deleted_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_slots_user_start_live")
                    .table(Alias::new("slots"))
                    .to_owned(),
            )
            .await
    }
}
