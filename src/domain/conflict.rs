//! `ConflictRecord`: what is logged when a slot changed on both sides, written by the push
//! and the pull alike and read back typed by the API (one shape, serialised in one place).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::states::{ConflictPolicy, Winner};

/// What kind of conflict it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictCase {
    /// Edited on both sides since the last sync.
    BothChanged,
    /// Deleted in Google, edited here.
    DeletedInGoogle,
}

impl ConflictCase {
    /// The logged spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictCase::BothChanged => "both_changed",
            ConflictCase::DeletedInGoogle => "deleted_in_google",
        }
    }
}

/// Which direction found the conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    /// A push found Google's event changed (412 on `If-Match`, or deleted).
    Push,
    /// A pull found the slot changed locally.
    Pull,
}

impl DetectedBy {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectedBy::Push => "push",
            DetectedBy::Pull => "pull",
        }
    }
}

/// A resolved conflict, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    pub kind: ConflictCase,
    pub policy: ConflictPolicy,
    pub winner: Winner,
    /// The slot's version when the conflict was resolved.
    pub slot_version: i64,
    pub slot_updated_at: DateTime<Utc>,
    /// When Google's event last changed, when known.
    pub google_updated_at: Option<DateTime<Utc>>,
    pub detected_by: DetectedBy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_the_spelling_clients_have_always_read() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let record = ConflictRecord {
            kind: ConflictCase::DeletedInGoogle,
            policy: ConflictPolicy::LatestWins,
            winner: Winner::App,
            slot_version: 3,
            slot_updated_at: at,
            google_updated_at: None,
            detected_by: DetectedBy::Push,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "deleted_in_google", "policy": "latest_wins", "winner": "app",
                "slot_version": 3, "slot_updated_at": "2026-11-30T10:00:00Z",
                "google_updated_at": null, "detected_by": "push",
            })
        );
        assert_eq!(serde_json::from_value::<ConflictRecord>(json).unwrap(), record);
    }
}
