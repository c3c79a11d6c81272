//! How a slot appears in Google Calendar (issue 17): `visibility`, `transparency`,
//! `color_id` and `reminders` on `slots`. Each is null for its default (`default`, `busy`,
//! the calendar's colour, the calendar's default reminders), so existing slots need no
//! data change and keep their meaning. `reminders` holds the custom reminders as
//! `popup:10,email:60` (empty: none at all).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    Visibility,
    Transparency,
    ColorId,
    Reminders,
}

const COLUMNS: [Slots; 4] = [Slots::Visibility, Slots::Transparency, Slots::ColorId, Slots::Reminders];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Slots::Table)
                        .add_column(string_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS.into_iter().rev() {
            manager
                .alter_table(Table::alter().table(Slots::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
