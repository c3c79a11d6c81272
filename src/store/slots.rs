//! Slots: local writes always set `push_state = dirty` in the same statement, which is
//! what makes the outbox transactional.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::entities::{slot_links, slots};
use super::StoreError;
use crate::domain::{
    Appearance, PushState, Reminders, Side, SlotDraft, SlotId, SlotMarks, SlotTiming, Source, Transparency, UserId,
    Visibility,
};

pub use slots::Model as SlotRow;

/// A page request for [`list`].
#[derive(Debug, Clone, Default)]
pub struct SlotQuery {
    /// Only slots ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only slots starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Include soft-deleted slots.
    pub include_deleted: bool,
    /// Continue after this `(start_at, id)` (exclusive).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Page size; `limit + 1` rows are read to tell whether more follow.
    pub limit: u64,
}

/// A draft's content columns. Built by destructuring [`SlotDraft`] whole, so a field added
/// to the draft does not compile until it has its columns here; the two inserts and the
/// update of content all write through [`ContentColumns::active`] and
/// [`ContentColumns::update`].
struct ContentColumns {
    title: String,
    description: Option<String>,
    location: Option<String>,
    start_at: DateTime<Utc>,
    end_at: DateTime<Utc>,
    timezone: String,
    all_day: bool,
    start_date: Option<chrono::NaiveDate>,
    end_date: Option<chrono::NaiveDate>,
    appearance: AppearanceColumns,
}

/// The appearance columns: each null for its default (see migration 14).
struct AppearanceColumns {
    visibility: Option<String>,
    transparency: Option<String>,
    color_id: Option<String>,
    reminders: Option<String>,
}

impl AppearanceColumns {
    fn of(appearance: &Appearance) -> Self {
        let Appearance {
            visibility,
            transparency,
            color_id,
            reminders,
        } = appearance;
        Self {
            visibility: (*visibility != Visibility::Default).then(|| visibility.as_str().to_owned()),
            transparency: (*transparency != Transparency::Busy).then(|| transparency.as_str().to_owned()),
            color_id: color_id.map(|c| c.to_string()),
            reminders: reminders.canonical(),
        }
    }
}

/// A stored slot's appearance; a value that cannot be read counts as the default.
pub fn appearance(row: &SlotRow) -> Appearance {
    Appearance {
        visibility: row
            .visibility
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default(),
        transparency: row
            .transparency
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
        color_id: row.color_id.as_deref().and_then(|c| c.parse().ok()),
        reminders: Reminders::from_canonical(row.reminders.as_deref()),
    }
}

impl ContentColumns {
    fn of(draft: &SlotDraft) -> Self {
        let SlotDraft {
            title,
            description,
            location,
            timezone,
            timing,
            appearance,
        } = draft;
        let (start_date, end_date) = match *timing {
            SlotTiming::AllDay { start_date, end_date } => (Some(start_date), Some(end_date)),
            SlotTiming::Timed { .. } => (None, None),
        };
        ContentColumns {
            title: title.clone(),
            description: description.clone(),
            location: location.clone(),
            start_at: draft.start_at(),
            end_at: draft.end_at(),
            timezone: timezone.name().to_owned(),
            all_day: draft.all_day(),
            start_date,
            end_date,
            appearance: AppearanceColumns::of(appearance),
        }
    }

    /// The content columns set on `row` (the other columns as they were).
    fn active(self, row: slots::ActiveModel) -> slots::ActiveModel {
        let ContentColumns {
            title,
            description,
            location,
            start_at,
            end_at,
            timezone,
            all_day,
            start_date,
            end_date,
            appearance:
                AppearanceColumns {
                    visibility,
                    transparency,
                    color_id,
                    reminders,
                },
        } = self;
        slots::ActiveModel {
            title: Set(title),
            description: Set(description),
            location: Set(location),
            start_at: Set(start_at),
            end_at: Set(end_at),
            timezone: Set(timezone),
            all_day: Set(all_day),
            start_date: Set(start_date),
            end_date: Set(end_date),
            visibility: Set(visibility),
            transparency: Set(transparency),
            color_id: Set(color_id),
            reminders: Set(reminders),
            ..row
        }
    }

    /// `update` setting every content column.
    fn update(self, update: sea_orm::UpdateMany<slots::Entity>) -> sea_orm::UpdateMany<slots::Entity> {
        let ContentColumns {
            title,
            description,
            location,
            start_at,
            end_at,
            timezone,
            all_day,
            start_date,
            end_date,
            appearance:
                AppearanceColumns {
                    visibility,
                    transparency,
                    color_id,
                    reminders,
                },
        } = self;
        update
            .col_expr(slots::Column::Title, Expr::value(title))
            .col_expr(slots::Column::Description, Expr::value(description))
            .col_expr(slots::Column::Location, Expr::value(location))
            .col_expr(slots::Column::StartAt, Expr::value(start_at))
            .col_expr(slots::Column::EndAt, Expr::value(end_at))
            .col_expr(slots::Column::Timezone, Expr::value(timezone))
            .col_expr(slots::Column::AllDay, Expr::value(all_day))
            .col_expr(slots::Column::StartDate, Expr::value(start_date))
            .col_expr(slots::Column::EndDate, Expr::value(end_date))
            .col_expr(slots::Column::Visibility, Expr::value(visibility))
            .col_expr(slots::Column::Transparency, Expr::value(transparency))
            .col_expr(slots::Column::ColorId, Expr::value(color_id))
            .col_expr(slots::Column::Reminders, Expr::value(reminders))
    }
}

/// The synced content of a stored slot.
pub fn draft(row: &SlotRow) -> SlotDraft {
    let timezone = row.timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let timing = match (row.all_day, row.start_date, row.end_date) {
        (true, Some(start_date), Some(end_date)) => SlotTiming::AllDay { start_date, end_date },
        _ => SlotTiming::Timed {
            start: row.start_at,
            end: row.end_at,
        },
    };
    SlotDraft {
        title: row.title.clone(),
        description: row.description.clone(),
        location: row.location.clone(),
        timezone,
        timing,
        appearance: appearance(row),
    }
}

/// The recurrence lines of a stored slot (none for a slot that does not repeat).
pub fn recurrence(row: &SlotRow) -> Vec<String> {
    row.recurrence
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

/// The `recurrence` column for `lines` (null for a slot that does not repeat).
pub(crate) fn recurrence_column(lines: &[String]) -> Option<String> {
    (!lines.is_empty()).then(|| serde_json::to_string(lines).expect("JSON"))
}

/// Inserts a new app-created slot, dirty so the push worker picks it up.
pub async fn insert_new(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    draft: &SlotDraft,
    recurrence: &[String],
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let row = slots::ActiveModel {
        id: Set(id.0),
        user_id: Set(user.0),
        recurrence: Set(recurrence_column(recurrence)),
        source: Set(Source::App),
        version: Set(1),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        google_event_id: Set(None),
        google_etag: Set(None),
        synced_fingerprint: Set(None),
        synced_version: Set(None),
        last_synced_at: Set(None),
        push_state: Set(PushState::Dirty),
        push_attempts: Set(0),
        next_push_at: Set(Some(now)),
        push_lease_until: Set(None),
        last_push_error: Set(None),
        last_change_side: Set(None),
        breaker_alternations: Set(0),
        breaker_window_start: Set(None),
        // Not linked yet: the first push records the generation it was made for.
        home_generation: Set(0),
        ..Default::default()
    };
    Ok(ContentColumns::of(draft).active(row).insert(db).await?)
}

/// A slot of `user` that is not deleted.
pub async fn find_live(db: &impl ConnectionTrait, user: UserId, id: SlotId) -> Result<Option<SlotRow>, StoreError> {
    Ok(slots::Entity::find_by_id(id.0)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

/// A slot of `user`, deleted or not.
pub async fn find_any(db: &impl ConnectionTrait, user: UserId, id: SlotId) -> Result<Option<SlotRow>, StoreError> {
    Ok(slots::Entity::find_by_id(id.0)
        .filter(slots::Column::UserId.eq(user.0))
        .one(db)
        .await?)
}

/// A page of `user`'s slots ordered by `(start_at, id)`.
pub async fn list(db: &impl ConnectionTrait, user: UserId, q: &SlotQuery) -> Result<Vec<SlotRow>, StoreError> {
    let mut select = slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .order_by_asc(slots::Column::StartAt)
        .order_by_asc(slots::Column::Id);
    if !q.include_deleted {
        select = select.filter(slots::Column::DeletedAt.is_null());
    }
    if let Some(from) = q.from {
        // A series may have occurrences after its first one ends: the caller checks its
        // occurrences against the window.
        select = select.filter(
            Condition::any()
                .add(slots::Column::EndAt.gt(from))
                .add(slots::Column::Recurrence.is_not_null()),
        );
    }
    if let Some(to) = q.to {
        select = select.filter(slots::Column::StartAt.lt(to));
    }
    if let Some((start, id)) = q.after {
        select = select.filter(
            Condition::any().add(slots::Column::StartAt.gt(start)).add(
                Condition::all()
                    .add(slots::Column::StartAt.eq(start))
                    .add(slots::Column::Id.gt(id)),
            ),
        );
    }
    Ok(select.limit(q.limit + 1).all(db).await?)
}

/// Explains why a conditional write touched no row: the slot is gone, or its version moved.
async fn no_row_reason(db: &impl ConnectionTrait, user: UserId, id: SlotId) -> Result<StoreError, StoreError> {
    Ok(match find_live(db, user, id).await? {
        Some(row) => match row.read_only_reason {
            Some(reason) => StoreError::ReadOnly(reason),
            None => StoreError::VersionMismatch { current: row.version },
        },
        None => StoreError::NotFound,
    })
}

/// Why a deletion changed no row: a meeting the user organises needs to be told whether
/// its attendees hear of it (`notify_attendees`); otherwise as [`no_row_reason`].
async fn no_delete_reason(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    notify_given: bool,
) -> Result<StoreError, StoreError> {
    match find_live(db, user, id).await? {
        Some(row) if row.read_only_reason.is_none() && row.attendee_count.is_some() && !notify_given => {
            Ok(StoreError::Invalid(crate::domain::ValidationError {
                field: "notify_attendees",
                message: format!(
                    "this slot is a meeting you organise with {} attendees: say whether Google emails them \
                     the cancellation with notify_attendees=true or notify_attendees=false",
                    row.attendee_count.unwrap_or_default()
                ),
            }))
        }
        _ => no_row_reason(db, user, id).await,
    }
}

/// Sets a slot's content columns to `draft`'s.
pub(crate) fn set_content(
    update: sea_orm::UpdateMany<slots::Entity>,
    draft: &SlotDraft,
) -> sea_orm::UpdateMany<slots::Entity> {
    ContentColumns::of(draft).update(update)
}

/// Replaces a live slot's fields, bumps its version and marks it dirty. With
/// `expected_version`, the write happens only if the stored version still matches.
pub async fn replace(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    draft: &SlotDraft,
    recurrence: &[String],
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let update = set_content(slots::Entity::update_many(), draft)
        .col_expr(slots::Column::Recurrence, Expr::value(recurrence_column(recurrence)));
    changed(db, user, id, update, expected_version, now).await
}

/// Bumps a live slot's version and marks it dirty without touching its content (one of
/// its occurrences changed). With `expected_version`, only if the version still matches.
pub async fn touch(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    changed(db, user, id, slots::Entity::update_many(), expected_version, now).await
}

async fn changed(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    update: sea_orm::UpdateMany<slots::Entity>,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let mut update = mark_changed(update, now)
        .filter(slots::Column::Id.eq(id.0))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::ReadOnlyReason.is_null());
    if let Some(v) = expected_version {
        update = update.filter(slots::Column::Version.eq(v));
    }
    if update.exec(db).await?.rows_affected == 0 {
        return Err(no_row_reason(db, user, id).await?);
    }
    find_live(db, user, id).await?.ok_or(StoreError::NotFound)
}

/// Soft-deletes a live slot (version bumped, dirty so the deletion reaches Google). A
/// read-only slot is refused; a meeting the user organises needs `send_updates` (`all` or
/// `none`, kept for the push's `events.delete`). One statement: the checks and the
/// deletion cannot be separated by another write.
pub async fn soft_delete(
    db: &impl ConnectionTrait,
    user: UserId,
    id: SlotId,
    expected_version: Option<i64>,
    send_updates: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut update = mark_changed(
        slots::Entity::update_many().col_expr(slots::Column::DeletedAt, Expr::value(Some(now))),
        now,
    )
    .filter(slots::Column::Id.eq(id.0))
    .filter(slots::Column::UserId.eq(user.0))
    .filter(slots::Column::DeletedAt.is_null())
    .filter(slots::Column::ReadOnlyReason.is_null());
    match send_updates {
        Some(send) => {
            update = update.col_expr(slots::Column::DeleteSendUpdates, Expr::value(Some(send.to_owned())));
        }
        None => update = update.filter(slots::Column::AttendeeCount.is_null()),
    }
    if let Some(v) = expected_version {
        update = update.filter(slots::Column::Version.eq(v));
    }
    if update.exec(db).await?.rows_affected == 0 {
        return Err(no_delete_reason(db, user, id, send_updates.is_some()).await?);
    }
    Ok(())
}

/// The bookkeeping every local change carries: a new version, and a place in the outbox.
fn mark_changed(update: sea_orm::UpdateMany<slots::Entity>, now: DateTime<Utc>) -> sea_orm::UpdateMany<slots::Entity> {
    update
        .col_expr(slots::Column::Version, Expr::col(slots::Column::Version).add(1))
        .col_expr(slots::Column::UpdatedAt, Expr::value(now))
        // A paused slot stays paused (re-authorisation, disconnect or breaker): the change
        // is pushed when pushing resumes.
        .col_expr(
            slots::Column::PushState,
            Expr::case(
                Expr::col(slots::Column::PushState).eq(PushState::Paused),
                PushState::Paused,
            )
            .finally(PushState::Dirty)
            .into(),
        )
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
}

/// Inserts a slot for an event created in Google (`source = google`), already in sync.
#[allow(clippy::too_many_arguments)]
pub async fn insert_imported(
    db: &impl ConnectionTrait,
    user: UserId,
    draft: &SlotDraft,
    recurrence: &[String],
    event_id: &str,
    etag: Option<&str>,
    fingerprint: &str,
    home: i64,
    series_of: Option<Uuid>,
    marks: &SlotMarks,
    now: DateTime<Utc>,
) -> Result<SlotRow, StoreError> {
    let row = slots::ActiveModel {
        event_type: Set(marks.event_type.clone()),
        read_only_reason: Set(marks.read_only_reason.clone()),
        attendee_count: Set(marks.attendee_count),
        id: Set(SlotId::new().0),
        user_id: Set(user.0),
        series_of: Set(series_of),
        recurrence: Set(recurrence_column(recurrence)),
        source: Set(Source::Google),
        version: Set(1),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        google_event_id: Set(Some(event_id.to_owned())),
        google_etag: Set(etag.map(str::to_owned)),
        synced_fingerprint: Set(Some(fingerprint.to_owned())),
        synced_version: Set(Some(1)),
        last_synced_at: Set(Some(now)),
        push_state: Set(PushState::Clean),
        push_attempts: Set(0),
        next_push_at: Set(None),
        push_lease_until: Set(None),
        last_push_error: Set(None),
        last_change_side: Set(Some(Side::Google)),
        breaker_alternations: Set(0),
        breaker_window_start: Set(None),
        home_generation: Set(home),
        ..Default::default()
    };
    Ok(ContentColumns::of(draft).active(row).insert(db).await?)
}

/// Records what an imported slot's event is now (read-only, its type, attendees).
pub async fn set_marks(db: &impl ConnectionTrait, slot: Uuid, marks: &SlotMarks) -> Result<(), StoreError> {
    slots::Entity::update_many()
        .col_expr(slots::Column::EventType, Expr::value(marks.event_type.clone()))
        .col_expr(
            slots::Column::ReadOnlyReason,
            Expr::value(marks.read_only_reason.clone()),
        )
        .col_expr(slots::Column::AttendeeCount, Expr::value(marks.attendee_count))
        .filter(slots::Column::Id.eq(slot))
        .exec(db)
        .await?;
    Ok(())
}

/// `user`'s slot (deleted or not) linked to the event `event_id`.
pub async fn by_event(db: &impl ConnectionTrait, user: UserId, event_id: &str) -> Result<Option<SlotRow>, StoreError> {
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::GoogleEventId.eq(event_id))
        .one(db)
        .await?)
}

/// `user`'s slots (deleted ones too) linked to one of `event_ids`, or whose id is one of
/// `slot_ids` (events slotsync wrote whose link was not recorded yet).
pub async fn for_events(
    db: &impl ConnectionTrait,
    user: UserId,
    event_ids: &[String],
    slot_ids: &[Uuid],
) -> Result<Vec<SlotRow>, StoreError> {
    if event_ids.is_empty() && slot_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(
            Condition::any()
                .add(slots::Column::GoogleEventId.is_in(event_ids.iter().cloned()))
                .add(slots::Column::Id.is_in(slot_ids.iter().copied())),
        )
        .all(db)
        .await?)
}

/// The ids and event ids of live slots of `user` linked to an event, ending after
/// `ends_after`, last synced before `synced_before` (candidates for a full sync's
/// reconciliation; only the pairs, as a calendar may hold many thousands).
pub async fn linked_live(
    db: &impl ConnectionTrait,
    user: UserId,
    ends_after: DateTime<Utc>,
    synced_before: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    Ok(slots::Entity::find()
        .select_only()
        .column(slots::Column::Id)
        .column(slots::Column::GoogleEventId)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::GoogleEventId.is_not_null())
        .filter(slots::Column::EndAt.gt(ends_after))
        .filter(slots::Column::LastSyncedAt.lt(synced_before))
        .into_tuple()
        .all(db)
        .await?)
}

/// How many live slots of `user` are linked to an event (the mass-deletion guard's base).
pub async fn count_linked_live(db: &impl ConnectionTrait, user: UserId) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(slots::Entity::find()
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::GoogleEventId.is_not_null())
        .count(db)
        .await?)
}

/// The slots with these ids (any owner, deleted or not).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<SlotRow>, StoreError> {
    let mut rows = Vec::with_capacity(ids.len());
    // Bounded lists keep every statement under the databases' parameter limits.
    for chunk in ids.chunks(500) {
        let found = slots::Entity::find()
            .filter(slots::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        rows.extend(found);
    }
    Ok(rows)
}

/// Pauses every slot of `user` with `reason` (the account was disconnected, or cannot
/// sync: scopes or calendar missing). Slots already in sync are paused too, so every slot
/// says why nothing moves; resuming puts back only what has something to push.
pub async fn pause_all(db: &impl ConnectionTrait, user: UserId, reason: &str) -> Result<u64, StoreError> {
    Ok(pausing(reason)
        .filter(slots::Column::UserId.eq(user.0))
        .exec(db)
        .await?
        .rows_affected)
}

/// Resumes every paused slot of `user` (the account was reconnected): a slot Google
/// already holds as it is (nothing changed since its last sync) is `clean` again without a
/// push; the others go back in the outbox, due now. Returns how many were resumed.
pub async fn resume_paused(db: &impl ConnectionTrait, user: UserId, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let in_sync = Expr::col(slots::Column::SyncedVersion)
        .eq(Expr::col(slots::Column::Version))
        .and(slots::Column::GoogleEventId.is_not_null());
    Ok(slots::Entity::update_many()
        .col_expr(
            slots::Column::PushState,
            Expr::case(in_sync, PushState::Clean).finally(PushState::Dirty).into(),
        )
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::PushState.eq(PushState::Paused))
        .exec(db)
        .await?
        .rows_affected)
}

/// The events slotsync created for `user`'s live slots (`source = app`, linked): what a
/// disconnect with `delete_events=true` deletes. Slots imported from Google are never
/// among them: those events are the user's own.
pub async fn app_events(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<(Uuid, String)>, StoreError> {
    Ok(slots::Entity::find()
        .select_only()
        .column(slots::Column::Id)
        .column(slots::Column::GoogleEventId)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::Source.eq(Source::App))
        .filter(slots::Column::GoogleEventId.is_not_null())
        .into_tuple()
        .all(db)
        .await?)
}

/// Takes `user`'s live read-only slots out of the slots before a re-home: they mirror
/// events of the old calendar the user cannot move (someone else's meeting, a special
/// event type), so pushing them to the new calendar would make copies that are neither.
/// Each is soft-deleted, unlinked and `clean` (nothing is sent to Google; the events stay
/// where they are, and the new calendar's own are imported by its full sync). Returns
/// their ids.
pub async fn drop_read_only(
    db: &impl ConnectionTrait,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Uuid> = slots::Entity::find()
        .select_only()
        .column(slots::Column::Id)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::ReadOnlyReason.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    slots::Entity::update_many()
        .col_expr(slots::Column::DeletedAt, Expr::value(Some(now)))
        .col_expr(slots::Column::Version, Expr::col(slots::Column::Version).add(1))
        .col_expr(slots::Column::SyncedVersion, Expr::col(slots::Column::Version).add(1))
        .col_expr(slots::Column::UpdatedAt, Expr::value(now))
        .col_expr(slots::Column::GoogleEventId, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::GoogleEtag, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::PushState, Expr::value(PushState::Clean))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(slots::Column::Id.is_in(ids.clone()))
        .exec(db)
        .await?;
    Ok(ids)
}

/// Re-homes `user`'s slots from the home keyed `from` to home generation `home`, keyed
/// `to` (a new account or calendar): each live slot's event in `from` is remembered; every
/// live slot forgets its link and goes back in the outbox, due now, to be pushed to the
/// new calendar as one event — linked again to the event it had there if it was in `to`
/// before (so a return never duplicates, and the etag catches edits made meanwhile);
/// deleted slots have nothing to push there. Returns how many live slots will be pushed.
pub async fn rehome(
    db: &impl ConnectionTrait,
    user: UserId,
    home: i64,
    from: Option<&str>,
    to: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if let Some(from) = from {
        remember_links(db, user, from, now).await?;
    }
    let live = forget_links(slots::Entity::update_many(), now, PushState::Dirty, None)
        .col_expr(slots::Column::HomeGeneration, Expr::value(home))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Clean))
        .col_expr(slots::Column::LastPushError, Expr::value(Option::<String>::None))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(slots::Column::HomeGeneration, Expr::value(home))
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_not_null())
        .exec(db)
        .await?;
    restore_links(db, user, to, now).await?;
    Ok(live)
}

/// Remembers, for the home keyed `key`, the event of each linked slot of `user` that
/// still owns one there: every live slot, and every deleted slot whose deletion has not
/// reached Google yet (a return carries the deletion out).
async fn remember_links(
    db: &impl ConnectionTrait,
    user: UserId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // (slot, event id, etag, fingerprint)
    type Link = (Uuid, Option<String>, Option<String>, Option<String>);
    let linked: Vec<Link> = slots::Entity::find()
        .select_only()
        .column(slots::Column::Id)
        .column(slots::Column::GoogleEventId)
        .column(slots::Column::GoogleEtag)
        .column(slots::Column::SyncedFingerprint)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(
            Condition::any()
                .add(slots::Column::DeletedAt.is_null())
                .add(slots::Column::PushState.ne(PushState::Clean)),
        )
        .filter(slots::Column::GoogleEventId.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    // Bounded batches keep every statement under the databases' parameter limits.
    for chunk in linked.chunks(100) {
        let rows = chunk.iter().filter_map(|(id, event, etag, fp)| {
            Some(slot_links::ActiveModel {
                slot_id: Set(*id),
                home_key: Set(key.to_owned()),
                user_id: Set(user.0),
                event_id: Set(event.clone()?),
                etag: Set(etag.clone()),
                fingerprint: Set(fp.clone()),
                left_at: Set(now),
            })
        });
        slot_links::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([slot_links::Column::SlotId, slot_links::Column::HomeKey])
                    .update_columns([
                        slot_links::Column::EventId,
                        slot_links::Column::Etag,
                        slot_links::Column::Fingerprint,
                        slot_links::Column::LeftAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Links `user`'s slots again to the events they had in the home keyed `key`; those
/// memories are then spent. A live slot is linked (and pushed there if it changed); a slot
/// deleted while it lived elsewhere goes back in the outbox with its old event, so the
/// deletion reaches this calendar too: a return never leaves an event of a deleted slot.
async fn restore_links(
    db: &impl ConnectionTrait,
    user: UserId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let links = slot_links::Entity::find()
        .filter(slot_links::Column::UserId.eq(user.0))
        .filter(slot_links::Column::HomeKey.eq(key))
        .all(db)
        .await?;
    for link in &links {
        let relinked = slots::Entity::update_many()
            .col_expr(slots::Column::GoogleEventId, Expr::value(Some(link.event_id.clone())))
            .col_expr(slots::Column::GoogleEtag, Expr::value(link.etag.clone()))
            .col_expr(slots::Column::SyncedFingerprint, Expr::value(link.fingerprint.clone()))
            .filter(slots::Column::Id.eq(link.slot_id));
        relinked
            .clone()
            .filter(slots::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        relinked
            .col_expr(slots::Column::PushState, Expr::value(PushState::Dirty))
            .col_expr(slots::Column::PushAttempts, Expr::value(0))
            .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
            .filter(slots::Column::DeletedAt.is_not_null())
            .exec(db)
            .await?;
    }
    slot_links::Entity::delete_many()
        .filter(slot_links::Column::UserId.eq(user.0))
        .filter(slot_links::Column::HomeKey.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Makes `ids` (live slots of `user`) forget their Google link and go back in the outbox,
/// so each is pushed as a new event (the user discarded deletions made in Google).
pub async fn relink(
    db: &impl ConnectionTrait,
    user: UserId,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(forget_links(slots::Entity::update_many(), now, PushState::Dirty, None)
        .filter(slots::Column::UserId.eq(user.0))
        .filter(slots::Column::DeletedAt.is_null())
        .filter(slots::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Makes `slot` forget its Google link (its event was deleted by a disconnect) and wait,
/// paused with `reason`: a later connection pushes it as a new event.
pub async fn forget_link_paused(db: &impl ConnectionTrait, slot: Uuid, reason: &str) -> Result<(), StoreError> {
    forget_links(
        slots::Entity::update_many(),
        Utc::now(),
        PushState::Paused,
        Some(reason),
    )
    .filter(slots::Column::Id.eq(slot))
    .exec(db)
    .await?;
    Ok(())
}

/// The columns of a slot that has no Google event yet, due to be pushed now.
fn forget_links(
    update: sea_orm::UpdateMany<slots::Entity>,
    now: DateTime<Utc>,
    state: PushState,
    reason: Option<&str>,
) -> sea_orm::UpdateMany<slots::Entity> {
    update
        .col_expr(slots::Column::GoogleEventId, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::GoogleEtag, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::SyncedFingerprint, Expr::value(Option::<String>::None))
        .col_expr(slots::Column::SyncedVersion, Expr::value(Option::<i64>::None))
        .col_expr(slots::Column::PushState, Expr::value(state))
        .col_expr(slots::Column::PushAttempts, Expr::value(0))
        .col_expr(slots::Column::NextPushAt, Expr::value(Some(now)))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(slots::Column::LastPushError, Expr::value(reason.map(str::to_owned)))
        .col_expr(slots::Column::BreakerAlternations, Expr::value(0))
        .col_expr(
            slots::Column::BreakerWindowStart,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// An update that pauses slots with `reason`, releasing any claim on them.
pub(super) fn pausing(reason: &str) -> sea_orm::UpdateMany<slots::Entity> {
    slots::Entity::update_many()
        .col_expr(slots::Column::PushState, Expr::value(PushState::Paused))
        .col_expr(slots::Column::LastPushError, Expr::value(Some(reason.to_owned())))
        .col_expr(
            slots::Column::PushLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}
