//! Which events created in Google become slots, and which of those slots are read-only:
//! the pure decision over an event's traits (its `eventType`, transparency, visibility,
//! the user's own answer, the organizer). The plan (`sync/plan.rs`) reads the traits off
//! Google's event and asks [`ImportFilter::verdict`]; the settings (`sync_settings.rs`)
//! say which filter a user has. Reasons are in `docs/import.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Google's special event types (everything but `default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpecialType {
    Birthday,
    FromGmail,
    OutOfOffice,
    FocusTime,
    WorkingLocation,
}

impl SpecialType {
    /// Every special type, in the order they are shown.
    pub const ALL: [SpecialType; 5] = [
        SpecialType::OutOfOffice,
        SpecialType::FocusTime,
        SpecialType::FromGmail,
        SpecialType::Birthday,
        SpecialType::WorkingLocation,
    ];

    /// Google's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialType::Birthday => "birthday",
            SpecialType::FromGmail => "fromGmail",
            SpecialType::OutOfOffice => "outOfOffice",
            SpecialType::FocusTime => "focusTime",
            SpecialType::WorkingLocation => "workingLocation",
        }
    }
}

impl fmt::Display for SpecialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpecialType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        SpecialType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            format!(
                "`{s}` is not a special event type; use outOfOffice, focusTime, fromGmail, birthday or workingLocation"
            )
        })
    }
}

/// What becomes of events of one special type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypePolicy {
    /// Not imported.
    Skip,
    /// Imported as a read-only slot (Google refuses most edits to it).
    ReadOnly,
    /// Imported as an ordinary slot.
    Import,
}

impl TypePolicy {
    /// The spelling in settings and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TypePolicy::Skip => "skip",
            TypePolicy::ReadOnly => "read_only",
            TypePolicy::Import => "import",
        }
    }
}

impl FromStr for TypePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(TypePolicy::Skip),
            "read_only" => Ok(TypePolicy::ReadOnly),
            "import" => Ok(TypePolicy::Import),
            other => Err(format!("`{other}` is not a policy; use skip, read_only or import")),
        }
    }
}

/// A policy per special type; types not named keep their default.
pub type TypePolicies = BTreeMap<SpecialType, TypePolicy>;

/// The deployment's default policies: out-of-office, focus time and Gmail events matter
/// when scheduling but Google refuses most edits to them (read-only); birthdays and
/// working locations are not time the user is busy (skipped).
pub fn default_type_policies() -> TypePolicies {
    TypePolicies::from([
        (SpecialType::OutOfOffice, TypePolicy::ReadOnly),
        (SpecialType::FocusTime, TypePolicy::ReadOnly),
        (SpecialType::FromGmail, TypePolicy::ReadOnly),
        (SpecialType::Birthday, TypePolicy::Skip),
        (SpecialType::WorkingLocation, TypePolicy::Skip),
    ])
}

/// Reads `type=policy` pairs separated by commas (`IMPORT_EVENT_TYPES`); types left out
/// keep [`default_type_policies`].
pub fn parse_type_policies(raw: &str) -> Result<TypePolicies, String> {
    let mut policies = default_type_policies();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, policy) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not `type=policy` (e.g. `outOfOffice=read_only`)"))?;
        policies.insert(kind.trim().parse()?, policy.trim().parse()?);
    }
    Ok(policies)
}

/// Which events created in Google are imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFilter {
    /// Skip events marked free (`transparency: transparent`).
    pub skip_free: bool,
    /// Skip events marked `private` or `confidential`.
    pub skip_private: bool,
    /// Skip meetings the user declined.
    pub skip_declined: bool,
    /// A policy for every special type.
    pub types: TypePolicies,
}

impl Default for ImportFilter {
    fn default() -> Self {
        ImportFilter {
            skip_free: false,
            skip_private: false,
            skip_declined: true,
            types: default_type_policies(),
        }
    }
}

/// What the filter needs to know of an event (read off Google's event by the plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTraits {
    /// `eventType` (`None` or `default` for ordinary events).
    pub event_type: Option<String>,
    /// `transparency: transparent` (the event does not block time).
    pub free: bool,
    /// `visibility: private | confidential`.
    pub private: bool,
    /// The user's own attendee entry answers `declined`.
    pub declined: bool,
    /// How many attendees the event lists (0: not a meeting).
    pub attendees: usize,
    /// `organizer.self` is true.
    pub organizer_self: bool,
}

/// Why an event is not imported (or an imported slot leaves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilteredOut {
    /// Its special type's policy is `skip`.
    EventType(SpecialType),
    /// It is marked free.
    Free,
    /// It is private or confidential.
    Private,
    /// The user declined it.
    Declined,
}

impl fmt::Display for FilteredOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilteredOut::EventType(t) => write!(f, "event_type:{t}"),
            FilteredOut::Free => f.write_str("free"),
            FilteredOut::Private => f.write_str("private"),
            FilteredOut::Declined => f.write_str("declined"),
        }
    }
}

/// How an imported event is shown, beside its content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMarks {
    /// Why the slot cannot be changed through the API (`event_type:outOfOffice`,
    /// `not_organizer`), or `None`.
    pub read_only_reason: Option<String>,
    /// The special event type, if any.
    pub event_type: Option<String>,
    /// For a meeting the user organises: how many attendees it lists.
    pub attendee_count: Option<i32>,
}

/// The filter's answer for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not imported.
    Skip(FilteredOut),
    /// Imported, shown with these marks.
    Import(SlotMarks),
}

impl ImportFilter {
    /// Whether `event` is imported, and how.
    pub fn verdict(&self, event: &EventTraits) -> Verdict {
        let special = event.event_type.as_deref().filter(|t| *t != "default");
        let mut read_only = None;
        if let Some(kind) = special {
            match kind.parse::<SpecialType>() {
                Ok(t) => match self.types.get(&t).copied().unwrap_or(TypePolicy::ReadOnly) {
                    TypePolicy::Skip => return Verdict::Skip(FilteredOut::EventType(t)),
                    TypePolicy::ReadOnly => read_only = Some(format!("event_type:{t}")),
                    TypePolicy::Import => {}
                },
                // A type Google added after this was written: its rules are unknown, so
                // it is shown but never written.
                Err(_) => read_only = Some(format!("event_type:{kind}")),
            }
        }
        if self.skip_free && event.free {
            return Verdict::Skip(FilteredOut::Free);
        }
        if self.skip_private && event.private {
            return Verdict::Skip(FilteredOut::Private);
        }
        if self.skip_declined && event.declined {
            return Verdict::Skip(FilteredOut::Declined);
        }
        let meeting = event.attendees > 0;
        if meeting && !event.organizer_self && read_only.is_none() {
            read_only = Some("not_organizer".to_owned());
        }
        Verdict::Import(SlotMarks {
            read_only_reason: read_only,
            event_type: special.map(str::to_owned),
            attendee_count: (meeting && event.organizer_self)
                .then_some(i32::try_from(event.attendees).unwrap_or(i32::MAX)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(t: &str) -> EventTraits {
        EventTraits {
            event_type: Some(t.to_owned()),
            ..Default::default()
        }
    }

    fn marks(v: Verdict) -> SlotMarks {
        match v {
            Verdict::Import(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_events_are_imported_as_ordinary_slots() {
        let f = ImportFilter::default();
        assert_eq!(marks(f.verdict(&typed("default"))), SlotMarks::default());
        assert_eq!(marks(f.verdict(&EventTraits::default())), SlotMarks::default());
    }

    #[test]
    fn special_types_follow_their_policy() {
        let f = ImportFilter::default();
        assert_eq!(
            f.verdict(&typed("birthday")),
            Verdict::Skip(FilteredOut::EventType(SpecialType::Birthday))
        );
        assert_eq!(
            f.verdict(&typed("workingLocation")),
            Verdict::Skip(FilteredOut::EventType(SpecialType::WorkingLocation))
        );
        for t in ["outOfOffice", "focusTime", "fromGmail"] {
            let m = marks(f.verdict(&typed(t)));
            assert_eq!(m.read_only_reason, Some(format!("event_type:{t}")));
            assert_eq!(m.event_type.as_deref(), Some(t));
        }
        let mut open = ImportFilter::default();
        open.types.insert(SpecialType::FocusTime, TypePolicy::Import);
        let m = marks(open.verdict(&typed("focusTime")));
        assert_eq!((m.read_only_reason, m.event_type.as_deref()), (None, Some("focusTime")));
    }

    #[test]
    fn an_unknown_type_is_shown_read_only() {
        let m = marks(ImportFilter::default().verdict(&typed("task")));
        assert_eq!(m.read_only_reason.as_deref(), Some("event_type:task"));
    }

    #[test]
    fn free_private_and_declined_events_are_skipped_when_asked() {
        let free = EventTraits {
            free: true,
            ..Default::default()
        };
        let private = EventTraits {
            private: true,
            ..Default::default()
        };
        let declined = EventTraits {
            declined: true,
            attendees: 2,
            ..Default::default()
        };
        let keep_all = ImportFilter {
            skip_declined: false,
            ..ImportFilter::default()
        };
        assert!(matches!(keep_all.verdict(&free), Verdict::Import(_)));
        assert!(matches!(keep_all.verdict(&private), Verdict::Import(_)));
        assert!(matches!(keep_all.verdict(&declined), Verdict::Import(_)));
        let strict = ImportFilter {
            skip_free: true,
            skip_private: true,
            skip_declined: true,
            ..ImportFilter::default()
        };
        assert_eq!(strict.verdict(&free), Verdict::Skip(FilteredOut::Free));
        assert_eq!(strict.verdict(&private), Verdict::Skip(FilteredOut::Private));
        assert_eq!(strict.verdict(&declined), Verdict::Skip(FilteredOut::Declined));
    }

    #[test]
    fn meetings_are_read_only_unless_the_user_organises_them() {
        let f = ImportFilter::default();
        let invited = EventTraits {
            attendees: 3,
            ..Default::default()
        };
        let m = marks(f.verdict(&invited));
        assert_eq!(m.read_only_reason.as_deref(), Some("not_organizer"));
        assert_eq!(m.attendee_count, None);
        let organised = EventTraits {
            attendees: 3,
            organizer_self: true,
            ..Default::default()
        };
        let m = marks(f.verdict(&organised));
        assert_eq!(m.read_only_reason, None);
        assert_eq!(m.attendee_count, Some(3));
    }

    #[test]
    fn type_policies_parse_over_the_defaults_and_refuse_garbage() {
        let p = parse_type_policies("birthday=import, focusTime=skip").unwrap();
        assert_eq!(p[&SpecialType::Birthday], TypePolicy::Import);
        assert_eq!(p[&SpecialType::FocusTime], TypePolicy::Skip);
        assert_eq!(p[&SpecialType::OutOfOffice], TypePolicy::ReadOnly);
        assert_eq!(parse_type_policies("").unwrap(), default_type_policies());
        assert!(parse_type_policies("party=skip").is_err());
        assert!(parse_type_policies("birthday=maybe").is_err());
        assert!(parse_type_policies("birthday").is_err());
    }
}
