//! `idempotency_keys` remembers the slot a key created, not an HTTP answer: the API renders
//! the replay itself. Existing keys get their slot id from the stored answer's `id`; a key
//! whose stored answer names no slot is dropped (it could not be replayed). Then the
//! status and body columns go.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    SlotId,
    ResponseStatus,
    ResponseBody,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(ColumnDef::new(IdempotencyKeys::SlotId).uuid().null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let rows = db
            .query_all_raw(
                backend.build(
                    Query::select()
                        .columns([
                            IdempotencyKeys::UserId,
                            IdempotencyKeys::Key,
                            IdempotencyKeys::ResponseBody,
                        ])
                        .from(IdempotencyKeys::Table),
                ),
            )
            .await?;
        for row in rows {
            let user: uuid::Uuid = row.try_get("", "user_id")?;
            let key: String = row.try_get("", "key")?;
            let body: String = row.try_get("", "response_body")?;
            let slot = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["id"].as_str().and_then(|id| uuid::Uuid::parse_str(id).ok()));
            let which = Expr::col(IdempotencyKeys::UserId)
                .eq(Value::Uuid(Some(user)))
                .and(Expr::col(IdempotencyKeys::Key).eq(key));
            let statement: Statement = match slot {
                Some(slot) => backend.build(
                    Query::update()
                        .table(IdempotencyKeys::Table)
                        .value(IdempotencyKeys::SlotId, Value::Uuid(Some(slot)))
                        .and_where(which),
                ),
                None => backend.build(Query::delete().from_table(IdempotencyKeys::Table).and_where(which)),
            };
            db.execute_raw(statement).await?;
        }
        for column in [IdempotencyKeys::ResponseStatus, IdempotencyKeys::ResponseBody] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IdempotencyKeys::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(
                        ColumnDef::new(IdempotencyKeys::ResponseStatus)
                            .integer()
                            .not_null()
                            .default(201),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(
                        ColumnDef::new(IdempotencyKeys::ResponseBody)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .drop_column(IdempotencyKeys::SlotId)
                    .to_owned(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use sea_orm_migration::sea_orm::{ConnectionTrait, Database, Value};
    use sea_orm_migration::MigratorTrait;

    use super::*;
    use crate::Migrator;

    #[tokio::test]
    async fn stored_keys_keep_their_slot_and_keys_naming_none_are_dropped() {
        let path = std::env::temp_dir().join(format!("slotsync-migration-{}.db", uuid::Uuid::new_v4()));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        Migrator::up(&db, Some(7)).await.unwrap();
        let backend = db.get_database_backend();
        let (user, slot) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        db.execute_raw(
            backend.build(
                Query::insert()
                    .into_table(Alias::new("users"))
                    .columns(["id", "email", "api_token_hash", "created_at"].map(Alias::new))
                    .values_panic([
                        Value::Uuid(Some(user)).into(),
                        "a@example.com".into(),
                        "hash".into(),
                        "2026-11-30T00:00:00+00:00".into(),
                    ]),
            ),
        )
        .await
        .unwrap();
        for (key, body) in [
            ("kept", format!(r#"{{"id":"{slot}","title":"x"}}"#)),
            ("unreplayable", "{}".into()),
        ] {
            db.execute_raw(
                backend.build(
                    Query::insert()
                        .into_table(Alias::new("idempotency_keys"))
                        .columns(
                            [
                                "user_id",
                                "key",
                                "request_hash",
                                "response_status",
                                "response_body",
                                "created_at",
                            ]
                            .map(Alias::new),
                        )
                        .values_panic([
                            Value::Uuid(Some(user)).into(),
                            key.into(),
                            "h".into(),
                            201.into(),
                            body.into(),
                            "2026-11-30T00:00:00+00:00".into(),
                        ]),
                ),
            )
            .await
            .unwrap();
        }

        Migrator::up(&db, None).await.unwrap();

        let rows = db
            .query_all_raw(
                backend.build(
                    Query::select()
                        .columns([IdempotencyKeys::Key, IdempotencyKeys::SlotId])
                        .from(IdempotencyKeys::Table),
                ),
            )
            .await
            .unwrap();
        let kept: Vec<(String, uuid::Uuid)> = rows
            .iter()
            .map(|r| (r.try_get("", "key").unwrap(), r.try_get("", "slot_id").unwrap()))
            .collect();
        assert_eq!(kept, [("kept".to_owned(), slot)]);
        Migrator::down(&db, Some(1)).await.unwrap();
        drop(db);
        let _ = std::fs::remove_file(&path);
    }
}
