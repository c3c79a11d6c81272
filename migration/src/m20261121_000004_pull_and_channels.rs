//! What the pull, the slot breaker and the channel lifecycle keep: which side changed a
//! slot last and the breaker's alternation window; a renewal lease per channel (so one
//! instance renews it) and the channel that replaced it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    LastChangeSide,
    BreakerAlternations,
    BreakerWindowStart,
}

#[derive(DeriveIden, Clone, Copy)]
enum Channels {
    Table,
    RenewLeaseUntil,
    ReplacedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            (Slots::Table.into_iden(), string_null(Slots::LastChangeSide)),
            (
                Slots::Table.into_iden(),
                integer(Slots::BreakerAlternations).default(0).to_owned(),
            ),
            (
                Slots::Table.into_iden(),
                timestamp_with_time_zone_null(Slots::BreakerWindowStart),
            ),
            (
                Channels::Table.into_iden(),
                timestamp_with_time_zone_null(Channels::RenewLeaseUntil),
            ),
            (Channels::Table.into_iden(), uuid_null(Channels::ReplacedBy)),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(Table::alter().table(table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (Channels::Table.into_iden(), Channels::ReplacedBy.into_iden()),
            (Channels::Table.into_iden(), Channels::RenewLeaseUntil.into_iden()),
            (Slots::Table.into_iden(), Slots::BreakerWindowStart.into_iden()),
            (Slots::Table.into_iden(), Slots::BreakerAlternations.into_iden()),
            (Slots::Table.into_iden(), Slots::LastChangeSide.into_iden()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
