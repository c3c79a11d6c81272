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
    }
}
