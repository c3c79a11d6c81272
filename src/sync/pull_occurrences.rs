//! The pull's side of recurring slots: items of `events.list` that are instances of a
//! series — modified instances and cancelled-instance tombstones, each with
//! `recurringEventId` and `originalStartTime` — become occurrence exceptions of the slot
//! linked to the master. They never become slots of their own and are never skipped as
//! orphans. An instance holding what we last pushed or pulled for it (the exception's
//! `synced_fingerprint`) is an echo: nothing is written.
//!
//! An exception not pushed yet that Google changed too is a conflict of one occurrence:
//! the policy decides as for a slot (the exception's `updated_at` against the item's
//! `updated`; a cancellation in Google wins only under `google_wins`).

use chrono::{DateTime, Utc};
use google_calendar3::api::Event;
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::occurrences::{length, view};
use crate::domain::{
    ChangeKind, ChangeOrigin, ConflictPolicy, Fingerprint, OccurrenceKey, OccurrenceOrigin, SlotDraft, UserId, Winner,
};
use crate::google::mapping::event_to_draft;
use crate::store::changes::NewChange;
use crate::store::occurrences::{self, NewException, Synced};
use crate::store::{self, outbox, StoreError};

/// Whether `event` is one instance of a series (a modified instance or a tombstone).
pub fn is_instance(event: &Event) -> bool {
    event.recurring_event_id.is_some() && event.original_start_time.is_some()
}

/// What became of one instance item.
#[derive(Debug)]
pub enum InstanceOutcome {
    /// No slot is linked to its series (yet): try again at the end of the pull.
    NoSeries,
    /// Our own write (or what we last pulled) coming back.
    Echo,
    /// Nothing to take (its series is deleted here, the item is unreadable, or it is not an
    /// occurrence of the series as we hold it).
    Skipped,
    /// Both sides changed the occurrence; ours won and is pushed.
    KeptLocal,
    /// The exception was written; the entry to log.
    Applied(Box<NewChange>),
}

/// The occurrence key of an instance item, for a series that is (or is not) all-day.
fn key_of(event: &Event, all_day: bool) -> Option<OccurrenceKey> {
    let original = event.original_start_time.as_ref()?;
    match (all_day, original.date, original.date_time) {
        (true, Some(d), _) => Some(OccurrenceKey::AllDay(d)),
        (true, None, Some(t)) => Some(OccurrenceKey::AllDay(t.date_naive())),
        (false, _, Some(t)) => Some(OccurrenceKey::Timed(t)),
        _ => None,
    }
}

/// Applies one instance item in `txn` (the page's transaction).
pub async fn apply_instance(
    txn: &impl ConnectionTrait,
    user: UserId,
    event: &Event,
    policy: ConflictPolicy,
    home: i64,
    now: DateTime<Utc>,
) -> Result<InstanceOutcome, StoreError> {
    let Some(series_id) = event.recurring_event_id.as_deref() else {
        return Ok(InstanceOutcome::Skipped);
    };
    let Some(row) = store::slots::by_event(txn, user, series_id).await? else {
        return Ok(InstanceOutcome::NoSeries);
    };
    if row.deleted_at.is_some() {
        return Ok(InstanceOutcome::Skipped);
    }
    let (draft, rule) = super::occurrences::series(&row);
    let Some(key) = key_of(event, row.all_day) else {
        return Ok(InstanceOutcome::Skipped);
    };
    // A leftover of the rule before a change (a split moves later exceptions to the new
    // series; a full listing may still show the old ones as tombstones).
    if !rule.contains(&draft, key) {
        return Ok(InstanceOutcome::Skipped);
    }
    let cancelled = event.status.as_deref() == Some("cancelled");
    let content: Option<SlotDraft> = if cancelled {
        None
    } else {
        match event_to_draft(event, draft.timezone) {
            // An instance has the series' zone and appearance (see `store::occurrences::content`).
            Ok(d) if d.all_day() == row.all_day => Some(SlotDraft {
                timezone: draft.timezone,
                appearance: draft.appearance.clone(),
                ..d
            }),
            _ => return Ok(InstanceOutcome::Skipped),
        }
    };
    let fingerprint = Fingerprint::of_occurrence(&key, content.as_ref());
    let existing = occurrences::for_slot(txn, row.id)
        .await?
        .into_iter()
        .find(|e| e.original_start == key.basic());
    if let Some(e) = &existing {
        if e.synced_fingerprint.as_deref() == Some(fingerprint.as_str()) {
            return Ok(InstanceOutcome::Echo);
        }
        let local = super::push_occurrences::wanted(e, &draft);
        if local.as_ref() == Some(&fingerprint) {
            // Google already holds our pending change: record it as synced.
            let synced = Synced {
                fingerprint: fingerprint.as_str(),
                etag: event.etag.as_deref(),
            };
            occurrences::record_pushed(txn, row.id, &e.original_start, synced).await?;
            return Ok(InstanceOutcome::Echo);
        }
        let pending = local.as_ref().map(Fingerprint::as_str) != e.synced_fingerprint.as_deref();
        if pending {
            let google_time = if cancelled { None } else { event.updated };
            let winner = match policy.winner(Some(e.updated_at), google_time) {
                Winner::Google if cancelled && policy != ConflictPolicy::GoogleWins => Winner::App,
                w => w,
            };
            if winner == Winner::App {
                return Ok(InstanceOutcome::KeptLocal);
            }
        }
    }
    occurrences::upsert(
        txn,
        NewException {
            user,
            slot: row.id,
            key,
            original_at: key.instant(draft.timezone),
            content: content.as_ref(),
            origin: OccurrenceOrigin::Google,
            synced: Some(Synced {
                fingerprint: fingerprint.as_str(),
                etag: event.etag.as_deref(),
            }),
        },
        now,
    )
    .await?;
    let row = outbox::occurrence_from_remote(txn, &row, home, now).await?;
    let exception = occurrences::for_slot(txn, row.id)
        .await?
        .into_iter()
        .find(|e| e.original_start == key.basic());
    let shown = view(&draft, key, length(&draft), exception.as_ref());
    let kind = if cancelled {
        ChangeKind::OccurrenceCancelled
    } else {
        ChangeKind::OccurrenceUpdated
    };
    Ok(InstanceOutcome::Applied(Box::new(NewChange::slot_with(
        kind,
        ChangeOrigin::Google,
        &row,
        json!({ "occurrence": shown.to_json() }),
    ))))
}
