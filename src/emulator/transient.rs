//! Answers that surprise clients (see GOOGLE_WIRE "Answers that surprise clients" and
//! <https://developers.google.com/calendar/api/guides/errors>): a 404 on an existing event
//! that goes away on retry, and 403 instead of 410 on writes to a deleted event. Both
//! are off unless the fault plan asks for them.

use super::errors::ApiError;
use super::model::Event;
use super::state::State;

/// 404 while the fault plan's `transient_404` still owes `op` answers for this live event;
/// counted per event (in `State::transient_404_hits`) and in the fault stats.
pub fn transient_404(st: &mut State, op: &str, cal_id: &str, event: &Event) -> Result<(), ApiError> {
    let Some(plan) = &st.faults.transient_404 else {
        return Ok(());
    };
    if event.is_cancelled() || !plan.ops.iter().any(|o| o == op) {
        return Ok(());
    }
    let times = plan.times;
    let hits = st
        .transient_404_hits
        .entry((cal_id.to_owned(), event.id.clone()))
        .or_default();
    if *hits >= times {
        return Ok(());
    }
    *hits += 1;
    st.stats.record_fault(op, "transient_404");
    Err(ApiError::not_found())
}

/// The answer to an update or patch of a deleted event: 410 `deleted`, or 403 `forbidden`
/// under the fault plan's `deleted_event_writes: 403`.
pub fn answer_write_to_deleted(st: &mut State) -> ApiError {
    match st.faults.deleted_event_writes {
        Some(403) => ApiError::forbidden(),
        _ => ApiError::deleted(),
    }
}
