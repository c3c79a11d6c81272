//! Local slot writes (the API's side of the transactional outbox): validate, commit the
//! slot together with `push_state = dirty`, then wake the push worker. Durable state
//! first, side effects after.

use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::{PushWaker, SyncError};
use crate::domain::recurrence::Recurrence;
use crate::domain::{ChangeKind, ChangeOrigin, SlotDraft, SlotFields, SlotId, UserId};
use crate::store::changes::{self, NewChange};
use crate::store::{self, slots::SlotRow, GroupCommit, StoreError};

/// An `Idempotency-Key` and the hash of the request body it came with.
#[derive(Debug, Clone)]
pub struct IdempotentRequest {
    pub key: String,
    pub request_hash: String,
}

/// What creating a slot produced.
#[derive(Debug)]
pub enum CreateOutcome {
    /// A new slot.
    Created(Box<SlotRow>),
    /// The same request was seen before: the slot it created, as it is now.
    Replayed(Box<SlotRow>),
}

/// Creates a slot. With an idempotency key, the key and the new slot's id are stored in
/// the same transaction; the same key and body later answer that slot again.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn create_slot(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    fields: SlotFields,
    recurrence: Vec<String>,
    idempotency: Option<IdempotentRequest>,
) -> Result<CreateOutcome, SyncError> {
    let draft = SlotDraft::validate(fields)?;
    Recurrence::parse(&recurrence)?.check_with(&draft)?;
    if let Some(idem) = &idempotency {
        if let Some(replay) = replay(writes.db(), user, idem).await? {
            return Ok(replay);
        }
    }
    let key = idempotency.clone();
    let created = writes
        .write(move |txn| {
            Box::pin(async move {
                let now = Utc::now();
                let row = store::slots::insert_new(txn, user, SlotId::new(), &draft, &recurrence, now).await?;
                if let Some(idem) = &key {
                    store::idempotency::save(txn, user, &idem.key, &idem.request_hash, row.id).await?;
                }
                let logged = NewChange::slot(ChangeKind::SlotCreated, ChangeOrigin::Api, &row);
                changes::append_one(txn, user, logged, now).await?;
                Ok(row)
            })
        })
        .await;
    match (created, &idempotency) {
        (Ok(row), _) => {
            waker.wake();
            super::feed::changed(user);
            Ok(CreateOutcome::Created(Box::new(row)))
        }
        // A concurrent request with the same key won; ours rolled back: replay it.
        (Err(StoreError::Duplicate(_)), Some(idem)) => replay(writes.db(), user, idem)
            .await?
            .ok_or(SyncError::Store(StoreError::NotFound)),
        (Err(e), _) => Err(e.into()),
    }
}

async fn replay(
    db: &DatabaseConnection,
    user: UserId,
    idem: &IdempotentRequest,
) -> Result<Option<CreateOutcome>, SyncError> {
    match store::idempotency::find(db, user, &idem.key).await? {
        Some(stored) if stored.request_hash == idem.request_hash => {
            // The user's slots go with the user, keys included: the slot is there.
            let slot = store::slots::find_any(db, user, SlotId(stored.slot_id))
                .await?
                .ok_or(SyncError::Store(StoreError::NotFound))?;
            Ok(Some(CreateOutcome::Replayed(Box::new(slot))))
        }
        Some(_) => Err(SyncError::IdempotencyMismatch),
        None => Ok(None),
    }
}

/// Replaces a slot's fields and recurrence lines (optionally only at `expected_version`).
/// A series' exceptions that no longer fall on one of its occurrences are dropped in the
/// same transaction; the second value says how many.
#[tracing::instrument(skip_all, fields(user_id = %user, slot_id = %id), err)]
pub async fn replace_slot(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    id: SlotId,
    fields: SlotFields,
    recurrence: Vec<String>,
    expected_version: Option<i64>,
) -> Result<(SlotRow, u64), SyncError> {
    let draft = SlotDraft::validate(fields)?;
    let rule = Recurrence::parse(&recurrence)?;
    rule.check_with(&draft)?;
    let (row, dropped) = writes
        .write_one(move |txn| {
            Box::pin(async move {
                let now = Utc::now();
                let row = store::slots::replace(txn, user, id, &draft, &recurrence, expected_version, now).await?;
                let dropped = super::occurrences::drop_stray(txn, &row, &rule, &draft).await?;
                let detail = if dropped > 0 {
                    serde_json::json!({ "exceptions_dropped": dropped })
                } else {
                    serde_json::Value::Null
                };
                let logged = NewChange::slot_with(ChangeKind::SlotUpdated, ChangeOrigin::Api, &row, detail);
                changes::append_one(txn, user, logged, now).await?;
                Ok((row, dropped))
            })
        })
        .await?;
    waker.wake();
    super::feed::changed(user);
    Ok((row, dropped))
}

/// Soft-deletes a slot (optionally only at `expected_version`); the deletion is pushed.
/// A read-only slot is refused; a meeting the user organises needs `notify_attendees`
/// (kept with the deletion: the push's `events.delete` sends `sendUpdates=all|none`).
#[tracing::instrument(skip_all, fields(user_id = %user, slot_id = %id), err)]
pub async fn delete_slot(
    writes: &GroupCommit,
    waker: &PushWaker,
    user: UserId,
    id: SlotId,
    expected_version: Option<i64>,
    notify_attendees: Option<bool>,
) -> Result<(), SyncError> {
    let send_updates = notify_attendees.map(|notify| if notify { "all" } else { "none" });
    writes
        .write_one(move |txn| {
            Box::pin(async move {
                let now = Utc::now();
                store::slots::soft_delete(txn, user, id, expected_version, send_updates, now).await?;
                let row = store::slots::find_any(txn, user, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let logged = NewChange::slot(ChangeKind::SlotDeleted, ChangeOrigin::Api, &row);
                changes::append_one(txn, user, logged, now).await?;
                Ok(())
            })
        })
        .await?;
    waker.wake();
    super::feed::changed(user);
    Ok(())
}
