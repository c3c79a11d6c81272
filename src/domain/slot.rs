//! A slot's editable fields and the rules they must satisfy.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;

use super::appearance::{Appearance, AppearanceFields};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 1024;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 8192;
/// Longest location, in characters.
pub const MAX_LOCATION_CHARS: usize = 1024;
/// Longest slot.
pub const MAX_SLOT_DAYS: i64 = 31;

/// The fields a client sends to create or replace a slot, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<DateTime<FixedOffset>>,
    pub end: Option<DateTime<FixedOffset>>,
    pub timezone: Option<String>,
    pub all_day: Option<bool>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Visibility, busy/free, colour and reminders (each omitted: the default).
    pub appearance: AppearanceFields,
}

/// A rule a field broke; becomes a 400 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The JSON field at fault.
    pub field: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// When a slot happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTiming {
    /// From one instant to another (stored in UTC, whole seconds).
    Timed { start: DateTime<Utc>, end: DateTime<Utc> },
    /// Whole days in the slot's zone; `end_date` is exclusive, as in Google Calendar.
    AllDay { start_date: NaiveDate, end_date: NaiveDate },
}

/// A validated slot: every rule holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDraft {
    pub title: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub timezone: Tz,
    pub timing: SlotTiming,
    /// How the slot appears in Google Calendar.
    pub appearance: Appearance,
}

impl SlotDraft {
    /// Checks every rule; the first broken one is reported.
    pub fn validate(fields: SlotFields) -> Result<Self, ValidationError> {
        let title = fields.title.ok_or_else(|| invalid("title", "is required"))?;
        check_text("title", &title, MAX_TITLE_CHARS)?;
        if let Some(d) = &fields.description {
            check_text("description", d, MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(l) = &fields.location {
            check_text("location", l, MAX_LOCATION_CHARS)?;
        }
        let zone_name = fields.timezone.unwrap_or_else(|| "UTC".to_string());
        let timezone: Tz = zone_name.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("`{zone_name}` is not an IANA time zone (e.g. `Europe/Paris`, `America/St_Johns`)"),
            )
        })?;

        let timing = if fields.all_day.unwrap_or(false) {
            if fields.start.is_some() {
                return Err(invalid("start", "must be omitted for an all-day slot; use start_date"));
            }
            if fields.end.is_some() {
                return Err(invalid("end", "must be omitted for an all-day slot; use end_date"));
            }
            let start_date = fields
                .start_date
                .ok_or_else(|| invalid("start_date", "is required for an all-day slot (yyyy-mm-dd)"))?;
            let end_date = fields
                .end_date
                .ok_or_else(|| invalid("end_date", "is required for an all-day slot (yyyy-mm-dd, exclusive)"))?;
            if end_date <= start_date {
                return Err(invalid(
                    "end_date",
                    "must be after start_date (the end date is exclusive)",
                ));
            }
            if (end_date - start_date).num_days() > MAX_SLOT_DAYS {
                return Err(invalid(
                    "end_date",
                    format!("a slot lasts at most {MAX_SLOT_DAYS} days"),
                ));
            }
            SlotTiming::AllDay { start_date, end_date }
        } else {
            if fields.start_date.is_some() {
                return Err(invalid(
                    "start_date",
                    "is only for all-day slots; set all_day or use start",
                ));
            }
            if fields.end_date.is_some() {
                return Err(invalid("end_date", "is only for all-day slots; set all_day or use end"));
            }
            let start = fields
                .start
                .ok_or_else(|| invalid("start", "is required (RFC 3339 with offset)"))?
                .with_timezone(&Utc)
                .trunc_subsecs(0);
            let end = fields
                .end
                .ok_or_else(|| invalid("end", "is required (RFC 3339 with offset)"))?
                .with_timezone(&Utc)
                .trunc_subsecs(0);
            if end <= start {
                return Err(invalid("end", "must be after start"));
            }
            if end - start > Duration::days(MAX_SLOT_DAYS) {
                return Err(invalid("end", format!("a slot lasts at most {MAX_SLOT_DAYS} days")));
            }
            SlotTiming::Timed { start, end }
        };
        let appearance = Appearance::validate(fields.appearance)?;
        Ok(Self {
            title,
            description: fields.description,
            location: fields.location,
            timezone,
            timing,
            appearance,
        })
    }

    /// The instant the slot starts (local midnight of `start_date` for all-day slots).
    pub fn start_at(&self) -> DateTime<Utc> {
        match &self.timing {
            SlotTiming::Timed { start, .. } => *start,
            SlotTiming::AllDay { start_date, .. } => local_midnight(self.timezone, *start_date),
        }
    }

    /// The instant the slot ends (local midnight of `end_date` for all-day slots).
    pub fn end_at(&self) -> DateTime<Utc> {
        match &self.timing {
            SlotTiming::Timed { end, .. } => *end,
            SlotTiming::AllDay { end_date, .. } => local_midnight(self.timezone, *end_date),
        }
    }

    /// Whether this is an all-day slot.
    pub fn all_day(&self) -> bool {
        matches!(self.timing, SlotTiming::AllDay { .. })
    }
}

/// Whether a text has nothing to show: only whitespace and control characters. The spec
/// says the same with the pattern `[^\s\x00-\x1f\x7f-\x9f]` (one character that is neither).
pub fn is_blank(value: &str) -> bool {
    value.chars().all(|c| c.is_whitespace() || c.is_control())
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if is_blank(value) {
        return Err(invalid(
            field,
            "must not be empty or only spaces and control characters (omit it or send null instead)",
        ));
    }
    let len = value.chars().count();
    if len > max {
        return Err(invalid(
            field,
            format!("is {len} characters long; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// The first instant of `date` in `tz`. Where midnight falls in a DST gap (some zones
/// switch at 00:00), the day starts at the first local time that exists.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..=24 * 4 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(15);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn timed(start: &str, end: &str) -> SlotFields {
        SlotFields {
            title: Some("Focus".into()),
            start: Some(dt(start)),
            end: Some(dt(end)),
            ..Default::default()
        }
    }

    #[test]
    fn a_timed_slot_is_stored_in_utc_whole_seconds() {
        let draft = SlotDraft::validate(SlotFields {
            timezone: Some("America/St_Johns".into()),
            ..timed("2026-03-01T09:00:00.750-03:30", "2026-03-01T10:00:00-03:30")
        })
        .unwrap();
        assert_eq!(draft.start_at().to_rfc3339(), "2026-03-01T12:30:00+00:00");
        assert_eq!(draft.timezone, chrono_tz::America::St_Johns);
    }

    #[test]
    fn an_all_day_slot_starts_at_local_midnight() {
        let draft = SlotDraft::validate(SlotFields {
            title: Some("Holiday".into()),
            all_day: Some(true),
            timezone: Some("Pacific/Kiritimati".into()),
            start_date: NaiveDate::from_ymd_opt(2026, 12, 24),
            end_date: NaiveDate::from_ymd_opt(2026, 12, 26),
            ..Default::default()
        })
        .unwrap();
        // Kiritimati is UTC+14: local midnight is 10:00 UTC the day before.
        assert_eq!(draft.start_at().to_rfc3339(), "2026-12-23T10:00:00+00:00");
        assert_eq!(draft.end_at().to_rfc3339(), "2026-12-25T10:00:00+00:00");
    }

    #[test]
    fn midnight_in_a_dst_gap_moves_to_the_first_existing_time() {
        // Chile springs forward at 00:00 on 2026-09-06: midnight does not exist there.
        let t = local_midnight(
            chrono_tz::America::Santiago,
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(),
        );
        assert_eq!(
            t.with_timezone(&chrono_tz::America::Santiago).to_rfc3339(),
            "2026-09-06T01:00:00-03:00"
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        let cases: Vec<(SlotFields, &str)> = vec![
            (
                SlotFields {
                    title: None,
                    ..timed("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")
                },
                "title",
            ),
            (
                SlotFields {
                    title: Some("  ".into()),
                    ..timed("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")
                },
                "title",
            ),
            (
                SlotFields {
                    title: Some(long),
                    ..timed("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")
                },
                "title",
            ),
            (timed("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z"), "end"),
            (timed("2026-01-01T10:00:00Z", "2026-02-02T10:00:01Z"), "end"),
            (
                SlotFields {
                    timezone: Some("Mars/Olympus".into()),
                    ..timed("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")
                },
                "timezone",
            ),
            (
                SlotFields {
                    all_day: Some(true),
                    title: Some("x".into()),
                    ..Default::default()
                },
                "start_date",
            ),
        ];
        for (fields, field) in cases {
            let err = SlotDraft::validate(fields.clone()).unwrap_err();
            assert_eq!(err.field, field, "{fields:?} → {err}");
        }
    }
}
