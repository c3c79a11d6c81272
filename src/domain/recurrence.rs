//! Recurring slots: the RFC 5545 lines a slot may carry (as Google Calendar uses them),
//! their validation, and the expansion of a series into occurrences. Pure: the API, the
//! push and the pull all expand through here.
//!
//! A series is a slot plus `recurrence` lines — `RRULE:`, `EXDATE:` and `RDATE:` (with an
//! optional `;TZID=…` or `;VALUE=DATE` parameter), never `DTSTART`: the slot's own start
//! is the first occurrence. Timed series expand in the slot's IANA zone, so 09:00
//! Europe/Berlin stays 09:00 local across the DST changes (the UTC instant moves); all-day
//! series expand by date. An occurrence is known for ever by its *original start*
//! ([`OccurrenceKey`]), which is also the suffix of Google's instance id.
//!
//! Limits (documented in `docs/recurrence.md`): at most [`MAX_LINES`] lines of at most
//! [`MAX_LINE_CHARS`] characters; no `SECONDLY`, `MINUTELY` or `HOURLY` rule; `EXRULE` is
//! not accepted (deprecated by RFC 5545, not written by Google); one expansion answers at
//! most [`MAX_OCCURRENCES`] occurrences over a window of at most [`MAX_WINDOW_DAYS`] days,
//! and stops after scanning [`MAX_SCANNED`] candidate dates.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, RRuleSet, Unvalidated};

use super::slot::{local_midnight, SlotDraft, SlotTiming, ValidationError};

/// Most recurrence lines on one slot.
pub const MAX_LINES: usize = 10;
/// Longest recurrence line, in characters.
pub const MAX_LINE_CHARS: usize = 1000;
/// Most occurrences one expansion answers.
pub const MAX_OCCURRENCES: usize = 1000;
/// Longest window one expansion covers (five years).
pub const MAX_WINDOW_DAYS: i64 = 5 * 366;
/// Most dates of a rule one expansion looks at (from the first occurrence on) before it
/// stops and says more may follow.
pub const MAX_SCANNED: usize = u16::MAX as usize;

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: "recurrence",
        message: message.into(),
    }
}

/// A date in an `EXDATE` or `RDATE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateValue {
    /// `…Z`: an instant.
    Utc(DateTime<Utc>),
    /// A local date-time, in the line's `TZID` (or the slot's zone when it names none).
    Local(NaiveDateTime, Option<Tz>),
    /// `VALUE=DATE` (or 8 digits): a whole day.
    Date(NaiveDate),
}

impl DateValue {
    fn instant(self, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            DateValue::Utc(t) => Some(t),
            DateValue::Local(n, tz) => tz
                .unwrap_or(zone)
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
            DateValue::Date(d) => Some(local_midnight(zone, d)),
        }
    }

    fn date(self, zone: Tz) -> NaiveDate {
        match self {
            DateValue::Date(d) => d,
            DateValue::Local(n, _) => n.date(),
            DateValue::Utc(t) => t.with_timezone(&zone).date_naive(),
        }
    }
}

/// Validated recurrence lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrence {
    lines: Vec<String>,
    rules: Vec<RRule<Unvalidated>>,
    exdates: Vec<DateValue>,
    rdates: Vec<DateValue>,
}

impl Recurrence {
    /// Parses and checks `lines`; the first problem is reported, naming the line.
    pub fn parse(lines: &[String]) -> Result<Self, ValidationError> {
        if lines.len() > MAX_LINES {
            return Err(invalid(format!(
                "has {} lines; at most {MAX_LINES} are allowed",
                lines.len()
            )));
        }
        let mut parsed = Recurrence {
            lines: lines.to_vec(),
            rules: Vec::new(),
            exdates: Vec::new(),
            rdates: Vec::new(),
        };
        for (i, line) in lines.iter().enumerate() {
            let at = |why: String| invalid(format!("line {} (`{}`): {why}", i + 1, shorten(line)));
            if line.chars().count() > MAX_LINE_CHARS {
                return Err(at(format!("is longer than {MAX_LINE_CHARS} characters")));
            }
            let (head, value) = line
                .split_once(':')
                .ok_or_else(|| at("expected `NAME:value`, e.g. `RRULE:FREQ=WEEKLY`".into()))?;
            let mut params = head.split(';');
            let name = params.next().unwrap_or_default().to_ascii_uppercase();
            match name.as_str() {
                "RRULE" => parsed.rules.push(parse_rule(value).map_err(at)?),
                "EXDATE" => parsed.exdates.extend(parse_dates(params, value).map_err(at)?),
                "RDATE" => parsed.rdates.extend(parse_dates(params, value).map_err(at)?),
                "DTSTART" => {
                    return Err(at(
                        "DTSTART is not allowed: the slot's start is the first occurrence".into()
                    ))
                }
                "EXRULE" => return Err(at("EXRULE is not supported (use RRULE and EXDATE)".into())),
                _ => return Err(at("only RRULE, EXDATE and RDATE lines are allowed".into())),
            }
        }
        if parsed.rules.is_empty() && !lines.is_empty() && parsed.rdates.is_empty() {
            return Err(invalid("needs an RRULE or RDATE line (EXDATE alone repeats nothing)"));
        }
        Ok(parsed)
    }

    /// The lines as given.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Whether the slot repeats at all.
    pub fn repeats(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Checks that the lines make a series starting with `draft` (an `UNTIL` before the
    /// first occurrence, a `BYHOUR` on an all-day series… are refused).
    pub fn check_with(&self, draft: &SlotDraft) -> Result<(), ValidationError> {
        let start = dt_start(draft);
        for rule in &self.rules {
            rule.clone()
                .validate(start)
                .map_err(|e| invalid(format!("the rule does not fit the slot's start: {e}")))?;
        }
        Ok(())
    }

    /// The occurrences of the series starting with `draft` that overlap `window`, in the
    /// order of their original starts (see [`Window`] for the limits).
    pub fn expand(&self, draft: &SlotDraft, window: &Window) -> Expansion {
        let length = draft.end_at() - draft.start_at();
        let days = match draft.timing {
            SlotTiming::AllDay { start_date, end_date } => (end_date - start_date).num_days(),
            SlotTiming::Timed { .. } => 0,
        };
        let limit = window.limit.clamp(1, MAX_OCCURRENCES);
        let mut out = Expansion::default();
        for key in self.keys(draft, window.to, &mut out.more) {
            if window.after.is_some_and(|a| key <= a) {
                continue;
            }
            let timing = key.timing(length, days);
            let occurrence = Occurrence { key, timing };
            let (start, end) = occurrence.span(draft.timezone);
            if start >= window.to {
                break;
            }
            if end <= window.from {
                continue;
            }
            if out.occurrences.len() == limit {
                out.more = true;
                break;
            }
            out.occurrences.push(occurrence);
        }
        out
    }

    /// Whether `key` is an occurrence of the series starting with `draft`.
    pub fn contains(&self, draft: &SlotDraft, key: OccurrenceKey) -> bool {
        let at = key.instant(draft.timezone);
        let window = Window {
            from: at - Duration::seconds(1),
            to: at + Duration::seconds(1),
            after: None,
            limit: MAX_OCCURRENCES,
        };
        let mut more = false;
        self.keys(draft, window.to, &mut more).contains(&key)
    }

    /// Original starts in order, before `until` (an occurrence starting later cannot
    /// overlap a window ending there); `more` is set when the scan limit stopped it.
    fn keys(&self, draft: &SlotDraft, until: DateTime<Utc>, more: &mut bool) -> Vec<OccurrenceKey> {
        let zone = draft.timezone;
        let all_day = draft.all_day();
        let first = OccurrenceKey::of(draft);
        // RDATEs and the first occurrence, merged with the rules' dates below.
        let mut extra: BTreeSet<OccurrenceKey> = self
            .rdates
            .iter()
            .filter_map(|d| OccurrenceKey::from_value(*d, zone, all_day))
            .collect();
        extra.insert(first);
        let excluded: BTreeSet<OccurrenceKey> = self
            .exdates
            .iter()
            .filter_map(|d| OccurrenceKey::from_value(*d, zone, all_day))
            .collect();
        let excluded_days: BTreeSet<NaiveDate> = self
            .exdates
            .iter()
            .filter(|d| matches!(d, DateValue::Date(_)))
            .map(|d| d.date(zone))
            .collect();
        let start = dt_start(draft);
        let mut set: Option<RRuleSet> = None;
        for rule in &self.rules {
            if let Ok(valid) = rule.clone().validate(start) {
                set = Some(match set {
                    None => RRuleSet::new(start).rrule(valid),
                    Some(s) => s.rrule(valid),
                });
            }
        }
        // The rules' dates up to `until` (with a margin: all-day dates are compared
        // below at local midnight).
        let ruled: Vec<OccurrenceKey> = match set {
            None => Vec::new(),
            Some(set) => {
                let bound = until + Duration::days(2);
                let result = set.before(bound.with_timezone(&start.timezone())).all(u16::MAX);
                if result.dates.len() >= MAX_SCANNED {
                    *more = true;
                }
                result
                    .dates
                    .into_iter()
                    .map(|t| OccurrenceKey::from_rule(t.with_timezone(&Utc), all_day))
                    .collect()
            }
        };
        merge(ruled.into_iter(), extra.into_iter())
            .filter(|k| *k >= first)
            .take_while(|k| k.instant(zone) < until)
            .filter(|k| !excluded.contains(k) && !excluded_days.contains(&k.local_date(zone)))
            .collect()
    }
}

/// Merges two ascending streams without duplicates.
fn merge(
    a: impl Iterator<Item = OccurrenceKey>,
    b: impl Iterator<Item = OccurrenceKey>,
) -> impl Iterator<Item = OccurrenceKey> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    std::iter::from_fn(move || {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if x > y => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        next
    })
}

/// The rrule crate's DTSTART for a series: the start in the slot's zone (timed), or the
/// first day's midnight in UTC (all-day: only the date matters).
fn dt_start(draft: &SlotDraft) -> DateTime<rrule::Tz> {
    let zone = rrule::Tz::Tz(draft.timezone);
    match draft.timing {
        SlotTiming::Timed { start, .. } => start.with_timezone(&zone),
        SlotTiming::AllDay { start_date, .. } => {
            rrule::Tz::UTC.from_utc_datetime(&start_date.and_hms_opt(0, 0, 0).expect("midnight exists"))
        }
    }
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= 60 {
        line.to_owned()
    } else {
        format!("{}…", line.chars().take(60).collect::<String>())
    }
}

/// Parses an RRULE value; `UNTIL` without `Z` (floating or a date) is read as UTC, as the
/// rrule crate requires for zoned starts.
fn parse_rule(value: &str) -> Result<RRule<Unvalidated>, String> {
    let parts: Vec<String> = value
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
    let rule: RRule<Unvalidated> = format!("RRULE:{}", parts.join(";"))
        .parse()
        .map_err(|e: rrule::RRuleError| format!("not a valid RRULE: {e}"))?;
    match rule.get_freq() {
        Frequency::Secondly | Frequency::Minutely | Frequency::Hourly => Err(format!(
            "FREQ={} is not supported; the shortest period is DAILY",
            rule.get_freq()
        )),
        _ => Ok(rule),
    }
}

/// Parses the comma-separated values of an EXDATE or RDATE line with its parameters.
fn parse_dates<'a>(params: impl Iterator<Item = &'a str>, value: &str) -> Result<Vec<DateValue>, String> {
    let mut zone: Option<Tz> = None;
    let mut dates = false;
    for p in params {
        match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("TZID") => {
                zone = Some(v.parse().map_err(|_| format!("`{v}` is not an IANA time zone"))?);
            }
            Some((k, v)) if k.eq_ignore_ascii_case("VALUE") => match v.to_ascii_uppercase().as_str() {
                "DATE" => dates = true,
                "DATE-TIME" => {}
                _ => return Err(format!("VALUE={v} is not supported (DATE or DATE-TIME)")),
            },
            _ => return Err(format!("unknown parameter `{p}`")),
        }
    }
    value
        .split(',')
        .map(|v| {
            let v = v.trim();
            let bad = || format!("`{v}` is not a date (yyyymmdd) or date-time (yyyymmddThhmmss[Z])");
            if v.len() == 8 {
                return NaiveDate::parse_from_str(v, "%Y%m%d")
                    .map(DateValue::Date)
                    .map_err(|_| bad());
            }
            if dates {
                return Err(format!("`{v}` is not a date (yyyymmdd) as VALUE=DATE requires"));
            }
            if let Some(utc) = v.strip_suffix('Z') {
                return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
                    .map(|n| DateValue::Utc(Utc.from_utc_datetime(&n)))
                    .map_err(|_| bad());
            }
            NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
                .map(|n| DateValue::Local(n, zone))
                .map_err(|_| bad())
        })
        .collect()
}

/// What part of a series an expansion covers.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Occurrences ending after this instant…
    pub from: DateTime<Utc>,
    /// …and starting before this one.
    pub to: DateTime<Utc>,
    /// Only occurrences whose original start is after this one (paging).
    pub after: Option<OccurrenceKey>,
    /// At most this many (capped at [`MAX_OCCURRENCES`]).
    pub limit: usize,
}

impl Window {
    /// A window `[from, to)`, refused when it is empty or longer than [`MAX_WINDOW_DAYS`].
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Self, ValidationError> {
        if to <= from {
            return Err(ValidationError {
                field: "to",
                message: "must be after `from`".into(),
            });
        }
        if to - from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(ValidationError {
                field: "to",
                message: format!("the window spans at most {MAX_WINDOW_DAYS} days"),
            });
        }
        Ok(Self {
            from,
            to,
            after: None,
            limit,
        })
    }
}

/// The occurrences an expansion found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expansion {
    /// In the order of their original starts.
    pub occurrences: Vec<Occurrence>,
    /// More occurrences follow in the window (the limit, or the scan limit, stopped it).
    pub more: bool,
}

/// One occurrence as the rule places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Its original start: its identity.
    pub key: OccurrenceKey,
    /// When it happens.
    pub timing: SlotTiming,
}

impl Occurrence {
    /// Its start and end instants (all-day: local midnights in `zone`).
    pub fn span(&self, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        timing_span(&self.timing, zone)
    }
}

/// The instants a timing covers in `zone`.
pub fn timing_span(timing: &SlotTiming, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    match *timing {
        SlotTiming::Timed { start, end } => (start, end),
        SlotTiming::AllDay { start_date, end_date } => {
            (local_midnight(zone, start_date), local_midnight(zone, end_date))
        }
    }
}

/// The original start of an occurrence, which names it for ever (moving it does not
/// rename it). Its basic form is the suffix of Google's instance id:
/// `20260302T080000Z` (timed, UTC) or `20260302` (all-day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OccurrenceKey {
    /// A timed occurrence's original start instant.
    Timed(DateTime<Utc>),
    /// An all-day occurrence's original first day.
    AllDay(NaiveDate),
}

impl OccurrenceKey {
    /// The key of a slot's own (first) occurrence.
    pub fn of(draft: &SlotDraft) -> Self {
        match draft.timing {
            SlotTiming::Timed { start, .. } => OccurrenceKey::Timed(start),
            SlotTiming::AllDay { start_date, .. } => OccurrenceKey::AllDay(start_date),
        }
    }

    fn from_rule(t: DateTime<Utc>, all_day: bool) -> Self {
        if all_day {
            OccurrenceKey::AllDay(t.date_naive())
        } else {
            OccurrenceKey::Timed(t)
        }
    }

    fn from_value(v: DateValue, zone: Tz, all_day: bool) -> Option<Self> {
        if all_day {
            Some(OccurrenceKey::AllDay(v.date(zone)))
        } else if matches!(v, DateValue::Date(_)) {
            // A whole-day EXDATE on a timed series matches by local date (below).
            None
        } else {
            v.instant(zone).map(OccurrenceKey::Timed)
        }
    }

    /// The basic form (Google's instance id suffix, and the stored key).
    pub fn basic(&self) -> String {
        match self {
            OccurrenceKey::Timed(t) => t.format("%Y%m%dT%H%M%SZ").to_string(),
            OccurrenceKey::AllDay(d) => d.format("%Y%m%d").to_string(),
        }
    }

    /// Reads the basic form back.
    pub fn from_basic(s: &str) -> Option<Self> {
        if s.len() == 8 {
            return NaiveDate::parse_from_str(s, "%Y%m%d").ok().map(OccurrenceKey::AllDay);
        }
        let utc = s.strip_suffix('Z')?;
        NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .ok()
            .map(|n| OccurrenceKey::Timed(Utc.from_utc_datetime(&n)))
    }

    /// Reads a key as a client sends it: RFC 3339 (any offset) or the basic form for a
    /// timed series; `yyyy-mm-dd` or `yyyymmdd` for an all-day series.
    pub fn parse(s: &str, all_day: bool) -> Option<Self> {
        if all_day {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(OccurrenceKey::AllDay)
                .or_else(|| Self::from_basic(s).filter(|k| matches!(k, OccurrenceKey::AllDay(_))));
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| OccurrenceKey::Timed(t.with_timezone(&Utc)))
            .or_else(|| Self::from_basic(s).filter(|k| matches!(k, OccurrenceKey::Timed(_))))
    }

    /// How the API shows it: RFC 3339 in `zone` (timed), `yyyy-mm-dd` (all-day).
    pub fn display(&self, zone: Tz) -> String {
        match self {
            OccurrenceKey::Timed(t) => t.with_timezone(&zone).to_rfc3339(),
            OccurrenceKey::AllDay(d) => d.to_string(),
        }
    }

    /// The original start instant (all-day: local midnight in `zone`).
    pub fn instant(&self, zone: Tz) -> DateTime<Utc> {
        match *self {
            OccurrenceKey::Timed(t) => t,
            OccurrenceKey::AllDay(d) => local_midnight(zone, d),
        }
    }

    fn local_date(&self, zone: Tz) -> NaiveDate {
        match *self {
            OccurrenceKey::Timed(t) => t.with_timezone(&zone).date_naive(),
            OccurrenceKey::AllDay(d) => d,
        }
    }

    /// The timing an occurrence starting here has: the slot's length (timed), or its
    /// number of days (all-day).
    fn timing(&self, length: Duration, days: i64) -> SlotTiming {
        match *self {
            OccurrenceKey::Timed(start) => SlotTiming::Timed {
                start,
                end: start + length,
            },
            OccurrenceKey::AllDay(d) => SlotTiming::AllDay {
                start_date: d,
                end_date: d + Duration::days(days),
            },
        }
    }

    /// Google's id of this occurrence of the series `event_id`.
    pub fn instance_id(&self, event_id: &str) -> String {
        format!("{event_id}_{}", self.basic())
    }
}

/// The series a "this and following" split in Google cut `event_id` from: Google names
/// the new series `<eventId>_R<yyyymmdd>[Thhmmss[Z]]`.
pub fn split_parent(event_id: &str) -> Option<&str> {
    let (parent, suffix) = event_id.rsplit_once("_R")?;
    let suffix = suffix.strip_suffix('Z').unwrap_or(suffix);
    let well_formed = match suffix.len() {
        8 => suffix.chars().all(|c| c.is_ascii_digit()),
        15 => {
            let (date, time) = suffix.split_at(8);
            date.chars().all(|c| c.is_ascii_digit())
                && time.starts_with('T')
                && time[1..].chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    (well_formed && !parent.is_empty()).then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SlotFields;

    fn lines(ls: &[&str]) -> Vec<String> {
        ls.iter().map(|s| s.to_string()).collect()
    }

    fn timed(zone: &str, start: &str, end: &str) -> SlotDraft {
        SlotDraft::validate(SlotFields {
            title: Some("Office hours".into()),
            start: Some(start.parse().unwrap()),
            end: Some(end.parse().unwrap()),
            timezone: Some(zone.into()),
            ..Default::default()
        })
        .unwrap()
    }

    fn all_day(zone: &str, start: &str, end: &str) -> SlotDraft {
        SlotDraft::validate(SlotFields {
            title: Some("Holiday".into()),
            all_day: Some(true),
            start_date: Some(start.parse().unwrap()),
            end_date: Some(end.parse().unwrap()),
            timezone: Some(zone.into()),
            ..Default::default()
        })
        .unwrap()
    }

    fn window(from: &str, to: &str) -> Window {
        Window::new(from.parse().unwrap(), to.parse().unwrap(), MAX_OCCURRENCES).unwrap()
    }

    fn local_starts(draft: &SlotDraft, rec: &[&str], from: &str, to: &str) -> Vec<String> {
        Recurrence::parse(&lines(rec))
            .unwrap()
            .expand(draft, &window(from, to))
            .occurrences
            .iter()
            .map(|o| o.key.display(draft.timezone))
            .collect()
    }

    #[test]
    fn a_weekly_berlin_series_stays_at_nine_local_across_both_dst_changes() {
        let d = timed(
            "Europe/Berlin",
            "2026-03-16T09:00:00+01:00",
            "2026-03-16T10:00:00+01:00",
        );
        let rec = Recurrence::parse(&lines(&["RRULE:FREQ=WEEKLY;BYDAY=MO"])).unwrap();
        let all = rec
            .expand(&d, &window("2026-03-01T00:00:00Z", "2026-11-10T00:00:00Z"))
            .occurrences;
        assert_eq!(all.len(), 35);
        for o in &all {
            let (start, end) = o.span(d.timezone);
            let local = start.with_timezone(&d.timezone);
            assert_eq!(local.format("%H:%M %a").to_string(), "09:00 Mon", "{local}");
            assert_eq!(end - start, Duration::hours(1));
        }
        // Before and after the March change (29 March), and after October's (25 October).
        assert_eq!(all[1].key.basic(), "20260323T080000Z");
        assert_eq!(all[2].key.basic(), "20260330T070000Z");
        assert_eq!(all[32].key.basic(), "20261026T080000Z");
        assert_eq!(all[1].key.instance_id("abc"), "abc_20260323T080000Z");
    }

    #[test]
    fn kiritimati_and_st_johns_expand_in_their_own_zone() {
        let d = timed(
            "Pacific/Kiritimati",
            "2026-12-31T08:00:00+14:00",
            "2026-12-31T09:00:00+14:00",
        );
        let got = local_starts(
            &d,
            &["RRULE:FREQ=DAILY;COUNT=3"],
            "2026-12-01T00:00:00Z",
            "2027-02-01T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-12-31T08:00:00+14:00",
                "2027-01-01T08:00:00+14:00",
                "2027-01-02T08:00:00+14:00"
            ]
        );
        // St John's: -03:30 in winter, -02:30 from 8 March 2026.
        let d = timed(
            "America/St_Johns",
            "2026-03-01T09:30:00-03:30",
            "2026-03-01T10:00:00-03:30",
        );
        let got = local_starts(
            &d,
            &["RRULE:FREQ=WEEKLY;COUNT=3"],
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-03-01T09:30:00-03:30",
                "2026-03-08T09:30:00-02:30",
                "2026-03-15T09:30:00-02:30"
            ]
        );
    }

    #[test]
    fn an_all_day_series_expands_by_date_in_any_zone() {
        for zone in ["Pacific/Kiritimati", "America/St_Johns", "UTC"] {
            let d = all_day(zone, "2026-12-24", "2026-12-26");
            let rec = Recurrence::parse(&lines(&["RRULE:FREQ=YEARLY;COUNT=3", "EXDATE;VALUE=DATE:20271224"])).unwrap();
            let got = rec.expand(&d, &window("2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"));
            let keys: Vec<String> = got.occurrences.iter().map(|o| o.key.basic()).collect();
            assert_eq!(keys, ["20261224", "20281224"], "{zone}");
            assert_eq!(
                got.occurrences[1].timing,
                SlotTiming::AllDay {
                    start_date: "2028-12-24".parse().unwrap(),
                    end_date: "2028-12-26".parse().unwrap()
                }
            );
        }
    }

    #[test]
    fn exdates_in_every_spelling_remove_occurrences_and_rdates_add_them() {
        let d = timed(
            "Europe/Berlin",
            "2026-11-02T09:00:00+01:00",
            "2026-11-02T10:00:00+01:00",
        );
        let got = local_starts(
            &d,
            &[
                "RRULE:FREQ=DAILY;COUNT=6",
                "EXDATE:20261103T080000Z",
                "EXDATE;TZID=Europe/Berlin:20261104T090000,20261105T090000",
                "EXDATE;VALUE=DATE:20261106",
                "RDATE:20261120T120000Z",
            ],
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        );
        assert_eq!(
            got,
            [
                "2026-11-02T09:00:00+01:00",
                "2026-11-07T09:00:00+01:00",
                "2026-11-20T13:00:00+01:00"
            ]
        );
    }

    #[test]
    fn the_window_overlap_paging_and_limit_hold() {
        let d = timed("UTC", "2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z");
        let rec = Recurrence::parse(&lines(&["RRULE:FREQ=DAILY"])).unwrap();
        // An occurrence that started before `from` but ends after it overlaps.
        let w = window("2026-01-10T09:30:00Z", "2026-01-13T00:00:00Z");
        let got = rec.expand(&d, &w);
        assert_eq!(got.occurrences.len(), 3);
        assert!(!got.more);
        let page = rec.expand(&d, &Window { limit: 2, ..w });
        assert_eq!(page.occurrences.len(), 2);
        assert!(page.more);
        let rest = rec.expand(
            &d,
            &Window {
                after: Some(page.occurrences[1].key),
                ..w
            },
        );
        assert_eq!(rest.occurrences.len(), 1);
        assert!(rec.contains(&d, OccurrenceKey::from_basic("20260305T090000Z").unwrap()));
        assert!(!rec.contains(&d, OccurrenceKey::from_basic("20260305T100000Z").unwrap()));
        assert!(!rec.contains(&d, OccurrenceKey::from_basic("20251231T090000Z").unwrap()));
    }

    #[test]
    fn until_ends_a_series_and_a_far_window_is_still_found() {
        let d = timed("UTC", "2020-01-01T09:00:00Z", "2020-01-01T10:00:00Z");
        let got = local_starts(
            &d,
            &["RRULE:FREQ=DAILY"],
            "2045-06-01T00:00:00Z",
            "2045-06-03T00:00:00Z",
        );
        assert_eq!(got.len(), 2);
        let got = local_starts(
            &d,
            &["RRULE:FREQ=WEEKLY;UNTIL=20200115T090000Z"],
            "2019-01-01T00:00:00Z",
            "2021-01-01T00:00:00Z",
        );
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn bad_lines_are_refused_naming_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&["RRULE:FREQ=HOURLY"], "FREQ=HOURLY is not supported"),
            (&["RRULE:FREQ=MINUTELY"], "not supported"),
            (&["RRULE:FREQ=FORTNIGHTLY"], "not a valid RRULE"),
            (
                &["DTSTART:20260101T090000Z", "RRULE:FREQ=DAILY"],
                "DTSTART is not allowed",
            ),
            (&["EXRULE:FREQ=DAILY"], "EXRULE is not supported"),
            (&["FREQ=DAILY"], "expected `NAME:value`"),
            (&["X-FOO:bar"], "only RRULE, EXDATE and RDATE"),
            (&["RRULE:FREQ=DAILY", "EXDATE:2026-01-01"], "is not a date"),
            (
                &["RRULE:FREQ=DAILY", "EXDATE;TZID=Mars/Olympus:20260101T090000"],
                "not an IANA time zone",
            ),
            (&["EXDATE:20260101T090000Z"], "needs an RRULE or RDATE"),
        ];
        for (ls, want) in cases {
            let err = Recurrence::parse(&lines(ls)).unwrap_err();
            assert_eq!(err.field, "recurrence");
            assert!(err.message.contains(want), "{ls:?} → {}", err.message);
        }
        let many = vec!["RRULE:FREQ=DAILY".to_string(); MAX_LINES + 1];
        assert!(Recurrence::parse(&many).unwrap_err().message.contains("at most 10"));
        let d = timed("UTC", "2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z");
        let before = Recurrence::parse(&lines(&["RRULE:FREQ=DAILY;UNTIL=20251201T000000Z"])).unwrap();
        assert!(before.check_with(&d).is_err());
        assert!(Recurrence::parse(&[]).unwrap().check_with(&d).is_ok());
    }

    #[test]
    fn a_split_series_names_its_parent() {
        assert_eq!(split_parent("abc123_R20260401T090000"), Some("abc123"));
        assert_eq!(split_parent("abc123_R20260401"), Some("abc123"));
        assert_eq!(split_parent("abc123_R20260401T070000Z"), Some("abc123"));
        assert_eq!(split_parent("abc123_20260401T070000Z"), None);
        assert_eq!(split_parent("abc123"), None);
        assert_eq!(split_parent("_R20260401"), None);
    }

    #[test]
    fn keys_round_trip_through_every_spelling() {
        let k = OccurrenceKey::from_basic("20260330T070000Z").unwrap();
        assert_eq!(OccurrenceKey::parse("2026-03-30T09:00:00+02:00", false), Some(k));
        assert_eq!(OccurrenceKey::parse("20260330T070000Z", false), Some(k));
        assert_eq!(k.display(chrono_tz::Europe::Berlin), "2026-03-30T09:00:00+02:00");
        let d = OccurrenceKey::parse("2026-12-24", true).unwrap();
        assert_eq!(d.basic(), "20261224");
        assert_eq!(OccurrenceKey::parse("20261224", true), Some(d));
        assert_eq!(OccurrenceKey::parse("2026-12-24", false), None);
        assert_eq!(OccurrenceKey::parse("2026-12-24T09:00:00Z", true), None);
    }
}
