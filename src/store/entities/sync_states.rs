//! `sync_states`: one per connection — sync token, pull scheduling, per-user breaker.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, Default, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(column_type = "Text", nullable)]
    pub sync_token: Option<String>,
    pub full_synced_at: Option<DateTimeUtc>,
    pub last_pull_at: Option<DateTimeUtc>,
    pub pull_requested_at: Option<DateTimeUtc>,
    pub pull_lease_until: Option<DateTimeUtc>,
    pub last_message_number: Option<i64>,
    pub consecutive_failures: i32,
    pub breaker_open_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_push_error: Option<String>,
    pub last_push_error_at: Option<DateTimeUtc>,
    /// A disconnect's deletion of slotsync's events: how many to delete.
    pub cleanup_total: Option<i32>,
    /// … how many are deleted (or were already gone).
    pub cleanup_done: Option<i32>,
    /// … how many could not be deleted.
    pub cleanup_failed: Option<i32>,
    /// … when it began.
    pub cleanup_started_at: Option<DateTimeUtc>,
    /// … when it ended.
    pub cleanup_finished_at: Option<DateTimeUtc>,
    /// When the next fallback pull is due (`None`: not scheduled yet; the next
    /// `fallback_sync` run gives it a random phase within the interval).
    pub next_pull_at: Option<DateTimeUtc>,
    /// The instance that claimed the due fallback pull holds it until then.
    pub fallback_lease_until: Option<DateTimeUtc>,
    /// When a notification of the user's channel last led to a pull.
    pub last_notified_at: Option<DateTimeUtc>,
    /// Fallback pulls made for this connection (each due time counts once).
    pub fallback_pulls: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
