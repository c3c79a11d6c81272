//! The small enumerations stored as strings.

use std::str::FromStr;

/// Where a slot was born.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Created through the slotsync API.
    App,
    /// Imported from an event created in Google Calendar.
    Google,
}

/// Where a slot stands in the push outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Google holds the slot's current version.
    Clean,
    /// A local change waits to be pushed.
    Dirty,
    /// Pushing failed for good; `last_push_error` says why.
    Failed,
    /// Pushing is paused (breaker tripped, re-authorisation needed, or sync stopped).
    Paused,
}

/// Who wins when both sides changed a slot since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// The side changed last wins (the slot's `updated_at` against the event's `updated`).
    #[default]
    LatestWins,
    /// slotsync's version always wins.
    AppWins,
    /// Google's version always wins.
    GoogleWins,
}

/// The side a conflict resolution keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// slotsync's version.
    App,
    /// Google's version.
    Google,
}

impl ConflictPolicy {
    /// The winner, given when each side last changed (`None` when a side's time is unknown;
    /// an unknown time loses, so a change is never dropped for want of a clock).
    pub fn winner(
        self,
        app_changed: Option<chrono::DateTime<chrono::Utc>>,
        google_changed: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Winner {
        match self {
            ConflictPolicy::AppWins => Winner::App,
            ConflictPolicy::GoogleWins => Winner::Google,
            ConflictPolicy::LatestWins => match (app_changed, google_changed) {
                (Some(app), Some(google)) if google > app => Winner::Google,
                (None, Some(_)) => Winner::Google,
                _ => Winner::App,
            },
        }
    }
}

macro_rules! string_enum {
    ($ty:ty, $($variant:path => $text:literal),+ $(,)?) => {
        impl $ty {
            /// The stored and displayed spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($ty))),
                }
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(Source, Source::App => "app", Source::Google => "google");
string_enum!(
    PushState,
    PushState::Clean => "clean",
    PushState::Dirty => "dirty",
    PushState::Failed => "failed",
    PushState::Paused => "paused",
);
string_enum!(Winner, Winner::App => "app", Winner::Google => "google");
string_enum!(
    ConflictPolicy,
    ConflictPolicy::LatestWins => "latest_wins",
    ConflictPolicy::AppWins => "app_wins",
    ConflictPolicy::GoogleWins => "google_wins",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_spelling() {
        for s in [PushState::Clean, PushState::Dirty, PushState::Failed, PushState::Paused] {
            assert_eq!(s.as_str().parse::<PushState>().unwrap(), s);
        }
        for s in [Source::App, Source::Google] {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
        }
        assert!("nope".parse::<PushState>().is_err());
        for p in [
            ConflictPolicy::LatestWins,
            ConflictPolicy::AppWins,
            ConflictPolicy::GoogleWins,
        ] {
            assert_eq!(p.as_str().parse::<ConflictPolicy>().unwrap(), p);
        }
    }

    #[test]
    fn latest_wins_compares_change_times_and_ties_go_to_the_app() {
        let t = |s: &str| Some(s.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        let p = ConflictPolicy::LatestWins;
        assert_eq!(
            p.winner(t("2026-01-01T10:00:00Z"), t("2026-01-01T10:00:01Z")),
            Winner::Google
        );
        assert_eq!(
            p.winner(t("2026-01-01T10:00:01Z"), t("2026-01-01T10:00:00Z")),
            Winner::App
        );
        assert_eq!(
            p.winner(t("2026-01-01T10:00:00Z"), t("2026-01-01T10:00:00Z")),
            Winner::App
        );
        assert_eq!(p.winner(t("2026-01-01T10:00:00Z"), None), Winner::App);
        assert_eq!(
            ConflictPolicy::GoogleWins.winner(t("2030-01-01T00:00:00Z"), None),
            Winner::Google
        );
        assert_eq!(
            ConflictPolicy::AppWins.winner(None, t("2030-01-01T00:00:00Z")),
            Winner::App
        );
    }
}
