//! Pushing a series' occurrence exceptions, after its master: each exception whose
//! content differs from what Google holds for the instance (its fingerprint is not the
//! `synced_fingerprint`) becomes an `events.patch` on the instance id
//! (`<eventId>_<original start>`), a cancellation an `events.delete` on it. Instances
//! are written without `If-Match`: the last writer wins for one occurrence (see
//! `docs/recurrence.md`). The results are recorded by the caller with the master's.

use serde_json::Value;

use crate::domain::{Fingerprint, SlotDraft, SlotId, UserId};
use crate::google::mapping::EventContent;
use crate::google::{CalendarGateway, GoogleError};
use crate::store::occurrences::{self, ExceptionRow};

/// An exception Google now holds.
#[derive(Debug, Clone)]
pub struct PushedException {
    pub original_start: String,
    pub fingerprint: String,
    pub etag: Option<String>,
}

/// The fingerprint Google should hold for `exception`'s instance of `series`.
pub fn wanted(exception: &ExceptionRow, series: &SlotDraft) -> Option<Fingerprint> {
    let key = occurrences::key(exception)?;
    let content = occurrences::content(exception, series);
    Some(Fingerprint::of_occurrence(&key, content.as_ref()))
}

/// Where the exceptions go: the master event and what its instances hold.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub user: UserId,
    pub calendar: &'a str,
    pub slot: SlotId,
    pub event_id: &'a str,
    /// The master was just created (first push, a re-home, or re-created after a deletion
    /// in Google): its instances hold none of the exceptions, whatever was recorded.
    pub fresh: bool,
}

/// Pushes the exceptions of `target.slot` that its instances do not hold yet.
pub async fn push_exceptions(
    gateway: &dyn CalendarGateway,
    target: Target<'_>,
    series: &SlotDraft,
    exceptions: &[ExceptionRow],
    origin: &str,
) -> Result<Vec<PushedException>, GoogleError> {
    let Target {
        user,
        calendar,
        slot,
        event_id,
        fresh,
    } = target;
    let mut pushed = Vec::new();
    for exception in exceptions {
        let (Some(key), Some(fingerprint)) = (occurrences::key(exception), wanted(exception, series)) else {
            continue;
        };
        if !fresh && exception.synced_fingerprint.as_deref() == Some(fingerprint.as_str()) {
            continue;
        }
        let instance = key.instance_id(event_id);
        let etag = match occurrences::content(exception, series) {
            None => match gateway.delete_event(user, calendar, &instance).await {
                // Already cancelled (or the whole series is gone): nothing to do.
                Ok(()) | Err(GoogleError::Gone(_)) => None,
                Err(e) => return Err(e),
            },
            Some(draft) => {
                let content = EventContent {
                    slot,
                    draft: &draft,
                    recurrence: &[],
                    origin,
                };
                let mut patch = content.to_patch();
                if let Value::Object(map) = &mut patch {
                    // An instance has no rule of its own.
                    map.remove("recurrence");
                }
                let event = gateway.patch_event(user, calendar, &instance, &patch, None).await?;
                event.etag
            }
        };
        pushed.push(PushedException {
            original_start: exception.original_start.clone(),
            fingerprint: fingerprint.as_str().to_owned(),
            etag,
        });
    }
    Ok(pushed)
}
