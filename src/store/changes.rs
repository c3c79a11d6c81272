//! The change log (`changes`, `change_heads`): one row per change of a user, appended in
//! the transaction of the change it records, so nothing that committed is missing from
//! it and nothing is in it that did not commit. Each user's entries are numbered 1, 2, 3…
//! from `change_heads`: taking numbers updates the user's head row, which holds its lock
//! until the transaction ends, so numbers are taken in commit order and a reader never
//! sees a gap that fills in later.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::{json, Value};
use uuid::Uuid;

use super::entities::{change_heads, changes};
use super::slots::SlotRow;
use super::StoreError;
use crate::domain::{ChangeKind, ChangeOrigin, UserId};

pub use changes::Model as ChangeRow;

/// A change to append.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub kind: ChangeKind,
    pub origin: Option<ChangeOrigin>,
    pub slot: Option<Uuid>,
    /// `{"slot": …}` for slot changes (the slot after the change), else the detail.
    pub data: Value,
}

impl NewChange {
    /// A change of `row` (as it is after the change) made by `origin`.
    pub fn slot(kind: ChangeKind, origin: ChangeOrigin, row: &SlotRow) -> Self {
        Self::slot_with(kind, origin, row, Value::Null)
    }

    /// Like [`NewChange::slot`], with a detail (`{"slot": …, "detail": …}`).
    pub fn slot_with(kind: ChangeKind, origin: ChangeOrigin, row: &SlotRow, detail: Value) -> Self {
        let mut data = json!({ "slot": row });
        if !Value::is_null(&detail) {
            data["detail"] = detail;
        }
        Self {
            kind,
            origin: Some(origin),
            slot: Some(row.id),
            data,
        }
    }

    /// A change about the user's connection (no slot), with its detail.
    pub fn about(kind: ChangeKind, detail: Value) -> Self {
        Self {
            kind,
            origin: Some(ChangeOrigin::System),
            slot: None,
            data: json!({ "detail": detail }),
        }
    }
}

/// Where a user's log stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    /// The number of the user's last change (0: none yet).
    pub seq: i64,
    /// Changes up to this number were purged by the retention job.
    pub purged_through: i64,
}

/// Appends `entries` to `user`'s log in `db` (the transaction of the change). Returns the
/// number of the last one (the head), or `None` when there was nothing to append.
pub async fn append(
    db: &impl ConnectionTrait,
    user: UserId,
    entries: Vec<NewChange>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let n = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    if n == 0 {
        return Ok(None);
    }
    let head = change_heads::Entity::insert(change_heads::ActiveModel {
        user_id: Set(user.0),
        seq: Set(n),
        purged_through: Set(0),
    })
    .on_conflict(
        OnConflict::column(change_heads::Column::UserId)
            .value(
                change_heads::Column::Seq,
                Expr::col((change_heads::Entity, change_heads::Column::Seq)).add(n),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await?;
    let first = head.seq - n + 1;
    let kinds: Vec<(i64, &'static str)> = entries
        .iter()
        .zip(first..)
        .map(|(c, seq)| (seq, c.kind.as_str()))
        .collect();
    let rows = entries.into_iter().zip(first..).map(|(c, seq)| changes::ActiveModel {
        user_id: Set(user.0),
        seq: Set(seq),
        kind: Set(c.kind.as_str().to_owned()),
        origin: Set(c.origin.map(|o| o.as_str().to_owned())),
        slot_id: Set(c.slot),
        data: Set(c.data.to_string()),
        created_at: Set(now),
    });
    changes::Entity::insert_many(rows).exec_without_returning(db).await?;
    // Each endpoint of the user gets its delivery in the same transaction.
    super::webhooks::enqueue(db, user, &kinds, now).await?;
    Ok(Some(head.seq))
}

/// Appends one entry; see [`append`].
pub async fn append_one(
    db: &impl ConnectionTrait,
    user: UserId,
    entry: NewChange,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    append(db, user, vec![entry], now).await
}

/// The entry recording a `kind` change of `user`'s slot `slot` by `origin`, as `db` (the
/// transaction of the change) now holds the slot; `None` if there is no such slot.
pub async fn slot_entry(
    db: &impl ConnectionTrait,
    user: UserId,
    slot: Uuid,
    kind: ChangeKind,
    origin: ChangeOrigin,
    detail: Value,
) -> Result<Option<NewChange>, StoreError> {
    Ok(super::slots::find_any(db, user, crate::domain::SlotId(slot))
        .await?
        .map(|row| NewChange::slot_with(kind, origin, &row, detail)))
}

/// Appends a `kind` entry for each of `user`'s slots `ids`, as `db` (the transaction of
/// the change) now holds them.
pub async fn append_slots(
    db: &impl ConnectionTrait,
    user: UserId,
    ids: &[Uuid],
    kind: ChangeKind,
    origin: ChangeOrigin,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let rows = super::slots::by_ids(db, ids).await?;
    let entries = rows
        .iter()
        .filter(|r| r.user_id == user.0)
        .map(|r| NewChange::slot(kind, origin, r))
        .collect();
    append(db, user, entries, now).await
}

/// `user`'s change `seq`, if still kept.
pub async fn get(db: &impl ConnectionTrait, user: UserId, seq: i64) -> Result<Option<ChangeRow>, StoreError> {
    Ok(changes::Entity::find_by_id((user.0, seq)).one(db).await?)
}

/// Where `user`'s log stands.
pub async fn head(db: &impl ConnectionTrait, user: UserId) -> Result<Head, StoreError> {
    Ok(change_heads::Entity::find_by_id(user.0)
        .one(db)
        .await?
        .map(|h| Head {
            seq: h.seq,
            purged_through: h.purged_through,
        })
        .unwrap_or_default())
}

/// `user`'s changes numbered after `after`, oldest first, at most `limit`.
pub async fn after(
    db: &impl ConnectionTrait,
    user: UserId,
    after: i64,
    limit: u64,
) -> Result<Vec<ChangeRow>, StoreError> {
    Ok(changes::Entity::find()
        .filter(changes::Column::UserId.eq(user.0))
        .filter(changes::Column::Seq.gt(after))
        .order_by_asc(changes::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// Deletes the changes written before `before`, remembering per user how far the log was
/// purged (a cursor before that point has lost changes: the API answers 410). Returns how
/// many were deleted.
pub async fn purge(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let purged: Vec<(Uuid, Option<i64>)> = changes::Entity::find()
        .select_only()
        .column(changes::Column::UserId)
        .column_as(changes::Column::Seq.max(), "max_seq")
        .filter(changes::Column::CreatedAt.lt(before))
        .group_by(changes::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    for (user, through) in purged {
        let Some(through) = through else { continue };
        change_heads::Entity::update_many()
            .col_expr(change_heads::Column::PurgedThrough, Expr::value(through))
            .filter(change_heads::Column::UserId.eq(user))
            .filter(change_heads::Column::PurgedThrough.lt(through))
            .exec(db)
            .await?;
    }
    Ok(changes::Entity::delete_many()
        .filter(changes::Column::CreatedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
