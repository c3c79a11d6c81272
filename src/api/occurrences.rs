//! The occurrences of a recurring slot: list them (the rule's occurrences with the
//! exceptions applied), change one, cancel one. A change to an occurrence is a change of
//! its slot: it takes `If-Match` on the slot's version, bumps it, and is pushed to the
//! Google instance.

use chrono::{DateTime, FixedOffset, Utc};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::auth::UserAuth;
use super::body::JsonBody;
use super::date::Date;
use super::error::{answers::*, ApiError, Fails};
use super::slots::expected_version;
use super::{pagination, ApiTags};
use crate::domain::recurrence::{timing_span, Window};
use crate::domain::{OccurrenceKey, OccurrenceOrigin, SlotFields, SlotId, SlotTiming};
use crate::state::AppState;
use crate::store;
use crate::sync::occurrences::{self, OccurrenceView};
use crate::sync::SyncError;

/// Whether an occurrence happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OccurrenceStatus {
    /// It happens.
    Confirmed,
    /// It was cancelled (in Google, or with `DELETE`).
    Cancelled,
}

/// Who changed an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OccurrenceChangedBy {
    /// Through this API.
    Api,
    /// In Google Calendar.
    Google,
}

/// One occurrence of a slot.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Occurrence {
    /// Where the rule places it — its name, for `PUT`/`DELETE
    /// /slots/{id}/occurrences/{original_start}`: RFC 3339 in the slot's zone (timed), or
    /// `yyyy-mm-dd` (all-day). Moving the occurrence does not change it.
    pub original_start: String,
    /// Start now, in the slot's zone (local midnight of `start_date` for all-day slots).
    pub start: DateTime<FixedOffset>,
    /// End now, in the slot's zone.
    pub end: DateTime<FixedOffset>,
    /// First day (all-day slots).
    pub start_date: Option<Date>,
    /// Day after the last day, exclusive (all-day slots).
    pub end_date: Option<Date>,
    /// Title (the series', or the occurrence's own).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// Whether it happens.
    pub status: OccurrenceStatus,
    /// Whether it differs from the series (changed or cancelled).
    pub modified: bool,
    /// Who changed it (only for modified occurrences).
    pub origin: Option<OccurrenceChangedBy>,
}

impl From<&OccurrenceView> for Occurrence {
    fn from(v: &OccurrenceView) -> Self {
        let zone = v.content.timezone;
        let (start, end) = timing_span(&v.content.timing, zone);
        let (start_date, end_date) = match v.content.timing {
            SlotTiming::AllDay { start_date, end_date } => (Some(Date(start_date)), Some(Date(end_date))),
            SlotTiming::Timed { .. } => (None, None),
        };
        Occurrence {
            original_start: v.key.display(zone),
            start: start.with_timezone(&zone).fixed_offset(),
            end: end.with_timezone(&zone).fixed_offset(),
            start_date,
            end_date,
            title: v.content.title.clone(),
            description: v.content.description.clone(),
            location: v.content.location.clone(),
            status: if v.cancelled {
                OccurrenceStatus::Cancelled
            } else {
                OccurrenceStatus::Confirmed
            },
            modified: v.modified,
            origin: v.origin.map(|o| match o {
                OccurrenceOrigin::Api => OccurrenceChangedBy::Api,
                OccurrenceOrigin::Google => OccurrenceChangedBy::Google,
            }),
        }
    }
}

/// A page of occurrences.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OccurrencePage {
    /// In the order of their original starts.
    pub items: Vec<Occurrence>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `PUT /slots/{id}/occurrences/{original_start}`: the occurrence's times and
/// text (the zone and the all-day kind are the series').
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct OccurrenceInput {
    /// Title, 1–1024 characters, not only spaces or control characters.
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub title: String,
    /// Description, up to 8192 characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 8192, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub description: Option<String>,
    /// Location, up to 1024 characters (omit for none).
    #[oai(validator(min_length = 1, max_length = 1024, pattern = r"[^\s\x00-\x1f\x7f-\x9f]"))]
    pub location: Option<String>,
    /// Start, RFC 3339 with offset (timed series).
    pub start: Option<DateTime<FixedOffset>>,
    /// End, RFC 3339 with offset (timed series).
    pub end: Option<DateTime<FixedOffset>>,
    /// First day (all-day series).
    pub start_date: Option<Date>,
    /// Day after the last day, exclusive (all-day series).
    pub end_date: Option<Date>,
}

impl From<OccurrenceInput> for SlotFields {
    fn from(i: OccurrenceInput) -> Self {
        SlotFields {
            title: Some(i.title),
            description: i.description,
            location: i.location,
            start: i.start,
            end: i.end,
            start_date: i.start_date.map(|d| d.0),
            end_date: i.end_date.map(|d| d.0),
            ..Default::default()
        }
    }
}

#[derive(ApiResponse)]
enum OneOccurrence {
    /// The occurrence as it is now.
    #[oai(status = 200)]
    Ok(
        Json<Occurrence>,
        /// The slot's new version, for `If-Match`.
        #[oai(header = "ETag")]
        String,
    ),
}

#[derive(ApiResponse)]
enum CancelledOccurrence {
    /// The occurrence is cancelled (and the cancellation will reach Google).
    #[oai(status = 204)]
    Cancelled(
        /// The slot's new version, for `If-Match`.
        #[oai(header = "ETag")]
        String,
    ),
}

fn decode_cursor(cursor: &str) -> Result<OccurrenceKey, ApiError> {
    pagination::decode(cursor)?
        .strip_prefix("occ:")
        .and_then(OccurrenceKey::from_basic)
        .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor returned by this API"))
}

fn slot_not_found(e: SyncError) -> ApiError {
    match e {
        SyncError::Store(store::StoreError::NotFound) => ApiError::not_found("slot"),
        other => other.into(),
    }
}

/// Occurrences of recurring slots.
pub struct OccurrencesApi;

#[OpenApi(tag = "ApiTags::Slots")]
impl OccurrencesApi {
    /// List a slot's occurrences
    ///
    /// The occurrences of a slot whose rule places them in `[from, to)` (a slot that does
    /// not repeat has one), with moved, changed and cancelled ones as they are now.
    /// The window is at most 5 years; a page holds at most `limit`.
    #[oai(path = "/slots/:id/occurrences", method = "get", operation_id = "list_occurrences")]
    #[allow(clippy::too_many_arguments)]
    async fn list_occurrences(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
        /// Only occurrences ending after this instant (RFC 3339; default: the slot's start).
        from: Query<Option<DateTime<FixedOffset>>>,
        /// Only occurrences starting before this instant (RFC 3339; default: a year after
        /// `from`).
        to: Query<Option<DateTime<FixedOffset>>>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<OccurrencePage>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let id = SlotId(id.0.parse("id")?);
        let limit = pagination::page_size(limit.0)?;
        let after = cursor.0.as_deref().map(decode_cursor).transpose()?;
        let user = auth.user_id();
        let from = match from.0 {
            Some(f) => f.with_timezone(&Utc),
            None => {
                store::slots::find_live(&state.db, user, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("slot"))?
                    .start_at
            }
        };
        let to =
            to.0.map(|t| t.with_timezone(&Utc))
                .unwrap_or(from + chrono::Duration::days(366));
        let mut window = Window::new(from, to, limit as usize).map_err(ApiError::from)?;
        window.after = after;
        let (_, page) = occurrences::list(&state.db, user, id, &window)
            .await
            .map_err(slot_not_found)?;
        let next_cursor = page
            .more
            .then(|| {
                page.items
                    .last()
                    .map(|o| pagination::encode(&format!("occ:{}", o.key.basic())))
            })
            .flatten();
        Ok(Json(OccurrencePage {
            items: page.items.iter().map(Occurrence::from).collect(),
            next_cursor,
        }))
    }

    /// Change one occurrence
    ///
    /// Change one occurrence of a recurring slot (its times and text); the rest of the
    /// series stays. It is pushed to Google as the instance's override. With `If-Match:
    /// "<slot version>"` the change applies only if nobody changed the slot meanwhile
    /// (412 otherwise). An occurrence the series does not have → 404. A read-only series →
    /// 409 `read_only`.
    #[oai(
        path = "/slots/:id/occurrences/:original_start",
        method = "put",
        operation_id = "update_occurrence"
    )]
    async fn update_occurrence(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
        /// The occurrence's `original_start` (RFC 3339, or `yyyy-mm-dd` for all-day series).
        original_start: Path<String>,
        body: JsonBody<OccurrenceInput>,
        /// The slot version this change is based on, as given in the slot's `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<OneOccurrence, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | PRECONDITION_FAILED | AUTHENTICATED }>>
    {
        let id = SlotId(id.0.parse("id")?);
        let expected = expected_version(if_match.0.as_deref())?;
        let (row, view) = occurrences::update(
            &state.writes,
            &state.push_waker,
            auth.user_id(),
            id,
            &original_start.0,
            body.value.into(),
            expected,
        )
        .await
        .map_err(slot_not_found)?;
        Ok(OneOccurrence::Ok(
            Json(Occurrence::from(&view)),
            format!("\"{}\"", row.version),
        ))
    }

    /// Cancel one occurrence
    ///
    /// Cancel one occurrence of a recurring slot; it is deleted from Google as that
    /// instance. `If-Match` works as for changes. An occurrence the series does not have
    /// → 404. A read-only series → 409 `read_only`.
    #[oai(
        path = "/slots/:id/occurrences/:original_start",
        method = "delete",
        operation_id = "cancel_occurrence"
    )]
    async fn cancel_occurrence(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// The slot's id.
        id: Path<super::path_id::PathUuid>,
        /// The occurrence's `original_start` (RFC 3339, or `yyyy-mm-dd` for all-day series).
        original_start: Path<String>,
        /// The slot version this change is based on, as given in the slot's `ETag`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<CancelledOccurrence, Fails<{ BAD_REQUEST | NOT_FOUND | CONFLICT | PRECONDITION_FAILED | AUTHENTICATED }>>
    {
        let id = SlotId(id.0.parse("id")?);
        let expected = expected_version(if_match.0.as_deref())?;
        let row = occurrences::cancel(
            &state.writes,
            &state.push_waker,
            auth.user_id(),
            id,
            &original_start.0,
            expected,
        )
        .await
        .map_err(slot_not_found)?;
        Ok(CancelledOccurrence::Cancelled(format!("\"{}\"", row.version)))
    }
}
