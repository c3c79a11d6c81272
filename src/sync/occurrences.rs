//! Occurrences of recurring slots: the view a client reads (the rule's occurrences with
//! the exceptions applied) and the API's writes to one occurrence. A write commits the
//! exception, the slot's new version and outbox mark, and its change-log entry in one
//! transaction; the push carries the exception to Google's instance afterwards.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use super::{PushWaker, SyncError};
use crate::domain::recurrence::{timing_span, Recurrence, Window};
use crate::domain::{ChangeKind, ChangeOrigin, OccurrenceKey, OccurrenceOrigin, SlotDraft, SlotFields, SlotId, UserId};
use crate::store::changes::{self, NewChange};
use crate::store::occurrences::{self, ExceptionRow, NewException};
use crate::store::slots::SlotRow;
use crate::store::{self, GroupCommit, StoreError};

/// One occurrence as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OccurrenceView {
    /// Its original start: its name.
    pub key: OccurrenceKey,
    /// Its content now (the series', or the exception's); the timing in the slot's zone.
    pub content: SlotDraft,
    /// Cancelled (in Google or through the API).
    pub cancelled: bool,
    /// An exception changed or cancelled it.
    pub modified: bool,
    /// Who made the exception.
    pub origin: Option<OccurrenceOrigin>,
}

impl OccurrenceView {
    /// The occurrence as the change log keeps it (the API's `Occurrence` shape).
    pub fn to_json(&self) -> Value {
        let zone = self.content.timezone;
        let (start, end) = timing_span(&self.content.timing, zone);
        let mut v = json!({
            "original_start": self.key.display(zone),
            "start": start.with_timezone(&zone).to_rfc3339(),
            "end": end.with_timezone(&zone).to_rfc3339(),
            "title": self.content.title,
            "status": if self.cancelled { "cancelled" } else { "confirmed" },
            "modified": self.modified,
        });
        if let Some(d) = &self.content.description {
            v["description"] = json!(d);
        }
        if let Some(l) = &self.content.location {
            v["location"] = json!(l);
        }
        if let Some(o) = self.origin {
            v["origin"] = json!(o.as_str());
        }
        v
    }
}

/// A page of occurrences.
#[derive(Debug, Clone, Default)]
pub struct OccurrencePage {
    pub items: Vec<OccurrenceView>,
    /// More occurrences follow in the window.
    pub more: bool,
}

/// The series' content and rule as stored (unreadable lines count as none: the slot is
/// then its first occurrence only).
pub fn series(row: &SlotRow) -> (SlotDraft, Recurrence) {
    let draft = store::slots::draft(row);
    let rule = Recurrence::parse(&store::slots::recurrence(row))
        .unwrap_or_else(|_| Recurrence::parse(&[]).expect("no lines parse"));
    (draft, rule)
}

/// The occurrence `key` of the series `draft`, with `exception` applied.
pub fn view(
    draft: &SlotDraft,
    key: OccurrenceKey,
    length: (chrono::Duration, i64),
    exception: Option<&ExceptionRow>,
) -> OccurrenceView {
    let original = original_content(draft, key, length);
    match exception {
        None => OccurrenceView {
            key,
            content: original,
            cancelled: false,
            modified: false,
            origin: None,
        },
        Some(e) => {
            let content = occurrences::content(e, draft);
            OccurrenceView {
                key,
                cancelled: content.is_none(),
                content: content.unwrap_or(original),
                modified: true,
                origin: Some(e.origin),
            }
        }
    }
}

/// The series' content at the occurrence `key` (its original times).
fn original_content(draft: &SlotDraft, key: OccurrenceKey, (length, days): (chrono::Duration, i64)) -> SlotDraft {
    let timing = match key {
        OccurrenceKey::Timed(start) => crate::domain::SlotTiming::Timed {
            start,
            end: start + length,
        },
        OccurrenceKey::AllDay(d) => crate::domain::SlotTiming::AllDay {
            start_date: d,
            end_date: d + chrono::Duration::days(days),
        },
    };
    SlotDraft {
        timing,
        ..draft.clone()
    }
}

/// A series' occurrence length: its duration, and its days (all-day).
pub fn length(draft: &SlotDraft) -> (chrono::Duration, i64) {
    let days = match draft.timing {
        crate::domain::SlotTiming::AllDay { start_date, end_date } => (end_date - start_date).num_days(),
        crate::domain::SlotTiming::Timed { .. } => 0,
    };
    (draft.end_at() - draft.start_at(), days)
}

/// The occurrences of `user`'s live slot `id` in `window`, exceptions applied, in the
/// order of their original starts. A slot that does not repeat has one occurrence.
pub async fn list(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    window: &Window,
) -> Result<(SlotRow, OccurrencePage), SyncError> {
    let row = store::slots::find_live(db, user, id)
        .await?
        .ok_or(SyncError::Store(StoreError::NotFound))?;
    let (draft, rule) = series(&row);
    let exceptions = occurrences::for_slot(db, row.id).await?;
    let by_key: std::collections::HashMap<String, &ExceptionRow> =
        exceptions.iter().map(|e| (e.original_start.clone(), e)).collect();
    let expansion = rule.expand(&draft, window);
    let len = length(&draft);
    let items = expansion
        .occurrences
        .iter()
        .map(|o| view(&draft, o.key, len, by_key.get(&o.key.basic()).copied()))
        .collect();
    Ok((
        row,
        OccurrencePage {
            items,
            more: expansion.more,
        },
    ))
}

/// Whether any occurrence of the series `row` overlaps `[from, to)` (for `GET /slots`).
pub fn overlaps(row: &SlotRow, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    if row.recurrence.is_none() {
        return true;
    }
    let (draft, rule) = series(row);
    let from = from.unwrap_or(draft.start_at());
    let to = to.unwrap_or(from + chrono::Duration::days(crate::domain::recurrence::MAX_WINDOW_DAYS));
    let Ok(window) = Window::new(from, to.max(from + chrono::Duration::seconds(1)), 1) else {
        return true;
    };
    !rule.expand(&draft, &window).occurrences.is_empty()
}

/// Finds the occurrence `text` names in the series `row`: 400 when it cannot be a time,
/// 404 naming it when the series has no such occurrence.
fn occurrence_of(row: &SlotRow, text: &str) -> Result<(SlotDraft, OccurrenceKey), SyncError> {
    let key = OccurrenceKey::parse(text, row.all_day).ok_or_else(|| crate::domain::ValidationError {
        field: "original_start",
        message: if row.all_day {
            format!("`{text}` is not a date (yyyy-mm-dd) of this all-day series")
        } else {
            format!("`{text}` is not an RFC 3339 time (e.g. 2026-03-02T09:00:00+01:00)")
        },
    })?;
    let (draft, rule) = series(row);
    if !rule.repeats() {
        return Err(SyncError::OccurrenceNotFound(format!(
            "occurrence {text} not found: slot {} does not repeat",
            row.id
        )));
    }
    if !rule.contains(&draft, key) {
        return Err(SyncError::OccurrenceNotFound(format!(
            "occurrence {text} not found: slot {} has no occurrence starting then (original start {})",
            row.id,
            key.display(draft.timezone)
        )));
    }
    Ok((draft, key))
}

/// Changes one occurrence of a series (times and text), optionally only at the slot's
/// `expected_version`. The slot's version is bumped and it is pushed.
#[tracing::instrument(skip_all, fields(user_id = %user, slot_id = %id), err)]
pub async fn update(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    id: SlotId,
    original_start: &str,
    fields: SlotFields,
    expected_version: Option<i64>,
) -> Result<(SlotRow, OccurrenceView), SyncError> {
    let row = store::slots::find_live(writes.db(), user, id)
        .await?
        .ok_or(SyncError::Store(StoreError::NotFound))?;
    let (series_draft, key) = occurrence_of(&row, original_start)?;
    let content = SlotDraft::validate(SlotFields {
        timezone: Some(series_draft.timezone.name().to_owned()),
        all_day: Some(row.all_day),
        ..fields
    })?;
    write(writes, waker, user, id, key, Some(content), expected_version).await
}

/// Cancels one occurrence of a series, optionally only at the slot's `expected_version`.
#[tracing::instrument(skip_all, fields(user_id = %user, slot_id = %id), err)]
pub async fn cancel(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    id: SlotId,
    original_start: &str,
    expected_version: Option<i64>,
) -> Result<SlotRow, SyncError> {
    let row = store::slots::find_live(writes.db(), user, id)
        .await?
        .ok_or(SyncError::Store(StoreError::NotFound))?;
    let (_, key) = occurrence_of(&row, original_start)?;
    Ok(write(writes, waker, user, id, key, None, expected_version).await?.0)
}

async fn write(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    id: SlotId,
    key: OccurrenceKey,
    content: Option<SlotDraft>,
    expected_version: Option<i64>,
) -> Result<(SlotRow, OccurrenceView), SyncError> {
    let kind = if content.is_some() {
        ChangeKind::OccurrenceUpdated
    } else {
        ChangeKind::OccurrenceCancelled
    };
    let written = writes
        .write_one(move |txn| {
            Box::pin(async move {
                let now = Utc::now();
                let row = store::slots::touch(txn, user, id, expected_version, now).await?;
                let draft = store::slots::draft(&row);
                let exception = occurrences::upsert(
                    txn,
                    NewException {
                        user,
                        slot: row.id,
                        key,
                        original_at: key.instant(draft.timezone),
                        content: content.as_ref(),
                        origin: OccurrenceOrigin::Api,
                        synced: None,
                    },
                    now,
                )
                .await?;
                let shown = view(&draft, key, length(&draft), Some(&exception));
                let logged =
                    NewChange::slot_with(kind, ChangeOrigin::Api, &row, json!({ "occurrence": shown.to_json() }));
                changes::append_one(txn, user, logged, now).await?;
                Ok((row, shown))
            })
        })
        .await?;
    waker.wake();
    super::feed::changed(user);
    Ok(written)
}

/// Drops the exceptions of the series `row` (just replaced with `draft` and `rule`) that
/// no longer fall on one of its occurrences; returns how many.
pub async fn drop_stray(
    db: &impl ConnectionTrait,
    row: &SlotRow,
    rule: &Recurrence,
    draft: &SlotDraft,
) -> Result<u64, StoreError> {
    let exceptions = occurrences::for_slot(db, row.id).await?;
    let stray: Vec<String> = exceptions
        .iter()
        .filter(|e| !rule.repeats() || occurrences::key(e).is_none_or(|k| !rule.contains(draft, k)))
        .map(|e| e.original_start.clone())
        .collect();
    occurrences::delete_keys(db, row.id, &stray).await
}

/// After Google's content was applied to the series `row` (its master changed there and
/// won): an exception Google does not hold yet still has to be pushed, so the slot goes
/// back in the outbox.
pub async fn requeue_pending(db: &impl ConnectionTrait, row: &SlotRow, now: DateTime<Utc>) -> Result<(), StoreError> {
    let series = store::slots::draft(row);
    let pending = occurrences::for_slot(db, row.id)
        .await?
        .iter()
        .any(|e| super::push_occurrences::wanted(e, &series).map(|f| f.as_str().to_owned()) != e.synced_fingerprint);
    if pending {
        store::outbox::requeue_clean(db, row.id, now).await?;
    }
    Ok(())
}

/// The zone a series' occurrences are shown in.
pub fn zone(row: &SlotRow) -> Tz {
    row.timezone.parse().unwrap_or(Tz::UTC)
}
