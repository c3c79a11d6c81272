//! A user's sync settings: what the user chose (each value optional) over the
//! deployment's defaults (the environment). Pure: the store keeps [`ChosenSettings`], the
//! engine reads [`SyncSettings`].

use super::import_filter::{ImportFilter, TypePolicies};
use super::ConflictPolicy;

/// The settings a pull and a push follow for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Import events created in Google.
    pub import: bool,
    /// Which of them.
    pub filter: ImportFilter,
    /// Who wins when both sides changed.
    pub conflict_policy: ConflictPolicy,
    /// How far back a full sync lists, in days.
    pub full_sync_window_days: u32,
}

/// What a user chose; `None` (or a type left out) follows the deployment's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChosenSettings {
    pub import: Option<bool>,
    pub skip_free: Option<bool>,
    pub skip_private: Option<bool>,
    pub skip_declined: Option<bool>,
    pub event_types: TypePolicies,
    pub conflict_policy: Option<ConflictPolicy>,
    pub full_sync_window_days: Option<u32>,
}

/// The longest full-sync window a user may choose, in days (as `FULL_SYNC_WINDOW_DAYS`).
pub const MAX_WINDOW_DAYS: u32 = 3_650;

impl ChosenSettings {
    /// The settings in effect: each choice over `defaults`.
    pub fn over(&self, defaults: &SyncSettings) -> SyncSettings {
        let mut types = defaults.filter.types.clone();
        types.extend(self.event_types.iter().map(|(t, p)| (*t, *p)));
        SyncSettings {
            import: self.import.unwrap_or(defaults.import),
            filter: ImportFilter {
                skip_free: self.skip_free.unwrap_or(defaults.filter.skip_free),
                skip_private: self.skip_private.unwrap_or(defaults.filter.skip_private),
                skip_declined: self.skip_declined.unwrap_or(defaults.filter.skip_declined),
                types,
            },
            conflict_policy: self.conflict_policy.unwrap_or(defaults.conflict_policy),
            full_sync_window_days: self.full_sync_window_days.unwrap_or(defaults.full_sync_window_days),
        }
    }

    /// Whether going from `before` to `after` changes what a full sync imports.
    pub fn changes_import(before: &SyncSettings, after: &SyncSettings) -> bool {
        before.import != after.import
            || before.filter != after.filter
            || before.full_sync_window_days != after.full_sync_window_days
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import_filter::{SpecialType, TypePolicy};

    fn defaults() -> SyncSettings {
        SyncSettings {
            import: true,
            filter: ImportFilter::default(),
            conflict_policy: ConflictPolicy::LatestWins,
            full_sync_window_days: 30,
        }
    }

    #[test]
    fn nothing_chosen_is_the_defaults() {
        assert_eq!(ChosenSettings::default().over(&defaults()), defaults());
    }

    #[test]
    fn choices_override_one_value_each() {
        let chosen = ChosenSettings {
            skip_free: Some(true),
            event_types: TypePolicies::from([(SpecialType::Birthday, TypePolicy::Import)]),
            full_sync_window_days: Some(7),
            ..Default::default()
        };
        let s = chosen.over(&defaults());
        assert!(s.filter.skip_free);
        assert!(s.filter.skip_declined, "kept from the defaults");
        assert_eq!(s.filter.types[&SpecialType::Birthday], TypePolicy::Import);
        assert_eq!(s.filter.types[&SpecialType::WorkingLocation], TypePolicy::Skip);
        assert_eq!(s.full_sync_window_days, 7);
        assert!(ChosenSettings::changes_import(&defaults(), &s));
        let policy_only = ChosenSettings {
            conflict_policy: Some(ConflictPolicy::AppWins),
            ..Default::default()
        }
        .over(&defaults());
        assert!(!ChosenSettings::changes_import(&defaults(), &policy_only));
    }
}
