//! Event times: parsing `start`/`end`, validating them, and mapping them to instants.

use super::errors::ApiError;
use super::model::{Event, EventDateTime};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed `start` or `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// All-day date.
    Date(NaiveDate),
    /// An instant.
    Instant(DateTime<Utc>),
}

/// Parses an IANA zone name.
pub fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Parses an RFC 3339 timestamp (query parameters such as `timeMin`).
pub fn parse_rfc3339(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|d| d.with_timezone(&Utc))
}

/// Parses one `EventDateTime`; `which` is `start` or `end` (for messages).
pub fn parse_moment(dt: &EventDateTime, which: &str) -> Result<Moment, ApiError> {
    if let Some(zone) = &dt.time_zone {
        if parse_tz(zone).is_none() {
            return Err(ApiError::invalid(&format!(
                "Invalid time zone definition for {which} time."
            )));
        }
    }
    match (&dt.date, &dt.date_time) {
        (Some(date), None) => NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map(Moment::Date)
            .map_err(|_| ApiError::invalid(&format!("Invalid {which} time."))),
        (None, Some(date_time)) => {
            if let Some(instant) = parse_rfc3339(date_time) {
                return Ok(Moment::Instant(instant));
            }
            // Without an offset the time is local to `timeZone`, which is then required.
            let naive = NaiveDateTime::parse_from_str(date_time, "%Y-%m-%dT%H:%M:%S")
                .map_err(|_| ApiError::invalid(&format!("Invalid {which} time.")))?;
            let tz = dt
                .time_zone
                .as_deref()
                .and_then(parse_tz)
                .ok_or_else(|| ApiError::required(&format!("Missing time zone definition for {which} time.")))?;
            tz.from_local_datetime(&naive)
                .earliest()
                .map(|d| Moment::Instant(d.with_timezone(&Utc)))
                .ok_or_else(|| ApiError::invalid(&format!("Invalid {which} time.")))
        }
        (None, None) => Err(ApiError::required(&format!("Missing {which} time."))),
        (Some(_), Some(_)) => Err(ApiError::invalid(&format!("Invalid {which} time."))),
    }
}

/// Maps a moment to an instant; dates start at midnight in `tz`.
pub fn to_instant(moment: Moment, tz: Tz) -> DateTime<Utc> {
    match moment {
        Moment::Instant(i) => i,
        Moment::Date(d) => tz
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|x| x.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())),
    }
}

/// The zone an event's times are interpreted in: its start's `timeZone`, else the
/// calendar's.
pub fn event_tz(event: &Event, calendar_tz: &str) -> Tz {
    event
        .start
        .as_ref()
        .and_then(|s| s.time_zone.as_deref())
        .and_then(parse_tz)
        .or_else(|| parse_tz(calendar_tz))
        .unwrap_or(Tz::UTC)
}

/// Validates `start`/`end` (and that recurring events name a zone); returns the span.
pub fn validate_times(event: &Event) -> Result<(Moment, Moment), ApiError> {
    let start = event
        .start
        .as_ref()
        .ok_or_else(|| ApiError::required("Missing start time."))?;
    let end = event
        .end
        .as_ref()
        .ok_or_else(|| ApiError::required("Missing end time."))?;
    let s = parse_moment(start, "start")?;
    let e = parse_moment(end, "end")?;
    match (s, e) {
        (Moment::Date(a), Moment::Date(b)) if b <= a => return Err(ApiError::time_range_empty("end")),
        (Moment::Instant(a), Moment::Instant(b)) if b < a => return Err(ApiError::time_range_empty("end")),
        (Moment::Date(_), Moment::Instant(_)) | (Moment::Instant(_), Moment::Date(_)) => {
            return Err(ApiError::invalid(
                "Start and end times must either both be date or both be dateTime.",
            ))
        }
        _ => {}
    }
    let recurring = event.recurrence.as_ref().is_some_and(|r| !r.is_empty());
    if recurring && matches!(s, Moment::Instant(_)) && start.time_zone.is_none() {
        return Err(ApiError::required("Missing time zone definition for start time."));
    }
    Ok((s, e))
}

/// The event's span as instants, or `None` when its times do not parse.
pub fn event_span(event: &Event, calendar_tz: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let tz = event_tz(event, calendar_tz);
    let s = parse_moment(event.start.as_ref()?, "start").ok()?;
    let e = parse_moment(event.end.as_ref()?, "end").ok()?;
    Some((to_instant(s, tz), to_instant(e, tz)))
}

/// Whether a span overlaps the list window (`timeMin` bounds the end, `timeMax` the
/// start, both exclusive).
pub fn overlaps(
    span: (DateTime<Utc>, DateTime<Utc>),
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
) -> bool {
    let (start, end) = span;
    // A zero-length event at exactly timeMin still counts as inside the window.
    let after_min = time_min.is_none_or(|min| end > min || (end == start && start >= min));
    let before_max = time_max.is_none_or(|max| start < max);
    after_min && before_max
}
