//! Pure types and rules: no I/O. Everything above this layer speaks in these terms.

pub mod appearance;
pub mod backoff;
pub mod breaker;
pub mod conflict;
pub mod delivery;
pub mod fingerprint;
pub mod ids;
pub mod import_filter;
pub mod recurrence;
pub mod schedule;
pub mod slot;
pub mod states;
pub mod sync_settings;

pub use appearance::{
    Appearance, AppearanceFields, ColorId, Reminder, ReminderFields, ReminderMethod, Reminders, Transparency,
    Visibility,
};
pub use backoff::Backoff;
pub use breaker::{BreakerRule, SlotBreaker};
pub use conflict::{ConflictCase, ConflictRecord, DetectedBy};
pub use delivery::RetrySchedule;
pub use fingerprint::Fingerprint;
pub use ids::{EventId, SlotId, UserId};
pub use import_filter::{EventTraits, FilteredOut, ImportFilter, SlotMarks, SpecialType, TypePolicy, Verdict};
pub use recurrence::{OccurrenceKey, Recurrence};
pub use schedule::PullCadence;
pub use slot::{SlotDraft, SlotFields, SlotTiming, ValidationError};
pub use states::{
    AuditKind, ChangeKind, ChangeOrigin, ConflictPolicy, ConnectionStatus, OccurrenceOrigin, PushState, Side, Source,
    Winner,
};
pub use sync_settings::{ChosenSettings, SyncSettings};
