//! Instances of recurring events, as Google has them: instance ids, resolving an id to
//! the occurrence it names, and the exceptions (modified or cancelled instances) stored
//! under those ids.
//!
//! An exception is an ordinary [`StoredEvent`] whose id is the instance id
//! (`<masterId>_<YYYYMMDDTHHMMSSZ>` or `<masterId>_<YYYYMMDD>`) and which carries
//! `recurringEventId` and `originalStartTime`. Storing it takes a change sequence number
//! like any event, so incremental sync and push notifications carry it without a special
//! case. Google keys exceptions by original start: when the master changes so that an
//! exception's original start is no longer an occurrence, or the master is deleted, the
//! exception is cancelled and *detached* (it stays as a tombstone for incremental sync
//! but no longer overrides anything).

use super::errors::ApiError;
use super::model::Event;
use super::recurrence::expand;
use super::state::{Calendar, State, StoredEvent};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::collections::HashMap;

/// The original start of an occurrence: what an instance id encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OriginalStart {
    /// A timed occurrence, by its original start instant.
    Timed(DateTime<Utc>),
    /// An all-day occurrence, by its original date.
    AllDay(NaiveDate),
}

impl OriginalStart {
    /// Parses an instance id suffix: `YYYYMMDDTHHMMSSZ` (UTC basic format) or `YYYYMMDD`.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        if suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return NaiveDate::parse_from_str(suffix, "%Y%m%d").ok().map(Self::AllDay);
        }
        let utc = suffix.strip_suffix('Z')?;
        NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .ok()
            .map(|n| Self::Timed(Utc.from_utc_datetime(&n)))
    }

    /// Parses a caller's value: an RFC 3339 instant, a date `yyyy-mm-dd`, or an instance
    /// id suffix.
    pub fn from_param(value: &str) -> Option<Self> {
        if let Ok(d) = DateTime::parse_from_rfc3339(value) {
            return Some(Self::Timed(d.with_timezone(&Utc)));
        }
        if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return Some(Self::AllDay(d));
        }
        Self::from_suffix(value)
    }

    /// The original start of an instance resource (`originalStartTime`).
    pub fn of_instance(instance: &Event) -> Option<Self> {
        instance
            .id
            .rsplit_once('_')
            .and_then(|(_, suffix)| Self::from_suffix(suffix))
    }

    /// The instance id suffix.
    pub fn suffix(&self) -> String {
        match self {
            Self::Timed(at) => at.format("%Y%m%dT%H%M%SZ").to_string(),
            Self::AllDay(d) => d.format("%Y%m%d").to_string(),
        }
    }

    /// The instant it stands for (all-day: midnight UTC, as all-day series expand).
    pub fn instant(&self) -> DateTime<Utc> {
        match self {
            Self::Timed(at) => *at,
            Self::AllDay(d) => Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()),
        }
    }
}

/// `<masterId>_<suffix>`.
pub fn instance_id(master_id: &str, original: &OriginalStart) -> String {
    format!("{master_id}_{}", original.suffix())
}

/// Splits an instance id into its master id and original start (`None` when `id` is not
/// shaped like one). The master id may itself contain `_` (a split series `…_R…`).
pub fn split_instance_id(id: &str) -> Option<(&str, OriginalStart)> {
    let (master, suffix) = id.rsplit_once('_')?;
    Some((master, OriginalStart::from_suffix(suffix)?))
}

/// Whether a stored event is a recurring master (a top-level event with a rule).
pub fn is_master(event: &Event) -> bool {
    event.recurring_event_id.is_none() && event.recurrence.as_ref().is_some_and(|r| !r.is_empty())
}

/// The unmodified occurrence of `master` at `original`, when the series has one there.
pub fn occurrence(master: &Event, calendar_tz: &str, original: &OriginalStart) -> Option<Event> {
    let at = original.instant();
    let wanted = instance_id(&master.id, original);
    expand(master, calendar_tz, Some(at), Some(at + Duration::seconds(1)))
        .into_iter()
        .find(|i| i.id == wanted)
}

/// What an event id names in a calendar.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The event as `events.get` returns it (an exception or a generated instance
    /// included).
    pub current: Event,
    /// The master id when the id names an instance of a recurring event.
    pub instance_of: Option<String>,
}

/// Resolves an event id: a stored event, a stored exception in force, or an occurrence of
/// a recurring master (generated). 404 when it is none of these — an instance id whose
/// date is not an occurrence of the series included.
pub fn resolve(cal: &Calendar, id: &str) -> Result<Resolved, ApiError> {
    if let Some(stored) = cal.events.get(id) {
        match &stored.event.recurring_event_id {
            None => {
                return Ok(Resolved {
                    current: stored.event.clone(),
                    instance_of: None,
                })
            }
            Some(master) if !stored.detached => {
                return Ok(Resolved {
                    current: stored.event.clone(),
                    instance_of: Some(master.clone()),
                })
            }
            Some(_) => {}
        }
    }
    let (master_id, original) = split_instance_id(id).ok_or_else(ApiError::not_found)?;
    let master = cal
        .events
        .get(master_id)
        .map(|s| &s.event)
        .filter(|m| is_master(m))
        .ok_or_else(ApiError::not_found)?;
    let current = occurrence(master, &cal.time_zone, &original).ok_or_else(ApiError::not_found)?;
    Ok(Resolved {
        current,
        instance_of: Some(master_id.to_owned()),
    })
}

/// The exceptions in force (not detached), by master id.
pub fn exceptions_by_master(cal: &Calendar) -> HashMap<&str, Vec<&StoredEvent>> {
    let mut map: HashMap<&str, Vec<&StoredEvent>> = HashMap::new();
    for stored in cal.events.values() {
        if let (Some(master), false) = (&stored.event.recurring_event_id, stored.detached) {
            map.entry(master.as_str()).or_default().push(stored);
        }
    }
    map
}

/// Makes a written instance keep what identifies it: its id, `recurringEventId` and
/// `originalStartTime` come from the occurrence; an instance cannot carry `recurrence`
/// (400).
pub fn pin_instance_fields(next: &mut Event, current: &Event, master_id: &str) -> Result<(), ApiError> {
    if next.recurrence.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::invalid(
            "An instance of a recurring event cannot have a recurrence.",
        ));
    }
    next.recurrence = None;
    next.recurring_event_id = Some(master_id.to_owned());
    next.original_start_time = current.original_start_time.clone();
    Ok(())
}

/// Cancels and detaches every exception of `master_id` for which `keep` answers false.
/// Already cancelled exceptions are only detached (their tombstone was served). Returns
/// how many were detached.
pub fn detach_exceptions(st: &mut State, cal_id: &str, master_id: &str, keep: impl Fn(&StoredEvent) -> bool) -> usize {
    let Some(cal) = st.calendars.get(cal_id) else {
        return 0;
    };
    let doomed: Vec<(String, bool)> = cal
        .events
        .values()
        .filter(|s| s.event.recurring_event_id.as_deref() == Some(master_id) && !s.detached && !keep(s))
        .map(|s| (s.event.id.clone(), s.event.is_cancelled()))
        .collect();
    for (id, cancelled) in &doomed {
        if *cancelled {
            if let Some(stored) = st.calendars.get_mut(cal_id).and_then(|c| c.events.get_mut(id)) {
                stored.detached = true;
            }
            continue;
        }
        let Some(mut event) = st.calendars[cal_id].events.get(id).map(|s| s.event.clone()) else {
            continue;
        };
        event.status = Some("cancelled".to_owned());
        st.store_event(cal_id, event, true);
    }
    doomed.len()
}

/// After a change to a master (its rule or times), drops the exceptions whose original
/// start is no longer an occurrence of `next` (Google keeps overrides keyed by original
/// start). Call it *before* storing the master, so an incremental listing serves the
/// tombstones before the master's new state. Returns how many were dropped.
pub fn reconcile_exceptions(st: &mut State, cal_id: &str, next: &Event) -> usize {
    let tz = st
        .calendars
        .get(cal_id)
        .map(|c| c.time_zone.clone())
        .unwrap_or_default();
    detach_exceptions(st, cal_id, &next.id, |s| {
        OriginalStart::of_instance(&s.event).is_some_and(|o| occurrence(next, &tz, &o).is_some())
    })
}

/// Deleting a master removes its instances: every exception becomes a detached tombstone.
pub fn cancel_exceptions(st: &mut State, cal_id: &str, master_id: &str) -> usize {
    detach_exceptions(st, cal_id, master_id, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_carry_the_original_start_in_utc_basic_format_or_the_date() {
        let timed = OriginalStart::from_suffix("20250303T080000Z").unwrap();
        assert_eq!(timed.instant().to_rfc3339(), "2025-03-03T08:00:00+00:00");
        assert_eq!(instance_id("abc", &timed), "abc_20250303T080000Z");
        let all_day = OriginalStart::from_suffix("20250303").unwrap();
        assert_eq!(
            all_day,
            OriginalStart::AllDay(NaiveDate::from_ymd_opt(2025, 3, 3).unwrap())
        );
        assert_eq!(OriginalStart::from_suffix("20250303T080000"), None);
        assert_eq!(OriginalStart::from_suffix("R20250303T080000"), None);
    }

    #[test]
    fn the_master_id_of_a_split_series_instance_keeps_its_own_underscore() {
        let (master, original) = split_instance_id("abc_R20250310T080000_20250317T080000Z").unwrap();
        assert_eq!(master, "abc_R20250310T080000");
        assert_eq!(original.suffix(), "20250317T080000Z");
        assert!(split_instance_id("plainid").is_none());
    }

    #[test]
    fn caller_values_are_instants_dates_or_suffixes() {
        let a = OriginalStart::from_param("2025-03-03T09:00:00+01:00").unwrap();
        assert_eq!(a, OriginalStart::from_suffix("20250303T080000Z").unwrap());
        assert_eq!(
            OriginalStart::from_param("2025-03-03"),
            OriginalStart::from_suffix("20250303")
        );
    }
}
