//! Slot CRUD for the calling user. Every write commits the slot and its outbox mark
//! together; the answer comes back at once with `sync.state = pending`.

use chrono::{DateTime, FixedOffset, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::auth::UserAuth;
use super::body::JsonBody;
use super::error::{answers::*, ApiError, Fails};
use super::slot_model::{Slot, SlotBody, SlotInput, SlotPage};
use super::{pagination, ApiTags};
use crate::domain::SlotId;
use crate::state::AppState;
use crate::store::{self, slots::SlotQuery};
use crate::sync::local::{self, CreateOutcome, IdempotentRequest};

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

#[derive(ApiResponse)]
enum CreatedSlot {
    /// The slot was created; with an `Idempotency-Key` seen before (same body), the first
    /// answer is replayed.
    #[oai(status = 201)]
    Created(
        Json<Slot>,
        /// The slot's version, for `If-Match`.
        #[oai(header = "ETag")]
        String,
        /// Where the slot lives.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
enum OneSlot {
    /// The slot.
    #[oai(status = 200)]
    Ok(
        Json<Slot>,
        /// The slot's version, for `If-Match`.
        #[oai(header = "ETag")]
        String,
    ),
}

#[derive(ApiResponse)]
enum DeletedSlot {
    /// The slot is deleted (and the deletion will reach Google).
    #[oai(status = 204)]
    Deleted,
}

fn one(slot: Slot) -> OneSlot {
    let etag = slot.etag();
    OneSlot::Ok(Json(slot), etag)
}

/// Reads `If-Match`: a version number, bare or quoted (`3`, `"3"`, `W/"3"`); `*` means any.
pub(super) fn expected_version(if_match: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = if_match.map(str::trim) else {
        return Ok(None);
    };
    if raw == "*" {
        return Ok(None);
    }
    let unquoted = raw.trim_start_matches("W/").trim_matches('"');
    unquoted.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(
            "If-Match",
            "must be the slot's version as given in its ETag, e.g. \"3\"",
        )
    })
}

fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!("must be 1–{MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (a UUID is a good choice)"),
        ));
    }
    Ok(())
}

/// Decodes a slot cursor: `<unix seconds>:<uuid>` of the last slot of the previous page.
fn decode_slot_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let raw = pagination::decode(cursor)?;
    let bad = || ApiError::invalid("cursor", "is not a cursor returned by this API");
    let (secs, id) = raw.split_once(':').ok_or_else(bad)?;
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp(secs, 0).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// Slot CRUD.
pub struct SlotsApi;

#[OpenApi(tag = "ApiTags::Slots")]
impl SlotsApi {
    /// Create a slot
    ///
    /// Create a slot. It is pushed to the owner's Google Calendar in the background
    /// (`sync.state` is `pending` until then). Send an `Idempotency-Key` to retry safely.
    #[oai(path = "/slots", method = "post", operation_id = "create_slot")]
    async fn create_slot(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        body: JsonBody<SlotInput, SlotBody>,
        /// Any unique string (a UUID): the same key with the same body replays the first
        /// answer; with another body → 422.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<CreatedSlot, Fails<{ BAD_REQUEST | UNPROCESSABLE | AUTHENTICATED }>> {
        let idempotency = match idempotency_key.0 {
            Some(key) => {
                check_idempotency_key(&key)?;
                Some(IdempotentRequest {
                    key,
                    request_hash: body.canonical_hash.clone(),
                })
            }
            None => None,
        };
        let recurrence = body.value.recurrence.clone().unwrap_or_default();
        let slot = match local::create_slot(
            &state.writes,
            &state.push_waker,
            auth.user_id(),
            body.value.into(),
            recurrence,
            idempotency,
        )
        .await?
        {
            CreateOutcome::Created(row) | CreateOutcome::Replayed(row) => Slot::from(row.as_ref()),
        };
        let etag = slot.etag();
        let location = format!("/slots/{}", slot.id);
        Ok(CreatedSlot::Created(Json(slot), etag, location))
    }

    /// List your slots
    ///
    /// List the caller's slots ordered by start, a page at a time. `from`/`to` keep the
    /// slots that overlap `[from, to)`; a recurring slot is kept when any of its
    /// occurrences overlaps (a page may then hold fewer than `limit` slots).
    #[oai(path = "/slots", method = "get", operation_id = "list_slots")]
    #[allow(clippy::too_many_arguments)]
    async fn list_slots(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Only slots ending after this instant (RFC 3339 with offset).
        from: Query<Option<DateTime<FixedOffset>>>,
        /// Only slots starting before this instant (RFC 3339 with offset).
        to: Query<Option<DateTime<FixedOffset>>>,
        /// Include deleted slots (default false).
        include_deleted: Query<Option<bool>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<SlotPage>, Fails<{ BAD_REQUEST | AUTHENTICATED }>> {
        let limit = pagination::page_size(limit.0)?;
        let from = from.0.map(|t| t.with_timezone(&Utc));
        let to = to.0.map(|t| t.with_timezone(&Utc));
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err(ApiError::invalid("to", "must be after `from`").into());
            }
        }
        let query = SlotQuery {
            from,
            to,
            include_deleted: include_deleted.0.unwrap_or(false),
            after: cursor.0.as_deref().map(decode_slot_cursor).transpose()?,
            limit,
        };
        // The feed's position first: a change committed during the listing is after it.
        let head = store::changes::head(&state.db, auth.user_id()).await?;
        let mut rows = store::slots::list(&state.db, auth.user_id(), &query).await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| pagination::encode(&format!("{}:{}", r.start_at.timestamp(), r.id)))
        } else {
            None
        };
        // A series is listed when one of its occurrences overlaps the window (a page may
        // then hold fewer than `limit` slots; `next_cursor` still says whether more follow).
        if from.is_some() {
            rows.retain(|r| crate::sync::occurrences::overlaps(r, from, to));
        }
        Ok(Json(SlotPage {
            items: rows.iter().map(Slot::from).collect(),
            next_cursor,
            changes_cursor: super::changes::cursor(head.seq),
        }))
    }

    /// Get a slot
    ///
    /// One of the caller's slots.
    #[oai(path = "/slots/:id", method = "get", operation_id = "get_slot")]
    async fn get_slot(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
    ) -> Result<OneSlot, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let id = SlotId(id.0.parse("id")?);
        let row = store::slots::find_live(&state.db, auth.user_id(), id)
            .await?
            .ok_or_else(|| ApiError::not_found("slot"))?;
        Ok(one(Slot::from(&row)))
    }

    /// Replace a slot
    ///
    /// Replace a slot's fields. With `If-Match: "<version>"` the change applies only if
    /// nobody changed the slot meanwhile (412 otherwise). On a series, occurrence
    /// exceptions that no longer fall on an occurrence are dropped; the answer's
    /// `exceptions_dropped` says how many. A read-only slot (`read_only: true`) → 409
    /// `read_only` with its `reason`; nothing is changed.
    #[oai(path = "/slots/:id", method = "put", operation_id = "replace_slot")]
    async fn replace_slot(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
        body: JsonBody<SlotInput, SlotBody>,
        /// The version this change is based on, as given in the slot's `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<OneSlot, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | PRECONDITION_FAILED | AUTHENTICATED }>> {
        let id = SlotId(id.0.parse("id")?);
        let expected = expected_version(if_match.0.as_deref())?;
        let recurrence = body.value.recurrence.clone().unwrap_or_default();
        let (row, dropped) = local::replace_slot(
            &state.writes,
            &state.push_waker,
            auth.user_id(),
            id,
            body.value.into(),
            recurrence,
            expected,
        )
        .await
        .map_err(|e| match e {
            crate::sync::SyncError::Store(store::StoreError::NotFound) => ApiError::not_found("slot"),
            other => other.into(),
        })?;
        let mut slot = Slot::from(&row);
        if slot.recurrence.is_some() || dropped > 0 {
            slot.exceptions_dropped = Some(dropped);
        }
        Ok(one(slot))
    }

    /// Delete a slot
    ///
    /// Delete a slot (soft delete; the event is removed from Google in the background).
    /// A second delete → 404. `If-Match` works as for updates. A read-only slot → 409
    /// `read_only`. A meeting the caller organises (`attendee_count` present) needs
    /// `notify_attendees`: whether Google emails its attendees the cancellation (400
    /// naming `notify_attendees` without it).
    #[oai(path = "/slots/:id", method = "delete", operation_id = "delete_slot")]
    async fn delete_slot(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
        /// The version this deletion is based on, as given in the slot's `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// For a meeting the caller organises (required there): `true` has Google email
        /// the attendees the cancellation (`sendUpdates=all`), `false` tells nobody.
        notify_attendees: Query<Option<bool>>,
    ) -> Result<DeletedSlot, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | PRECONDITION_FAILED | AUTHENTICATED }>> {
        let id = SlotId(id.0.parse("id")?);
        let expected = expected_version(if_match.0.as_deref())?;
        local::delete_slot(
            &state.writes,
            &state.push_waker,
            auth.user_id(),
            id,
            expected,
            notify_attendees.0,
        )
        .await
        .map_err(|e| match e {
            crate::sync::SyncError::Store(store::StoreError::NotFound) => ApiError::not_found("slot"),
            other => other.into(),
        })?;
        Ok(DeletedSlot::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_bare_quoted_and_weak_versions() {
        assert_eq!(expected_version(Some("3")).unwrap(), Some(3));
        assert_eq!(expected_version(Some("\"3\"")).unwrap(), Some(3));
        assert_eq!(expected_version(Some("W/\"12\"")).unwrap(), Some(12));
        assert_eq!(expected_version(Some("*")).unwrap(), None);
        assert_eq!(expected_version(None).unwrap(), None);
        assert!(expected_version(Some("abc")).is_err());
    }

    #[test]
    fn slot_cursors_round_trip_and_reject_garbage() {
        let id = Uuid::new_v4();
        let c = pagination::encode(&format!("1700000000:{id}"));
        let (at, back) = decode_slot_cursor(&c).unwrap();
        assert_eq!(at.timestamp(), 1_700_000_000);
        assert_eq!(back, id);
        assert!(decode_slot_cursor("!!!").is_err());
        assert!(decode_slot_cursor(&pagination::encode("x:y")).is_err());
    }
}
