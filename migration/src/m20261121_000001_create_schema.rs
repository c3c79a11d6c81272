//! The whole schema of DESIGN §3: users, connections, slots (with their outbox columns),
//! sync states, channels, the sync-event log and idempotency keys, with the indexes the
//! engine's hot paths use.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    ApiTokenHash,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GoogleConnections {
    Table,
    UserId,
    GoogleEmail,
    CalendarId,
    AccessTokenEnc,
    RefreshTokenEnc,
    TokenExpiresAt,
    GrantedScopes,
    Status,
    ConnectedAt,
    LastError,
}

#[derive(DeriveIden, Clone, Copy)]
enum Slots {
    Table,
    Id,
    UserId,
    Title,
    Description,
    Location,
    StartAt,
    EndAt,
    Timezone,
    AllDay,
    StartDate,
    EndDate,
    Recurrence,
    Source,
    Version,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
    GoogleEventId,
    GoogleEtag,
    SyncedFingerprint,
    SyncedVersion,
    LastSyncedAt,
    PushState,
    PushAttempts,
    NextPushAt,
    PushLeaseUntil,
    LastPushError,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncStates {
    Table,
    UserId,
    SyncToken,
    FullSyncedAt,
    LastPullAt,
    PullRequestedAt,
    PullLeaseUntil,
    LastMessageNumber,
    ConsecutiveFailures,
    BreakerOpenUntil,
    LastError,
}

#[derive(DeriveIden, Clone, Copy)]
enum Channels {
    Table,
    Id,
    UserId,
    ResourceId,
    ExpiresAt,
    CreatedAt,
    StoppedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncEvents {
    Table,
    Id,
    UserId,
    SlotId,
    Kind,
    Detail,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
}

fn fk_user<T: IntoIden + 'static>(table: T, name: &str, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(string_null(Users::DisplayName))
                    .col(string_uniq(Users::ApiTokenHash))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GoogleConnections::Table)
                    .if_not_exists()
                    .col(uuid(GoogleConnections::UserId).primary_key())
                    .col(string_null(GoogleConnections::GoogleEmail))
                    .col(string(GoogleConnections::CalendarId))
                    .col(text_null(GoogleConnections::AccessTokenEnc))
                    .col(text_null(GoogleConnections::RefreshTokenEnc))
                    .col(timestamp_with_time_zone_null(GoogleConnections::TokenExpiresAt))
                    .col(text(GoogleConnections::GrantedScopes))
                    .col(string(GoogleConnections::Status))
                    .col(timestamp_with_time_zone(GoogleConnections::ConnectedAt))
                    .col(text_null(GoogleConnections::LastError))
                    .foreign_key(&mut fk_user(
                        GoogleConnections::Table,
                        "fk_google_connections_user",
                        GoogleConnections::UserId,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Slots::Table)
                    .if_not_exists()
                    .col(pk_uuid(Slots::Id))
                    .col(uuid(Slots::UserId))
                    .col(text(Slots::Title))
                    .col(text_null(Slots::Description))
                    .col(text_null(Slots::Location))
                    .col(timestamp_with_time_zone(Slots::StartAt))
                    .col(timestamp_with_time_zone(Slots::EndAt))
                    .col(string(Slots::Timezone))
                    .col(boolean(Slots::AllDay))
                    .col(date_null(Slots::StartDate))
                    .col(date_null(Slots::EndDate))
                    .col(text_null(Slots::Recurrence))
                    .col(string(Slots::Source))
                    .col(big_integer(Slots::Version))
                    .col(timestamp_with_time_zone_null(Slots::DeletedAt))
                    .col(timestamp_with_time_zone(Slots::CreatedAt))
                    .col(timestamp_with_time_zone(Slots::UpdatedAt))
                    .col(string_null(Slots::GoogleEventId))
                    .col(string_null(Slots::GoogleEtag))
                    .col(string_null(Slots::SyncedFingerprint))
                    .col(big_integer_null(Slots::SyncedVersion))
                    .col(timestamp_with_time_zone_null(Slots::LastSyncedAt))
                    .col(string(Slots::PushState))
                    .col(integer(Slots::PushAttempts))
                    .col(timestamp_with_time_zone_null(Slots::NextPushAt))
                    .col(timestamp_with_time_zone_null(Slots::PushLeaseUntil))
                    .col(text_null(Slots::LastPushError))
                    .foreign_key(&mut fk_user(Slots::Table, "fk_slots_user", Slots::UserId))
                    .to_owned(),
            )
            .await?;
        // Listing a user's slots by start (the API's main read path).
        index(
            manager,
            Slots::Table,
            "idx_slots_user_start",
            &[Slots::UserId, Slots::StartAt, Slots::Id],
        )
        .await?;
        // The outbox: dirty slots due for a push.
        index(
            manager,
            Slots::Table,
            "idx_slots_push_due",
            &[Slots::PushState, Slots::NextPushAt],
        )
        .await?;
        // Pull: map an incoming event to its slot.
        index(
            manager,
            Slots::Table,
            "idx_slots_user_event",
            &[Slots::UserId, Slots::GoogleEventId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SyncStates::Table)
                    .if_not_exists()
                    .col(uuid(SyncStates::UserId).primary_key())
                    .col(text_null(SyncStates::SyncToken))
                    .col(timestamp_with_time_zone_null(SyncStates::FullSyncedAt))
                    .col(timestamp_with_time_zone_null(SyncStates::LastPullAt))
                    .col(timestamp_with_time_zone_null(SyncStates::PullRequestedAt))
                    .col(timestamp_with_time_zone_null(SyncStates::PullLeaseUntil))
                    .col(big_integer_null(SyncStates::LastMessageNumber))
                    .col(integer(SyncStates::ConsecutiveFailures))
                    .col(timestamp_with_time_zone_null(SyncStates::BreakerOpenUntil))
                    .col(text_null(SyncStates::LastError))
                    .foreign_key(&mut fk_user(
                        SyncStates::Table,
                        "fk_sync_states_user",
                        SyncStates::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SyncStates::Table,
            "idx_sync_states_pull_requested",
            &[SyncStates::PullRequestedAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .if_not_exists()
                    .col(pk_uuid(Channels::Id))
                    .col(uuid(Channels::UserId))
                    .col(string_null(Channels::ResourceId))
                    .col(timestamp_with_time_zone(Channels::ExpiresAt))
                    .col(timestamp_with_time_zone(Channels::CreatedAt))
                    .col(timestamp_with_time_zone_null(Channels::StoppedAt))
                    .foreign_key(&mut fk_user(Channels::Table, "fk_channels_user", Channels::UserId))
                    .to_owned(),
            )
            .await?;
        index(manager, Channels::Table, "idx_channels_user", &[Channels::UserId]).await?;
        index(
            manager,
            Channels::Table,
            "idx_channels_expiry",
            &[Channels::StoppedAt, Channels::ExpiresAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SyncEvents::Table)
                    .if_not_exists()
                    .col(pk_uuid(SyncEvents::Id))
                    .col(uuid(SyncEvents::UserId))
                    .col(uuid_null(SyncEvents::SlotId))
                    .col(string(SyncEvents::Kind))
                    .col(text(SyncEvents::Detail))
                    .col(timestamp_with_time_zone(SyncEvents::At))
                    .foreign_key(&mut fk_user(
                        SyncEvents::Table,
                        "fk_sync_events_user",
                        SyncEvents::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            SyncEvents::Table,
            "idx_sync_events_user_kind_at",
            &[SyncEvents::UserId, SyncEvents::Kind, SyncEvents::At],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(uuid(IdempotencyKeys::UserId))
                    .col(string(IdempotencyKeys::Key))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(integer(IdempotencyKeys::ResponseStatus))
                    .col(text(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key))
                    .foreign_key(&mut fk_user(
                        IdempotencyKeys::Table,
                        "fk_idempotency_keys_user",
                        IdempotencyKeys::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            SyncEvents::Table.into_iden(),
            Channels::Table.into_iden(),
            SyncStates::Table.into_iden(),
            Slots::Table.into_iden(),
            GoogleConnections::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T, C>(manager: &SchemaManager<'_>, table: T, name: &str, cols: &[C]) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIden + Clone + 'static,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for c in cols {
        stmt.col(c.clone());
    }
    manager.create_index(stmt.to_owned()).await
}
