//! "This and following", the way the Google Calendar UI does it: a series is split at
//! one of its occurrences. The master's RRULE gets `UNTIL` just before that occurrence,
//! and a new series `<eventId>_R<YYYYMMDDTHHMMSS>` (`_R<YYYYMMDD>` for all-day) starts
//! there, carrying the exceptions from that occurrence on. Exposed as
//! `POST /_emulator/calendars/{calendarId}/events/{eventId}/split` (and
//! `slotsync emulator split`).

use super::events::{merge_patch, to_json};
use super::instances::{detach_exceptions, instance_id, is_master, occurrence, OriginalStart};
use super::model::Event;
use super::pipeline::json_response;
use super::push;
use super::recurrence::{expand, parse_date_list, validate_recurrence};
use super::state::{decode_path, Shared, State};
use super::times::{event_tz, validate_times};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use poem::web::Data;
use poem::{handler, Request, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Why a split was refused.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Unknown calendar, no live recurring event of that id, or not an occurrence.
    #[error("{0}")]
    NotFound(String),
    /// The split point or the changes are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The new series' id is taken (the series was split there before).
    #[error("{0}")]
    Conflict(String),
}

impl SplitError {
    fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 400,
            Self::Conflict(_) => 409,
        }
    }
}

/// What a split produced.
#[derive(Debug)]
pub struct Split {
    /// The truncated master.
    pub master: Event,
    /// The new series.
    pub series: Event,
    /// Exceptions moved to the new series.
    pub moved: usize,
    /// Exceptions dropped because `changes` moved the new series off their occurrence.
    pub dropped: usize,
}

/// Splits the series `event_id` of calendar `cal_id` at occurrence `at`, applying
/// `changes` (patch semantics) to the new series.
pub fn split_series(
    st: &mut State,
    base_url: &str,
    cal_id: &str,
    event_id: &str,
    at: OriginalStart,
    changes: Option<&Map<String, Value>>,
) -> Result<Split, SplitError> {
    let cal = st
        .calendars
        .get(cal_id)
        .ok_or_else(|| SplitError::NotFound(format!("unknown calendar {cal_id}")))?;
    let tz_name = cal.time_zone.clone();
    let master = cal
        .events
        .get(event_id)
        .map(|s| s.event.clone())
        .filter(|e| is_master(e) && !e.is_cancelled())
        .ok_or_else(|| SplitError::NotFound(format!("no live recurring event {event_id}")))?;
    let occ = occurrence(&master, &tz_name, &at)
        .ok_or_else(|| SplitError::NotFound(format!("{} is not an occurrence of {event_id}", at.suffix())))?;
    let has_earlier = expand(&master, &tz_name, None, Some(at.instant()))
        .iter()
        .any(|i| OriginalStart::of_instance(i).is_some_and(|o| o < at));
    if !has_earlier {
        return Err(SplitError::Invalid(
            "that is the first occurrence: change the whole series instead".to_owned(),
        ));
    }
    let stamp = match at {
        OriginalStart::Timed(t) => t.format("%Y%m%dT%H%M%S").to_string(),
        OriginalStart::AllDay(d) => d.format("%Y%m%d").to_string(),
    };
    let series_id = format!("{}_R{stamp}", master.id);
    if cal.events.contains_key(&series_id) {
        return Err(SplitError::Conflict(format!("{series_id} exists already")));
    }
    let last = expand(&master, &tz_name, None, None)
        .last()
        .and_then(OriginalStart::of_instance);
    let list_tz = match at {
        OriginalStart::AllDay(_) => Tz::UTC,
        OriginalStart::Timed(_) => event_tz(&master, &tz_name),
    };
    let (before, after) = split_rules(master.recurrence.as_deref().unwrap_or_default(), at, last, list_tz);

    let mut truncated = master.clone();
    truncated.recurrence = Some(before);
    truncated.sequence = Some(master.sequence.unwrap_or(0) + 1);

    let mut series = master.clone();
    series.start = occ.start.clone();
    series.end = occ.end.clone();
    series.recurrence = Some(after);
    if let Some(changes) = changes {
        let mut merged = to_json(&series);
        merge_patch(&mut merged, changes);
        series = serde_json::from_value(merged).map_err(|e| SplitError::Invalid(format!("changes: {e}")))?;
    }
    series.kind = master.kind.clone();
    series.id = series_id.clone();
    series.created = None;
    series.sequence = Some(0);
    series.status = Some("confirmed".to_owned());
    series.ical_uid = Some(format!("{series_id}@google.com"));
    series.html_link = Some(format!("{base_url}/calendar/event?eid={series_id}"));
    series.creator = master.creator.clone();
    series.organizer = master.organizer.clone();
    series.recurring_event_id = None;
    series.original_start_time = None;
    validate_times(&series).map_err(|e| SplitError::Invalid(format!("changes: {}", e.message)))?;
    validate_recurrence(&series).map_err(|e| SplitError::Invalid(format!("changes: {}", e.message)))?;

    let mut carried = Vec::new();
    let mut dropped = 0;
    for stored in cal.events.values() {
        let ev = &stored.event;
        if ev.recurring_event_id.as_deref() != Some(master.id.as_str()) || stored.detached {
            continue;
        }
        let Some(original) = OriginalStart::of_instance(ev).filter(|o| *o >= at) else {
            continue;
        };
        if occurrence(&series, &tz_name, &original).is_none() {
            dropped += 1;
            continue;
        }
        let mut copy = ev.clone();
        copy.id = instance_id(&series_id, &original);
        copy.recurring_event_id = Some(series_id.clone());
        copy.ical_uid = series.ical_uid.clone();
        carried.push(copy);
    }
    // Order of the change log: the old exceptions' tombstones, the truncated master, the
    // new series, then its exceptions — so an incremental reader never sees an exception
    // before its series.
    detach_exceptions(st, cal_id, &master.id, |s| {
        OriginalStart::of_instance(&s.event).is_some_and(|o| o < at)
    });
    let master = st.store_event(cal_id, truncated, false);
    let series = st.store_event(cal_id, series, false);
    let moved = carried.len();
    for copy in carried {
        st.store_event(cal_id, copy, false);
    }
    Ok(Split {
        master,
        series,
        moved,
        dropped,
    })
}

/// The recurrence lines of the two parts. Before: every RRULE ends (`UNTIL`, no `COUNT`)
/// just before `at`; EXDATE/RDATE keep their earlier values. After: a `COUNT` becomes
/// `UNTIL` the series' last occurrence; EXDATE/RDATE keep the values from `at` on.
fn split_rules(
    lines: &[String],
    at: OriginalStart,
    last: Option<OriginalStart>,
    list_tz: Tz,
) -> (Vec<String>, Vec<String>) {
    let until_before = match at {
        OriginalStart::Timed(t) => until_value(OriginalStart::Timed(t - Duration::seconds(1))),
        OriginalStart::AllDay(d) => until_value(OriginalStart::AllDay(d - Duration::days(1))),
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    for line in lines {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("RRULE:") {
            before.push(with_until(line, Some(&until_before)));
            let has_count = rule_parts(line).any(|(k, _)| k.eq_ignore_ascii_case("COUNT"));
            after.push(match (has_count, last) {
                (true, Some(last)) => with_until(line, Some(&until_value(last))),
                _ => line.clone(),
            });
        } else if upper.starts_with("EXDATE") || upper.starts_with("RDATE") {
            let (b, a) = partition_dates(line, at.instant(), list_tz);
            before.extend(b);
            after.extend(a);
        } else {
            before.push(line.clone());
            after.push(line.clone());
        }
    }
    (before, after)
}

/// An `UNTIL` value: `YYYYMMDDTHHMMSSZ`, or `YYYYMMDD` for all-day series.
fn until_value(at: OriginalStart) -> String {
    match at {
        OriginalStart::Timed(_) => at.suffix(),
        OriginalStart::AllDay(d) => d.format("%Y%m%d").to_string(),
    }
}

fn rule_parts(line: &str) -> impl Iterator<Item = (&str, &str)> {
    let body = line.split_once(':').map(|(_, b)| b).unwrap_or(line);
    body.split(';').filter_map(|p| p.split_once('='))
}

/// The RRULE line without `COUNT`/`UNTIL`, plus `UNTIL=until` when given.
fn with_until(line: &str, until: Option<&str>) -> String {
    let mut parts: Vec<String> = rule_parts(line)
        .filter(|(k, _)| !k.eq_ignore_ascii_case("COUNT") && !k.eq_ignore_ascii_case("UNTIL"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(until) = until {
        parts.push(format!("UNTIL={until}"));
    }
    format!("RRULE:{}", parts.join(";"))
}

/// Splits the values of an EXDATE/RDATE line into the lines before `at` and from `at` on
/// (each `None` when it would be empty).
fn partition_dates(line: &str, at: DateTime<Utc>, tz: Tz) -> (Option<String>, Option<String>) {
    let Some((head, values)) = line.split_once(':') else {
        return (Some(line.to_owned()), Some(line.to_owned()));
    };
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for value in values.split(',') {
        let when = parse_date_list(&format!("{head}:{value}"), tz).and_then(|d| d.first().copied());
        match when {
            Some(w) if w < at => before.push(value),
            _ => after.push(value),
        }
    }
    let line_of = |vs: Vec<&str>| (!vs.is_empty()).then(|| format!("{head}:{}", vs.join(",")));
    (line_of(before), line_of(after))
}

/// Body of the split control route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitRequest {
    /// The occurrence to split at: RFC 3339 instant, date, or instance id suffix.
    original_start: Option<String>,
    /// Patch applied to the new series (e.g. `{"summary": "…"}`).
    changes: Option<Map<String, Value>>,
}

fn control_error(status: u16, message: &str) -> Response {
    json_response(status, &json!({"error": message}))
}

/// `POST /_emulator/calendars/{calendarId}/events/{eventId}/split`
/// `{"original_start": "…", "changes": {…}?}` → `{master, series, exceptions_moved,
/// exceptions_dropped}`; watchers of the calendar are notified as for any change.
#[handler]
pub fn split(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let cal_id = decode_path(req.raw_path_param("calendar_id").unwrap_or_default());
    let event_id = decode_path(req.raw_path_param("event_id").unwrap_or_default());
    let request: SplitRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return control_error(400, &format!("invalid JSON body: {e}")),
    };
    let Some(at) = request.original_start.as_deref().and_then(OriginalStart::from_param) else {
        return control_error(
            400,
            "`original_start` (an RFC 3339 instant, a date or an instance id suffix) is required",
        );
    };
    let outcome = {
        let mut st = shared.state.lock();
        split_series(
            &mut st,
            &shared.base_url,
            &cal_id,
            &event_id,
            at,
            request.changes.as_ref(),
        )
    };
    match outcome {
        Ok(done) => {
            push::notify_change(shared, &cal_id);
            json_response(
                200,
                &json!({
                    "master": to_json(&done.master),
                    "series": to_json(&done.series),
                    "exceptions_moved": done.moved,
                    "exceptions_dropped": done.dropped,
                }),
            )
        }
        Err(e) => control_error(e.status(), &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[test]
    fn the_first_part_ends_just_before_the_split_and_a_count_becomes_an_until() {
        let at = OriginalStart::Timed(Utc.with_ymd_and_hms(2025, 3, 17, 8, 0, 0).unwrap());
        let last = OriginalStart::Timed(Utc.with_ymd_and_hms(2025, 5, 5, 7, 0, 0).unwrap());
        let lines = vec![
            "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO".to_owned(),
            "EXDATE;TZID=Europe/Berlin:20250310T090000,20250324T090000".to_owned(),
        ];
        let (before, after) = split_rules(&lines, at, Some(last), "Europe/Berlin".parse().unwrap());
        assert_eq!(
            before,
            vec![
                "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250317T075959Z",
                "EXDATE;TZID=Europe/Berlin:20250310T090000"
            ]
        );
        assert_eq!(
            after,
            vec![
                "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250505T070000Z",
                "EXDATE;TZID=Europe/Berlin:20250324T090000"
            ]
        );
    }

    #[test]
    fn an_all_day_series_ends_the_day_before_and_an_open_rule_stays_open() {
        let at = OriginalStart::AllDay(NaiveDate::from_ymd_opt(2025, 3, 17).unwrap());
        let (before, after) = split_rules(&["RRULE:FREQ=DAILY".to_owned()], at, None, Tz::UTC);
        assert_eq!(before, vec!["RRULE:FREQ=DAILY;UNTIL=20250316"]);
        assert_eq!(after, vec!["RRULE:FREQ=DAILY"]);
    }
}
