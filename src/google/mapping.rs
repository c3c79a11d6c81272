//! Slot content ↔ Google event. Every event slotsync writes carries, in
//! `extendedProperties.private`, the slot id (`slotsync_slot`), the deployment that wrote
//! it (`slotsync_origin`) and the fingerprint of what was written (`slotsync_fp`).

use std::collections::HashMap;

use chrono_tz::Tz;
use google_calendar3::api::{Event, EventDateTime};
use serde_json::Value;

use crate::domain::{
    Appearance, AppearanceFields, Fingerprint, ReminderFields, ReminderMethod, Reminders, SlotDraft, SlotFields,
    SlotId, SlotTiming, Transparency, ValidationError, Visibility,
};

/// `extendedProperties.private` key holding the slot id.
pub const PROP_SLOT: &str = "slotsync_slot";
/// `extendedProperties.private` key holding the writing deployment's id.
pub const PROP_ORIGIN: &str = "slotsync_origin";
/// `extendedProperties.private` key holding the written content's fingerprint.
pub const PROP_FINGERPRINT: &str = "slotsync_fp";

/// What slotsync writes into an event for a slot.
#[derive(Debug, Clone)]
pub struct EventContent<'a> {
    pub slot: SlotId,
    pub draft: &'a SlotDraft,
    pub recurrence: &'a [String],
    pub origin: &'a str,
}

impl EventContent<'_> {
    /// The fingerprint of this content.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.draft, self.recurrence, false)
    }

    /// The event fields slotsync owns, each with its value or `None` for "the slot has
    /// none". Built by destructuring the draft whole, so a field added to it does not
    /// compile until it is mapped here; the insert and the patch both come from this list
    /// (the patch clears the `None`s), so neither can forget a field.
    fn owned_fields(&self) -> [(&'static str, Option<Value>); 11] {
        let SlotDraft {
            title,
            description,
            location,
            timezone,
            timing,
            appearance,
        } = self.draft;
        let Appearance {
            visibility,
            transparency,
            color_id,
            reminders,
        } = appearance;
        let zone = Some(timezone.name().to_owned());
        let (start, end) = match timing {
            SlotTiming::Timed { start, end } => (
                EventDateTime {
                    date_time: Some(*start),
                    time_zone: zone.clone(),
                    ..Default::default()
                },
                EventDateTime {
                    date_time: Some(*end),
                    time_zone: zone,
                    ..Default::default()
                },
            ),
            SlotTiming::AllDay { start_date, end_date } => (
                EventDateTime {
                    date: Some(*start_date),
                    time_zone: zone.clone(),
                    ..Default::default()
                },
                EventDateTime {
                    date: Some(*end_date),
                    time_zone: zone,
                    ..Default::default()
                },
            ),
        };
        [
            ("summary", json(title)),
            ("description", description.as_deref().and_then(json)),
            ("location", location.as_deref().and_then(json)),
            ("start", json(&start)),
            ("end", json(&end)),
            (
                "recurrence",
                (!self.recurrence.is_empty()).then(|| json(self.recurrence)).flatten(),
            ),
            ("status", json("confirmed")),
            // Google's defaults are left out (cleared by a patch), so an event of a slot
            // that uses none of these looks as it did before they were synced.
            (
                "visibility",
                (*visibility != Visibility::Default)
                    .then(|| json(visibility.as_str()))
                    .flatten(),
            ),
            (
                "transparency",
                (*transparency != Transparency::Busy)
                    .then(|| json(transparency.google()))
                    .flatten(),
            ),
            ("colorId", color_id.and_then(|c| json(&c.to_string()))),
            ("reminders", Some(reminders_json(reminders))),
        ]
    }

    /// `extendedProperties.private`: the slot, the writer and the fingerprint.
    fn private_properties(&self) -> HashMap<String, String> {
        HashMap::from([
            (PROP_SLOT.to_owned(), self.slot.0.to_string()),
            (PROP_ORIGIN.to_owned(), self.origin.to_owned()),
            (PROP_FINGERPRINT.to_owned(), self.fingerprint().as_str().to_owned()),
        ])
    }

    /// The event to insert (with `id` set by the caller).
    pub fn to_event(&self) -> Event {
        serde_json::from_value(self.to_json()).expect("the owned fields make an event")
    }

    /// The insert body as JSON, as google-calendar3 sends it (absent fields left out).
    pub fn to_json(&self) -> Value {
        let mut body = serde_json::Map::new();
        for (key, value) in self.owned_fields() {
            if let Some(v) = value {
                body.insert(key.to_owned(), v);
            }
        }
        body.insert(
            "extendedProperties".to_owned(),
            serde_json::json!({ "private": self.private_properties() }),
        );
        let mut body = Value::Object(body);
        google_calendar3::common::remove_json_null_values(&mut body);
        body
    }

    /// The body of an `events.patch` that makes the event hold exactly this content: the
    /// insert body plus explicit `null`s for the owned fields the slot lacks (patch keeps
    /// omitted fields), and the other half of `start`/`end` cleared when a slot changes
    /// between timed and all-day, and the old reminder overrides when the slot goes back to
    /// the default reminders. Other fields a user set in Google (attendees, conference
    /// data…) stay.
    pub fn to_patch(&self) -> Value {
        let mut body = self.to_json();
        let map = body.as_object_mut().expect("an event is an object");
        for (key, _) in self.owned_fields() {
            map.entry(key).or_insert(Value::Null);
        }
        for key in ["start", "end"] {
            if let Some(Value::Object(time)) = map.get_mut(key) {
                time.entry("date").or_insert(Value::Null);
                time.entry("dateTime").or_insert(Value::Null);
            }
        }
        // A patch merges `reminders` into what the event has: back to the default, the
        // overrides it had must go too (Google refuses both at once).
        if let Some(Value::Object(reminders)) = map.get_mut("reminders") {
            reminders.entry("overrides").or_insert(Value::Null);
        }
        body
    }
}

/// Google's `reminders` for `reminders`: `{"useDefault": true}`, or `useDefault: false`
/// with one override per reminder (none: no reminders at all).
fn reminders_json(reminders: &Reminders) -> Value {
    match reminders {
        Reminders::Default => serde_json::json!({ "useDefault": true }),
        Reminders::Custom(list) => serde_json::json!({
            "useDefault": false,
            "overrides": list
                .iter()
                .map(|r| serde_json::json!({ "method": r.method.as_str(), "minutes": r.minutes }))
                .collect::<Vec<_>>(),
        }),
    }
}

/// The appearance an event holds, as fields to validate. Lenient where Google could
/// hold what a slot cannot: an unknown `visibility` or `colorId` counts as the default;
/// reminders of another method (the retired `sms`), out of range or repeated are left
/// out, and at most five are kept.
fn event_appearance(event: &Event) -> AppearanceFields {
    let visibility = event
        .visibility
        .as_deref()
        .filter(|v| v.parse::<Visibility>().is_ok())
        .map(str::to_owned);
    let transparency = match Transparency::from_google(event.transparency.as_deref()) {
        Transparency::Busy => None,
        free => Some(free.as_str().to_owned()),
    };
    let color_id = event
        .color_id
        .as_deref()
        .filter(|c| c.parse::<crate::domain::ColorId>().is_ok())
        .map(str::to_owned);
    let reminders = event.reminders.as_ref().and_then(|r| {
        let overrides = r.overrides.as_deref().unwrap_or_default();
        // Google says `useDefault` on every event; absent (and no overrides) reads as
        // the default too.
        if r.use_default == Some(true) || (r.use_default.is_none() && overrides.is_empty()) {
            return None;
        }
        let mut kept: Vec<(ReminderMethod, i64)> = overrides
            .iter()
            .filter_map(|o| {
                let method = ReminderMethod::from_google(o.method.as_deref()?)?;
                let minutes = i64::from(o.minutes?);
                (0..=crate::domain::appearance::MAX_REMINDER_MINUTES)
                    .contains(&minutes)
                    .then_some((method, minutes))
            })
            .collect();
        kept.sort();
        kept.dedup();
        kept.truncate(crate::domain::appearance::MAX_REMINDERS);
        let of = |method: ReminderMethod| -> Vec<i64> {
            kept.iter().filter(|(m, _)| *m == method).map(|(_, n)| *n).collect()
        };
        Some(ReminderFields {
            use_default: false,
            minutes: Some(of(ReminderMethod::Popup)),
            email_minutes: Some(of(ReminderMethod::Email)),
        })
    });
    AppearanceFields {
        visibility,
        transparency,
        color_id,
        reminders,
    }
}

/// `value` as JSON.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> Option<Value> {
    Some(serde_json::to_value(value).expect("event fields serialise"))
}

/// Why an event cannot be represented as a slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The event has no start or end.
    #[error("the event has no {0}")]
    MissingTime(&'static str),
    /// The event's content breaks a slot rule.
    #[error("the event cannot be a slot: {0}")]
    Invalid(#[from] ValidationError),
}

/// Title given to events that have none.
pub const UNTITLED: &str = "(No title)";

/// The slot content an event holds. Times keep their zone (`timeZone`, else
/// `calendar_zone`); an empty title becomes [`UNTITLED`].
pub fn event_to_draft(event: &Event, calendar_zone: Tz) -> Result<SlotDraft, MappingError> {
    let start = event.start.as_ref().ok_or(MappingError::MissingTime("start"))?;
    let end = event.end.as_ref().ok_or(MappingError::MissingTime("end"))?;
    let zone = start
        .time_zone
        .as_deref()
        .and_then(|z| z.parse::<Tz>().ok())
        .unwrap_or(calendar_zone);
    let non_empty = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
    let mut fields = SlotFields {
        title: Some(non_empty(&event.summary).unwrap_or_else(|| UNTITLED.to_owned())),
        description: non_empty(&event.description),
        location: non_empty(&event.location),
        timezone: Some(zone.name().to_owned()),
        appearance: event_appearance(event),
        ..Default::default()
    };
    match (start.date, end.date, start.date_time, end.date_time) {
        (Some(s), Some(e), _, _) => {
            fields.all_day = Some(true);
            fields.start_date = Some(s);
            fields.end_date = Some(e);
        }
        (_, _, Some(s), Some(e)) => {
            fields.start = Some(s.fixed_offset());
            fields.end = Some(e.fixed_offset());
        }
        (None, _, None, _) => return Err(MappingError::MissingTime("start")),
        _ => return Err(MappingError::MissingTime("end")),
    }
    Ok(SlotDraft::validate(fields)?)
}

/// The fingerprint of an event's content, comparable with a slot's `synced_fingerprint`.
pub fn event_fingerprint(event: &Event, calendar_zone: Tz) -> Option<Fingerprint> {
    if event.status.as_deref() == Some("cancelled") {
        return None;
    }
    let draft = event_to_draft(event, calendar_zone).ok()?;
    Some(Fingerprint::of(
        &draft,
        event.recurrence.as_deref().unwrap_or(&[]),
        false,
    ))
}

/// The deployment that wrote an event, from its `slotsync_origin` property.
pub fn event_origin(event: &Event) -> Option<&str> {
    event
        .extended_properties
        .as_ref()?
        .private
        .as_ref()?
        .get(PROP_ORIGIN)
        .map(String::as_str)
}

/// Whether the event still holds what this deployment wrote into it: its content's
/// fingerprint is the `slotsync_fp` written with it, so nobody changed it in Google since.
/// (A write whose answer or bookkeeping was lost in a crash is recognised this way.)
pub fn unchanged_since_written(event: &Event, content: &Fingerprint, origin: &str) -> bool {
    let written = event
        .extended_properties
        .as_ref()
        .and_then(|p| p.private.as_ref())
        .and_then(|p| p.get(PROP_FINGERPRINT));
    event_origin(event) == Some(origin) && written.map(String::as_str) == Some(content.as_str())
}

/// The slot an event belongs to, from its `slotsync_slot` property.
pub fn event_slot(event: &Event) -> Option<SlotId> {
    event
        .extended_properties
        .as_ref()?
        .private
        .as_ref()?
        .get(PROP_SLOT)?
        .parse()
        .ok()
        .map(SlotId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(fields: SlotFields) -> SlotDraft {
        SlotDraft::validate(fields).unwrap()
    }

    fn timed(zone: &str, start: &str, end: &str) -> SlotDraft {
        draft(SlotFields {
            title: Some("Standup".into()),
            start: Some(start.parse().unwrap()),
            end: Some(end.parse().unwrap()),
            timezone: Some(zone.into()),
            ..Default::default()
        })
    }

    fn all_day(zone: &str, start: &str, end: &str) -> SlotDraft {
        draft(SlotFields {
            title: Some("Offsite".into()),
            all_day: Some(true),
            start_date: Some(start.parse().unwrap()),
            end_date: Some(end.parse().unwrap()),
            timezone: Some(zone.into()),
            ..Default::default()
        })
    }

    fn content(d: &SlotDraft) -> EventContent<'_> {
        EventContent {
            slot: SlotId(uuid::Uuid::nil()),
            draft: d,
            recurrence: &[],
            origin: "test-origin",
        }
    }

    #[test]
    fn a_timed_slot_maps_to_date_time_with_its_zone_and_the_three_properties() {
        let d = timed(
            "Pacific/Kiritimati",
            "2026-12-01T09:00:00+14:00",
            "2026-12-01T10:30:00+14:00",
        );
        let json = content(&d).to_json();
        assert_eq!(json["start"]["dateTime"], "2026-11-30T19:00:00Z");
        assert_eq!(json["start"]["timeZone"], "Pacific/Kiritimati");
        assert_eq!(json["end"]["dateTime"], "2026-11-30T20:30:00Z");
        assert!(json["start"].get("date").is_none());
        let private = &json["extendedProperties"]["private"];
        assert_eq!(private[PROP_SLOT], uuid::Uuid::nil().to_string());
        assert_eq!(private[PROP_ORIGIN], "test-origin");
        assert_eq!(private[PROP_FINGERPRINT], content(&d).fingerprint().as_str());
    }

    #[test]
    fn an_all_day_slot_maps_to_dates_with_the_exclusive_end_unchanged() {
        for zone in ["Pacific/Kiritimati", "America/St_Johns", "Pacific/Pago_Pago", "UTC"] {
            let d = all_day(zone, "2026-12-24", "2026-12-26");
            let json = content(&d).to_json();
            assert_eq!(json["start"]["date"], "2026-12-24", "{zone}");
            assert_eq!(json["end"]["date"], "2026-12-26", "{zone}");
            assert!(json["start"].get("dateTime").is_none());
        }
    }

    #[test]
    fn a_patch_clears_what_the_slot_lacks() {
        let d = all_day("UTC", "2026-12-24", "2026-12-25");
        let patch = content(&d).to_patch();
        assert_eq!(patch["description"], Value::Null);
        assert_eq!(patch["location"], Value::Null);
        assert_eq!(patch["recurrence"], Value::Null);
        assert_eq!(patch["start"]["dateTime"], Value::Null);
        assert_eq!(patch["start"]["date"], "2026-12-24");
        // The appearance's defaults: cleared, and the reminders back to the calendar's.
        assert_eq!(patch["visibility"], Value::Null);
        assert_eq!(patch["transparency"], Value::Null);
        assert_eq!(patch["colorId"], Value::Null);
        assert_eq!(patch["reminders"], json!({"useDefault": true, "overrides": null}));
        // Fields slotsync does not manage are left out, so a patch keeps them.
        assert!(patch.get("attendees").is_none());
        assert!(patch.get("conferenceData").is_none());
    }

    fn dressed(d: SlotDraft) -> SlotDraft {
        SlotDraft {
            appearance: crate::domain::Appearance::validate(AppearanceFields {
                visibility: Some("private".into()),
                transparency: Some("free".into()),
                color_id: Some("7".into()),
                reminders: Some(ReminderFields {
                    use_default: false,
                    minutes: Some(vec![60, 10]),
                    email_minutes: Some(vec![1440]),
                }),
            })
            .unwrap(),
            ..d
        }
    }

    #[test]
    fn the_appearance_maps_to_googles_fields() {
        let d = dressed(timed("UTC", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"));
        let body = content(&d).to_json();
        assert_eq!(body["visibility"], "private");
        assert_eq!(body["transparency"], "transparent");
        assert_eq!(body["colorId"], "7");
        assert_eq!(
            body["reminders"],
            json!({"useDefault": false, "overrides": [
                {"method": "popup", "minutes": 10},
                {"method": "popup", "minutes": 60},
                {"method": "email", "minutes": 1440},
            ]})
        );
        // A patch says the same (the overrides replace the event's whole list).
        let patch = content(&d).to_patch();
        assert_eq!(patch["reminders"], body["reminders"]);
        assert_eq!(patch["colorId"], "7");
        // The defaults: nothing but `useDefault` in an insert.
        let plain = timed("UTC", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
        let body = content(&plain).to_json();
        for key in ["visibility", "transparency", "colorId"] {
            assert!(body.get(key).is_none(), "{key}: {body}");
        }
        assert_eq!(body["reminders"], json!({"useDefault": true}));
        // No reminders at all.
        let mut none = plain.clone();
        none.appearance.reminders = Reminders::Custom(vec![]);
        assert_eq!(
            content(&none).to_patch()["reminders"],
            json!({"useDefault": false, "overrides": []})
        );
    }

    #[test]
    fn the_appearance_comes_back_from_an_event_with_the_same_fingerprint() {
        let d = dressed(all_day("Europe/Paris", "2026-12-24", "2026-12-26"));
        let c = content(&d);
        let event: Event = serde_json::from_value(serde_json::to_value(c.to_event()).unwrap()).unwrap();
        assert_eq!(event_to_draft(&event, Tz::UTC).unwrap(), d);
        assert_eq!(event_fingerprint(&event, Tz::UTC), Some(c.fingerprint()));
    }

    #[test]
    fn an_event_edited_in_google_maps_to_the_appearance_it_holds() {
        let event = |extra: Value| -> Event {
            let mut v = json!({
                "id": "abcde",
                "start": {"dateTime": "2026-12-01T09:00:00Z"},
                "end": {"dateTime": "2026-12-01T10:00:00Z"},
            });
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value(v).unwrap()
        };
        let appearance = |extra: Value| event_to_draft(&event(extra), Tz::UTC).unwrap().appearance;
        // Google's defaults, said or not.
        let default = crate::domain::Appearance::default();
        assert_eq!(appearance(json!({})), default);
        assert_eq!(
            appearance(json!({"visibility": "default", "transparency": "opaque", "reminders": {"useDefault": true}})),
            default
        );
        let got = appearance(json!({"visibility": "confidential", "transparency": "transparent", "colorId": "11"}));
        assert_eq!(got.visibility, Visibility::Confidential);
        assert_eq!(got.transparency, Transparency::Free);
        assert_eq!(got.color_id.map(|c| c.get()), Some(11));
        // Email reminders keep their method; `sms`, repeats and impossible values go.
        let got = appearance(json!({"reminders": {"useDefault": false, "overrides": [
            {"method": "email", "minutes": 30}, {"method": "popup", "minutes": 5},
            {"method": "sms", "minutes": 1}, {"method": "popup", "minutes": 5},
            {"method": "popup", "minutes": 50000},
        ]}}));
        assert_eq!(got.reminders.minutes(ReminderMethod::Popup), vec![5]);
        assert_eq!(got.reminders.minutes(ReminderMethod::Email), vec![30]);
        // `useDefault: false` and no overrides: no reminders at all.
        assert_eq!(
            appearance(json!({"reminders": {"useDefault": false}})).reminders,
            Reminders::Custom(vec![])
        );
        // What a slot cannot hold counts as the default instead of refusing the event.
        let odd = appearance(json!({"visibility": "secret", "colorId": "42"}));
        assert_eq!(odd, default);
    }

    #[test]
    fn an_event_maps_back_to_the_same_content_and_fingerprint() {
        for d in [
            timed(
                "America/St_Johns",
                "2026-03-08T01:30:00-03:30",
                "2026-03-08T04:00:00-02:30",
            ),
            all_day("Pacific/Kiritimati", "2026-12-31", "2027-01-01"),
        ] {
            let c = content(&d);
            let event: Event = serde_json::from_value(serde_json::to_value(c.to_event()).unwrap()).unwrap();
            assert_eq!(event_to_draft(&event, Tz::UTC).unwrap(), d);
            assert_eq!(event_fingerprint(&event, Tz::UTC), Some(c.fingerprint()));
            assert_eq!(event_slot(&event), Some(SlotId(uuid::Uuid::nil())));
        }
    }

    #[test]
    fn an_untitled_event_without_zone_takes_the_calendar_zone() {
        let event: Event = serde_json::from_value(json!({
            "id": "abcde", "start": {"dateTime": "2026-12-01T09:00:00+01:00"},
            "end": {"dateTime": "2026-12-01T10:00:00+01:00"}
        }))
        .unwrap();
        let d = event_to_draft(&event, "Europe/Paris".parse().unwrap()).unwrap();
        assert_eq!(d.title, UNTITLED);
        assert_eq!(d.timezone.name(), "Europe/Paris");
        assert_eq!(event_slot(&event), None);
        let missing: Event = serde_json::from_value(json!({"id": "abcde"})).unwrap();
        assert_eq!(
            event_to_draft(&missing, Tz::UTC),
            Err(MappingError::MissingTime("start"))
        );
    }

    #[test]
    fn a_cancelled_event_has_no_content_fingerprint() {
        let event: Event = serde_json::from_value(json!({"id": "abcde", "status": "cancelled"})).unwrap();
        assert_eq!(event_fingerprint(&event, Tz::UTC), None);
    }
}
