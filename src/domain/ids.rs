//! Newtypes for identifiers that are easy to mix up.

use std::fmt;

use uuid::Uuid;

/// A slotsync user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

/// A slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotId(pub Uuid);

impl SlotId {
    /// A fresh random slot id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for SlotId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Google Calendar event id. Ids of events slotsync creates are derived from the slot id,
/// so a retried insert after a lost response is answered `409 duplicate` instead of
/// creating a second event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId(String);

impl EventId {
    /// The event id of a slot: the 16 bytes of its uuid in lowercase base32hex
    /// (26 characters of `0-9a-v`), which Google accepts as a client-supplied id.
    pub fn from_slot(slot: SlotId) -> Self {
        let encoded = data_encoding::BASE32HEX_NOPAD.encode(slot.0.as_bytes());
        Self(encoded.to_ascii_lowercase())
    }

    /// The id under which a slot is created again after its event `deleted` was deleted
    /// in Google (a deleted id can never be reused). It is derived from the slot and the
    /// deleted id only, so every retry of the re-creation, whatever the slot's version by
    /// then, meets the same id (`409 duplicate`) instead of creating another event.
    pub fn recreated(slot: SlotId, deleted: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(slot.0.as_bytes())
            .chain_update(deleted.as_bytes())
            .finalize();
        Self(
            data_encoding::BASE32HEX_NOPAD
                .encode(&digest[..20])
                .to_ascii_lowercase(),
        )
    }

    /// Wraps an id read from Google (any id Google produced is accepted as is).
    pub fn from_google(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The slot an event id was derived from, if it was.
    pub fn to_slot(&self) -> Option<SlotId> {
        if self.0.len() != 26 {
            return None;
        }
        let bytes = data_encoding::BASE32HEX_NOPAD
            .decode(self.0.to_ascii_uppercase().as_bytes())
            .ok()?;
        Uuid::from_slice(&bytes).ok().map(SlotId)
    }

    /// The id as Google sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_from_slot_is_26_base32hex_chars_and_round_trips() {
        for _ in 0..100 {
            let slot = SlotId::new();
            let id = EventId::from_slot(slot);
            assert_eq!(id.as_str().len(), 26);
            assert!(id.as_str().chars().all(|c| matches!(c, '0'..='9' | 'a'..='v')));
            assert_eq!(id.to_slot(), Some(slot));
        }
    }

    #[test]
    fn event_id_of_a_known_uuid_is_stable() {
        let slot = SlotId(Uuid::nil());
        assert_eq!(EventId::from_slot(slot).as_str(), "00000000000000000000000000");
        let slot = SlotId(Uuid::from_u128(u128::MAX));
        assert_eq!(EventId::from_slot(slot).as_str(), "vvvvvvvvvvvvvvvvvvvvvvvvvs");
    }

    #[test]
    fn recreated_ids_are_valid_google_ids_one_per_deleted_event() {
        let slot = SlotId::new();
        let first = EventId::from_slot(slot);
        let a = EventId::recreated(slot, first.as_str());
        assert_eq!(a, EventId::recreated(slot, first.as_str()), "the same for every retry");
        assert_ne!(
            a,
            EventId::recreated(slot, a.as_str()),
            "a deleted re-creation leads on"
        );
        assert_ne!(a, EventId::recreated(SlotId::new(), first.as_str()));
        assert_ne!(a, first);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| matches!(c, '0'..='9' | 'a'..='v')));
        assert_eq!(a.to_slot(), None);
    }

    #[test]
    fn foreign_event_ids_map_to_no_slot() {
        assert_eq!(EventId::from_google("abc123").to_slot(), None);
    }
}
