//! The fingerprint of a slot's synced content: a hash of the fields both sides share, in
//! canonical form. An event whose fingerprint equals the slot's `synced_fingerprint` says
//! nothing new: it is our own write coming back (the echo guard).

use std::fmt;

use sha2::{Digest, Sha256};

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
