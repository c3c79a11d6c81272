//! The fingerprint of a slot's synced content: a hash of the fields both sides share, in
//! canonical form. An event whose fingerprint equals the slot's `synced_fingerprint` says
//! nothing new: it is our own write coming back (the echo guard).

use std::fmt;

use sha2::{Digest, Sha256};

use super::appearance::{Appearance, Transparency, Visibility};
use super::recurrence::OccurrenceKey;
use super::slot::{SlotDraft, SlotTiming};

/// A content hash (32 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of `draft` with its recurrence lines, live or `cancelled`.
    pub fn of(draft: &SlotDraft, recurrence: &[String], cancelled: bool) -> Self {
        let mut h = Sha256::new();
        // Each field is length-prefixed so no two different contents share an encoding.
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_be_bytes());
            h.update(value.as_bytes());
        };
        // Destructured whole: a field added to the draft does not compile until it is
        // hashed here (or said not to be synced).
        let SlotDraft {
            title,
            description,
            location,
            timezone,
            timing,
            appearance,
        } = draft;
        field("title", title);
        field("description", description.as_deref().unwrap_or(""));
        field("location", location.as_deref().unwrap_or(""));
        field("timezone", timezone.name());
        match timing {
            SlotTiming::Timed { start, end } => {
                field("start", &start.timestamp().to_string());
                field("end", &end.timestamp().to_string());
            }
            SlotTiming::AllDay { start_date, end_date } => {
                field("start_date", &start_date.to_string());
                field("end_date", &end_date.to_string());
            }
        }
        field("recurrence", &recurrence.join("\n"));
        field("cancelled", if cancelled { "1" } else { "0" });
        // Hashed after everything else and only when not the default: a slot that uses
        // none of them keeps the fingerprint it had before they existed, which is what
        // the events already in Google carry in `slotsync_fp`.
        let Appearance {
            visibility,
            transparency,
            color_id,
            reminders,
        } = appearance;
        if *visibility != Visibility::Default {
            field("visibility", visibility.as_str());
        }
        if *transparency != Transparency::Busy {
            field("transparency", transparency.as_str());
        }
        if let Some(color) = color_id {
            field("color_id", &color.to_string());
        }
        if let Some(custom) = reminders.canonical() {
            field("reminders", &custom);
        }
        Self(hex::encode(&h.finalize()[..16]))
    }

    /// The fingerprint of one occurrence of a series as Google holds it for the instance
    /// `key`: its content (`None`: cancelled). Compared with an exception's
    /// `synced_fingerprint`, it is the echo guard of instance overrides.
    pub fn of_occurrence(key: &OccurrenceKey, content: Option<&SlotDraft>) -> Self {
        let mut h = Sha256::new();
        let basic = key.basic();
        h.update(b"occurrence");
        h.update((basic.len() as u64).to_be_bytes());
        h.update(basic.as_bytes());
        match content {
            Some(draft) => h.update(Self::of(draft, &[], false).0.as_bytes()),
            None => h.update(b"cancelled"),
        }
        Self(hex::encode(&h.finalize()[..16]))
    }

    /// Wraps a stored fingerprint.
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The stored spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SlotFields;

    fn draft(title: &str, description: Option<&str>) -> SlotDraft {
        SlotDraft::validate(SlotFields {
            title: Some(title.into()),
            description: description.map(Into::into),
            start: Some("2026-12-01T09:00:00+01:00".parse().unwrap()),
            end: Some("2026-12-01T10:00:00+01:00".parse().unwrap()),
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn equal_content_gives_equal_fingerprints() {
        assert_eq!(
            Fingerprint::of(&draft("a", None), &[], false),
            Fingerprint::of(&draft("a", None), &[], false)
        );
        assert_eq!(Fingerprint::of(&draft("a", None), &[], false).as_str().len(), 32);
    }

    #[test]
    fn every_synced_field_changes_the_fingerprint() {
        let base = Fingerprint::of(&draft("a", None), &[], false);
        assert_ne!(base, Fingerprint::of(&draft("b", None), &[], false));
        assert_ne!(base, Fingerprint::of(&draft("a", Some("x")), &[], false));
        assert_ne!(
            base,
            Fingerprint::of(&draft("a", None), &["RRULE:FREQ=DAILY".into()], false)
        );
        assert_ne!(base, Fingerprint::of(&draft("a", None), &[], true));
        let mut moved = draft("a", None);
        moved.timezone = chrono_tz::Tz::UTC;
        assert_ne!(base, Fingerprint::of(&moved, &[], false));
    }

    /// The value the fingerprint had before the appearance fields existed (computed
    /// independently from the documented encoding: SHA-256 over length-prefixed
    /// `title`, `description`, `location`, `timezone`, `start`, `end`, `recurrence`,
    /// `cancelled`, first 16 bytes). Events already in Google carry such values.
    const BEFORE_APPEARANCE: &str = "76b6ccbd23d8c014d083c480fffb73a0";

    #[test]
    fn default_appearance_keeps_the_fingerprint_events_already_carry() {
        let d = draft("a", None);
        assert_eq!(d.appearance, Appearance::default());
        assert_eq!(Fingerprint::of(&d, &[], false).as_str(), BEFORE_APPEARANCE);
        // Saying the defaults out loud changes nothing.
        let explicit = SlotDraft::validate(SlotFields {
            title: Some("a".into()),
            start: Some("2026-12-01T09:00:00+01:00".parse().unwrap()),
            end: Some("2026-12-01T10:00:00+01:00".parse().unwrap()),
            timezone: Some("Europe/Paris".into()),
            appearance: crate::domain::AppearanceFields {
                visibility: Some("default".into()),
                transparency: Some("busy".into()),
                color_id: None,
                reminders: Some(crate::domain::ReminderFields {
                    use_default: true,
                    ..Default::default()
                }),
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(Fingerprint::of(&explicit, &[], false).as_str(), BEFORE_APPEARANCE);
    }

    #[test]
    fn each_appearance_field_changes_the_fingerprint_when_not_default() {
        use crate::domain::{ColorId, Reminder, ReminderMethod, Reminders};
        let base = Fingerprint::of(&draft("a", None), &[], false);
        let popup = |minutes| Reminder {
            method: ReminderMethod::Popup,
            minutes,
        };
        let reminders = |list: Vec<Reminder>| Appearance {
            reminders: Reminders::Custom(list),
            ..Appearance::default()
        };
        let changes = [
            Appearance {
                visibility: Visibility::Private,
                ..Appearance::default()
            },
            Appearance {
                visibility: Visibility::Public,
                ..Appearance::default()
            },
            Appearance {
                transparency: Transparency::Free,
                ..Appearance::default()
            },
            Appearance {
                color_id: Some("5".parse::<ColorId>().unwrap()),
                ..Appearance::default()
            },
            reminders(vec![popup(10)]),
            reminders(vec![popup(15)]),
            reminders(vec![Reminder {
                method: ReminderMethod::Email,
                minutes: 10,
            }]),
            // No reminders at all is not the calendar's default reminders.
            reminders(vec![]),
        ];
        let mut seen = std::collections::HashSet::from([base.clone()]);
        for appearance in changes {
            let mut d = draft("a", None);
            d.appearance = appearance;
            let fp = Fingerprint::of(&d, &[], false);
            assert!(seen.insert(fp), "{:?} gives a fingerprint seen before", d.appearance);
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // "ab" + "" must differ from "a" + "b".
        let mut one = draft("ab", None);
        one.location = None;
        let mut two = draft("a", None);
        two.location = Some("b".into());
        let mut three = draft("a", None);
        three.description = Some("b".into());
        assert_ne!(Fingerprint::of(&two, &[], false), Fingerprint::of(&three, &[], false));
        assert_ne!(Fingerprint::of(&one, &[], false), Fingerprint::of(&two, &[], false));
    }
}
