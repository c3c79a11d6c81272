//! RRULE expansion of recurring events into instances (`singleEvents=true`).

use super::errors::ApiError;
use super::model::{Event, EventDateTime};
use super::times::{event_tz, parse_moment, parse_tz, Moment};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};
use std::collections::HashSet;

/// Most instances produced per recurring event and listing.
pub const MAX_INSTANCES: u16 = 730;

/// Checks every recurrence line (RRULE must parse; EXRULE is not supported).
pub fn validate_recurrence(event: &Event) -> Result<(), ApiError> {
    let Some(lines) = &event.recurrence else {
        return Ok(());
    };
    let dtstart = rrule::Tz::UTC
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .ok_or_else(|| ApiError::invalid("Invalid recurrence rule."))?;
    for line in lines {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("RRULE:") {
            parse_rrule(line)
                .and_then(|r| r.validate(dtstart).ok())
                .ok_or_else(|| ApiError::invalid("Invalid recurrence rule."))?;
        } else if upper.starts_with("EXDATE") || upper.starts_with("RDATE") {
            parse_date_list(line, Tz::UTC).ok_or_else(|| ApiError::invalid("Invalid recurrence rule."))?;
        } else {
            return Err(ApiError::invalid("Invalid recurrence rule."));
        }
    }
    Ok(())
}

/// Parses an RRULE line, rewriting a floating or date-only `UNTIL` to UTC (the rrule
/// crate requires UTC when DTSTART has a zone).
fn parse_rrule(line: &str) -> Option<RRule<Unvalidated>> {
    let body = line.split_once(':').map(|(_, b)| b).unwrap_or(line);
    let parts: Vec<String> = body
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("UNTIL") && !v.ends_with('Z') => {
                if v.len() == 8 {
                    format!("UNTIL={v}T235959Z")
                } else {
                    format!("UNTIL={v}Z")
                }
            }
            _ => part.to_owned(),
        })
        .collect();
    format!("RRULE:{}", parts.join(";")).parse().ok()
}

/// Parses the values of an EXDATE/RDATE line into instants (dates become midnight in `tz`).
pub fn parse_date_list(line: &str, tz: Tz) -> Option<Vec<DateTime<Utc>>> {
    let (head, values) = line.split_once(':')?;
    let zone = head
        .split(';')
        .find_map(|p| p.strip_prefix("TZID="))
        .map(parse_tz)
        .unwrap_or(Some(tz))?;
    values
        .split(',')
        .map(|v| {
            let v = v.trim();
            if let Some(utc) = v.strip_suffix('Z') {
                NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
                    .ok()
                    .map(|n| Utc.from_utc_datetime(&n))
            } else if v.len() == 8 {
                let d = NaiveDate::parse_from_str(v, "%Y%m%d").ok()?;
                zone.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()
                    .map(|x| x.with_timezone(&Utc))
            } else {
                let n = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()?;
                zone.from_local_datetime(&n).earliest().map(|x| x.with_timezone(&Utc))
            }
        })
        .collect()
}

/// Expands a recurring event into its instances whose span may overlap
/// `[window_start, window_end)`. Non-recurring events yield nothing.
pub fn expand(
    master: &Event,
    calendar_tz: &str,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
) -> Vec<Event> {
    let Some(lines) = master.recurrence.as_ref().filter(|r| !r.is_empty()) else {
        return Vec::new();
    };
    let (Some(start), Some(end)) = (&master.start, &master.end) else {
        return Vec::new();
    };
    let (Ok(s), Ok(e)) = (parse_moment(start, "start"), parse_moment(end, "end")) else {
        return Vec::new();
    };
    let tz = event_tz(master, calendar_tz);
    let all_day = matches!(s, Moment::Date(_));
    let (first, duration) = match (s, e) {
        (Moment::Instant(a), Moment::Instant(b)) => (a.with_timezone(&tz), b - a),
        (Moment::Date(a), Moment::Date(b)) => {
            let midnight = a.and_hms_opt(0, 0, 0).unwrap_or_default();
            (Tz::UTC.from_utc_datetime(&midnight), b - a)
        }
        _ => return Vec::new(),
    };
    let rrule_tz = if all_day { rrule::Tz::UTC } else { rrule::Tz::Tz(tz) };
    let dtstart = first.with_timezone(&rrule_tz);
    let mut set = RRuleSet::new(dtstart);
    let mut exdates: HashSet<DateTime<Utc>> = HashSet::new();
    let mut rdates: Vec<DateTime<Utc>> = Vec::new();
    let list_tz = if all_day { Tz::UTC } else { tz };
    for line in lines {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("RRULE:") {
            if let Some(rule) = parse_rrule(line).and_then(|r| r.validate(dtstart).ok()) {
                set = set.rrule(rule);
            }
        } else if upper.starts_with("EXDATE") {
            exdates.extend(parse_date_list(line, list_tz).unwrap_or_default());
        } else if upper.starts_with("RDATE") {
            rdates.extend(parse_date_list(line, list_tz).unwrap_or_default());
        }
    }
    if let Some(from) = window_start {
        set = set.after((from - duration - Duration::seconds(1)).with_timezone(&rrule_tz));
    }
    if let Some(to) = window_end {
        set = set.before(to.with_timezone(&rrule_tz));
    }
    let mut starts: Vec<DateTime<Utc>> = set
        .all(MAX_INSTANCES)
        .dates
        .into_iter()
        .map(|d| d.with_timezone(&Utc))
        .collect();
    starts.extend(rdates);
    starts.sort();
    starts.dedup();
    starts
        .into_iter()
        .filter(|s| !exdates.contains(s))
        .take(MAX_INSTANCES as usize)
        .map(|at| instance(master, at, duration, all_day, tz))
        .collect()
}

fn instance(master: &Event, at: DateTime<Utc>, duration: Duration, all_day: bool, tz: Tz) -> Event {
    let mut ev = master.clone();
    let (id_suffix, start, end) = if all_day {
        let date = at.date_naive();
        (
            date.format("%Y%m%d").to_string(),
            EventDateTime {
                date: Some(date.format("%Y-%m-%d").to_string()),
                ..EventDateTime::default()
            },
            EventDateTime {
                date: Some((date + duration).format("%Y-%m-%d").to_string()),
                ..EventDateTime::default()
            },
        )
    } else {
        let zone = master.start.as_ref().and_then(|s| s.time_zone.clone());
        let fmt = |d: DateTime<Utc>| d.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, true);
        (
            at.format("%Y%m%dT%H%M%SZ").to_string(),
            EventDateTime {
                date_time: Some(fmt(at)),
                time_zone: zone.clone(),
                ..EventDateTime::default()
            },
            EventDateTime {
                date_time: Some(fmt(at + duration)),
                time_zone: master.end.as_ref().and_then(|e| e.time_zone.clone()).or(zone),
                ..EventDateTime::default()
            },
        )
    };
    ev.id = format!("{}_{}", master.id, id_suffix);
    ev.recurrence = None;
    ev.recurring_event_id = Some(master.id.clone());
    ev.original_start_time = Some(start.clone());
    ev.start = Some(start);
    ev.end = Some(end);
    ev
}
