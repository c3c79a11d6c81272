//! `purge_old_records`: retention. Deletes idempotency keys older than
//! `IDEMPOTENCY_RETENTION_HOURS`, sync events (the audit and conflict log) older than
//! `AUDIT_RETENTION_DAYS`, and channels stopped or expired more than
//! `CHANNEL_RETENTION_DAYS` ago. Each table is emptied in batches of [`PURGE_BATCH`] rows,
//! one short statement each, so a run never holds a long lock (SQLite has one writer);
//! several instances running it at once only split the work.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{JobError, Outcome};
use crate::state::AppState;
use crate::store::{audit, channels, idempotency, StoreError};

/// Rows deleted per statement.
pub const PURGE_BATCH: u64 = 500;

/// What a run deleted.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    /// Idempotency keys (with their stored responses).
    pub idempotency_keys: u64,
    /// Sync events.
    pub sync_events: u64,
    /// Stopped or expired notification channels.
    pub channels: u64,
    /// Change-feed entries older than the retention.
    pub changes: u64,
}

/// Runs once.
#[tracing::instrument(skip_all, err)]
pub async fn run_once(state: &AppState) -> Result<Outcome, JobError> {
    let settings = &state.settings;
    let now = Utc::now();
    let mut report = PurgeReport::default();
    if let Some(before) = cutoff(now, TimeDelta::try_hours(as_i64(settings.idempotency_retention_hours))) {
        report.idempotency_keys = in_batches(|| idempotency::purge_batch(&state.db, before, PURGE_BATCH)).await?;
    }
    if let Some(before) = cutoff(now, TimeDelta::try_days(as_i64(settings.audit_retention_days))) {
        report.sync_events = in_batches(|| audit::purge_batch(&state.db, before, PURGE_BATCH)).await?;
    }
    if let Some(before) = cutoff(now, TimeDelta::try_days(as_i64(settings.channel_retention_days))) {
        report.channels = in_batches(move || async move {
            let deleted = channels::purge_batch(&state.db, before, now, PURGE_BATCH).await?;
            // The webhook's directory must not answer for a row that is gone.
            for id in &deleted {
                state.channel_directory.forget(*id);
            }
            Ok(deleted.len() as u64)
        })
        .await?;
    }
    if let Some(before) = cutoff(now, TimeDelta::try_days(as_i64(settings.change_retention_days))) {
        let txn = crate::store::begin_write(&state.db)
            .await
            .map_err(crate::store::StoreError::from)?;
        report.changes = crate::store::changes::purge(&txn, before).await?;
        txn.commit().await.map_err(crate::store::StoreError::from)?;
    }
    if report.idempotency_keys + report.sync_events + report.channels + report.changes > 0 {
        tracing::info!(?report, "old records purged");
    }
    Ok(serde_json::to_value(report).expect("a report serialises"))
}

/// `now - retention`, or `None` when the retention reaches further back than time does
/// (nothing is old enough then).
fn cutoff(now: DateTime<Utc>, retention: Option<TimeDelta>) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(retention?)
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Calls `batch` until it deletes fewer than [`PURGE_BATCH`] rows; returns the total.
/// Other tasks get a turn between batches.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < PURGE_BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_longer_than_time_itself_purges_nothing() {
        let now = Utc::now();
        assert_eq!(cutoff(now, TimeDelta::try_days(as_i64(u64::MAX))), None);
        assert_eq!(cutoff(now, TimeDelta::try_hours(24)), Some(now - TimeDelta::hours(24)));
    }

    #[tokio::test]
    async fn batches_continue_until_one_comes_back_short() {
        let mut left = 2 * PURGE_BATCH + 7;
        let mut calls = 0;
        let total = in_batches(|| {
            calls += 1;
            let n = left.min(PURGE_BATCH);
            left -= n;
            async move { Ok(n) }
        })
        .await
        .unwrap();
        assert_eq!((total, calls), (2 * PURGE_BATCH + 7, 3));
    }
}
