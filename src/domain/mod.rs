//! Pure types and rules: no I/O. Everything above this layer speaks in these terms.

pub mod ids;
pub mod slot;
pub mod states;

pub use ids::{EventId, SlotId, UserId};
pub use slot::{SlotDraft, SlotFields, SlotTiming, ValidationError};
pub use states::{PushState, Source};
