//! Persistence: sea-orm entities and one repository module per aggregate. Queries live
//! here and nowhere else.

pub mod audit;
pub mod changes;
pub mod channels;
pub mod connections;
pub mod entities;
pub mod group_commit;
pub mod held_deletions;
pub mod idempotency;
pub mod instances;
pub mod oauth_states;
pub mod occurrences;
pub mod outbox;
pub mod pull_schedule;
pub mod slots;
pub mod sync_settings;
pub mod sync_states;
pub mod users;
pub mod webhooks;

use std::time::Duration;

pub use group_commit::GroupCommit;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// What the store reports; the API layer maps these to statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (which one is named).
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// No such row for this owner.
    #[error("not found")]
    NotFound,
    /// An optimistic-concurrency check failed; `current` is the stored version.
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch { current: i64 },
    /// The slot is read-only: an event Google restricts or a meeting someone else
    /// organises (the reason, e.g. `event_type:outOfOffice`, `not_organizer`).
    #[error("this slot is read-only ({0}): change it in Google Calendar")]
    ReadOnly(String),
    /// The request lacks a choice this row needs (names the field).
    #[error(transparent)]
    Invalid(crate::domain::ValidationError),
    /// Anything the database said.
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Duplicate`].
    pub fn from_insert(err: DbErr, what: &'static str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate(what),
            _ => StoreError::Db(err),
        }
    }
}

/// The pool's size when `DATABASE_MAX_CONNECTIONS` is not set: 8 on SQLite (it has one
/// writer), 16 on PostgreSQL.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        8
    } else {
        16
    }
}

/// Opens the pool of [`default_pool_size`] (SQLite file or PostgreSQL, by URL scheme).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, default_pool_size(url)).await
}

/// Opens a pool of at most `max_connections`. SQLite runs in WAL mode (readers never block
/// the writer) and waits up to 10 s for the write lock.
pub async fn connect_with(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a transaction that reads first and then upgrades to writing would
/// otherwise fail at once with "database is locked" when another writer got there first.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Answers when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}
