//! Deletions made in Google that the mass-deletion guard held: list, apply, discard.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::auth::UserAuth;
use super::error::{answers::*, Fails};
use super::ApiTags;
use crate::state::AppState;
use crate::sync::held;

/// A deletion made in Google that waits for the caller's decision.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HeldDeletion {
    /// The slot whose event was deleted in Google (the slot is still there).
    pub slot_id: Uuid,
    /// The deleted event.
    pub event_id: String,
    /// The slot's version when the deletion was held; applying skips a slot edited since.
    pub slot_version: i64,
    /// When the pull held it.
    pub held_at: DateTime<Utc>,
}

/// What applying or discarding did.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct HeldSettled {
    /// Apply: slots deleted. Discard: slots queued to be pushed to Google again, each as
    /// one new event.
    pub slots: u64,
    /// Apply: slots edited here since the deletion was held; the edit stands and is
    /// pushed as a new event.
    pub changed_since: u64,
}

impl From<held::Settled> for HeldSettled {
    fn from(s: held::Settled) -> Self {
        HeldSettled {
            slots: s.slots,
            changed_since: s.changed_since,
        }
    }
}

/// The slots named by `?slot_id=`, or `None` for every held deletion.
fn selection(slot_ids: Vec<Uuid>) -> Option<Vec<Uuid>> {
    (!slot_ids.is_empty()).then_some(slot_ids)
}

/// Held deletions (the mass-deletion guard).
pub struct HeldDeletionsApi;

#[OpenApi(tag = "ApiTags::Sync")]
impl HeldDeletionsApi {
    /// Deletions held by the guard
    ///
    /// Deletions made in Google that were held: a pull found more events deleted at once
    /// than `MASS_DELETE_MIN` or `MASS_DELETE_PERCENT` % of the caller's linked slots
    /// allow, so it deleted no slot. Apply or discard them.
    #[oai(path = "/sync/held-deletions", method = "get", operation_id = "list_held_deletions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
    ) -> Result<Json<Vec<HeldDeletion>>, Fails<{ AUTHENTICATED }>> {
        let rows = held::list(&state.db, auth.user_id()).await?;
        Ok(Json(
            rows.into_iter()
                .map(|h| HeldDeletion {
                    slot_id: h.slot_id,
                    event_id: h.event_id,
                    slot_version: h.slot_version,
                    held_at: h.held_at,
                })
                .collect(),
        ))
    }

    /// Apply held deletions
    ///
    /// Apply held deletions: the slots are deleted, as they were in Google.
    #[oai(
        path = "/sync/held-deletions/apply",
        method = "post",
        operation_id = "apply_held_deletions"
    )]
    async fn apply(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Only these slots (repeat the parameter); default: every held deletion.
        slot_id: Query<Vec<Uuid>>,
    ) -> Result<Json<HeldSettled>, Fails<{ BAD_REQUEST | AUTHENTICATED }>> {
        let only = selection(slot_id.0);
        Ok(Json(
            held::apply(&state.db, &state.push_waker, auth.user_id(), only.as_deref())
                .await?
                .into(),
        ))
    }

    /// Discard held deletions
    ///
    /// Discard held deletions: the slots stay and are pushed to Google again, each as one
    /// new event.
    #[oai(
        path = "/sync/held-deletions/discard",
        method = "post",
        operation_id = "discard_held_deletions"
    )]
    async fn discard(
        &self,
        state: Data<&AppState>,
        auth: UserAuth,
        /// Only these slots (repeat the parameter); default: every held deletion.
        slot_id: Query<Vec<Uuid>>,
    ) -> Result<Json<HeldSettled>, Fails<{ BAD_REQUEST | AUTHENTICATED }>> {
        let only = selection(slot_id.0);
        Ok(Json(
            held::discard(&state.db, &state.push_waker, auth.user_id(), only.as_deref())
                .await?
                .into(),
        ))
    }
}
