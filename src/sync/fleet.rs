//! The fleet: every instance writes a heartbeat row every [`HEARTBEAT`]; the instances
//! heard from within [`STALE_AFTER`] are live, and each takes an equal share of the
//! fleet-wide Google quotas (`GOOGLE_CALLS_PER_MINUTE`, `GOOGLE_USER_CALLS_PER_MINUTE`).
//!
//! The per-project share is exact while the fleet is stable. The per-user share is an
//! approximation: a user's calls are spread over instances unevenly (a notification's
//! pull runs where the notification arrived), so one user may get less than the per-user
//! quota when only one instance serves them — never more. After an instance dies the
//! others keep their smaller shares until its heartbeat is stale (30 s): the fleet uses
//! less than its quota meanwhile, never more; a new instance takes its share from its
//! first heartbeat, while the others notice within one heartbeat (5 s), so for up to 5 s
//! the fleet may run up to one share above its quota.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::google::limits::{GoogleLimits, Share};
use crate::store::{instances, StoreError};

/// How often an instance writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance silent this long is no longer counted.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(30);
/// Rows of instances silent this long are deleted.
const FORGET_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// The per-user limiter forgets idle users every this many heartbeats.
const SHRINK_EVERY: u32 = 12;

/// This instance, as the fleet knows it.
pub struct Fleet {
    id: Uuid,
    host: String,
    started_at: DateTime<Utc>,
    limits: Arc<GoogleLimits>,
}

impl Fleet {
    /// A new instance (a fresh id) whose share sets `limits`.
    pub fn new(limits: Arc<GoogleLimits>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Self {
            id: Uuid::new_v4(),
            host: format!("{host} pid {}", std::process::id()),
            started_at: Utc::now(),
            limits,
        }
    }

    /// This instance's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// This instance's share of the Google quotas.
    pub fn share(&self) -> Share {
        self.limits.share()
    }

    /// Writes this instance's heartbeat, counts the live instances and takes its share.
    /// Returns the live instances.
    pub async fn beat(&self, db: &DatabaseConnection) -> Result<Vec<instances::Instance>, StoreError> {
        let now = Utc::now();
        instances::beat(db, self.id, &self.host, self.started_at, now).await?;
        let live = instances::live(db, now - STALE_AFTER).await?;
        let count = u32::try_from(live.len()).unwrap_or(u32::MAX).max(1);
        self.limits.set_instances(count);
        Ok(live)
    }

    /// Beats until `stop` turns true, then removes this instance's row (the others take
    /// its share at their next heartbeat).
    pub async fn run(self: Arc<Self>, db: DatabaseConnection, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut beats: u32 = 0;
        loop {
            if let Err(e) = self.beat(&db).await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
            beats = beats.wrapping_add(1);
            if beats % SHRINK_EVERY == 0 {
                self.limits.shrink();
                if let Err(e) = instances::purge_silent(&db, Utc::now() - FORGET_AFTER).await {
                    tracing::debug!(error = %e, "forgetting silent instances failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
        }
        if let Err(e) = instances::remove(&db, self.id).await {
            tracing::warn!(error = %e, "could not remove this instance's heartbeat");
        }
    }
}
