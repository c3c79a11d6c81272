//! Opaque sync and page tokens.
//!
//! A sync token encodes `(calendar, epoch, change sequence)`; bumping the calendar's
//! epoch invalidates every earlier token (410 `fullSyncRequired`). A page token encodes
//! the listing's snapshot sequence, the sync position it continues (if any), the sort key
//! of the last row served and a hash of the query, so pages stay stable.

use super::state::Calendar;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A position in a calendar's change log, handed out as `nextSyncToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPosition {
    /// Calendar id.
    #[serde(rename = "c")]
    pub calendar: String,
    /// Calendar epoch at issue time.
    #[serde(rename = "e")]
    pub epoch: u32,
    /// Every change with a sequence number above this one is newer than the token.
    #[serde(rename = "s")]
    pub seq: u64,
}

impl SyncPosition {
    /// The opaque token string.
    pub fn encode(&self) -> String {
        format!("CS{}", encode_json(self))
    }

    /// Decodes a token; `None` when it is not one of ours.
    pub fn decode(token: &str) -> Option<Self> {
        decode_json(token.strip_prefix("CS")?)
    }

    /// Whether the token still applies to `cal` (same calendar and epoch, not ahead).
    pub fn is_valid_for(&self, cal: &Calendar) -> bool {
        self.calendar == cal.id && self.epoch == cal.epoch && self.seq <= cal.seq
    }
}

/// Continuation of a listing, handed out as `nextPageToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    /// Calendar id.
    #[serde(rename = "c")]
    pub calendar: String,
    /// Calendar epoch when the listing started.
    #[serde(rename = "e")]
    pub epoch: u32,
    /// Change sequence when the listing started (becomes `nextSyncToken`).
    #[serde(rename = "n")]
    pub snapshot: u64,
    /// Sync position of an incremental listing.
    #[serde(rename = "f")]
    pub since: Option<u64>,
    /// Sort key of the last row served.
    #[serde(rename = "k")]
    pub after_key: String,
    /// Hash of the query the listing belongs to.
    #[serde(rename = "h")]
    pub query_hash: u64,
}

impl PageCursor {
    /// The opaque token string.
    pub fn encode(&self) -> String {
        format!("CP{}", encode_json(self))
    }

    /// Decodes a token; `None` when it is not one of ours.
    pub fn decode(token: &str) -> Option<Self> {
        decode_json(token.strip_prefix("CP")?)
    }
}

fn encode_json<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode_json<T: for<'de> Deserialize<'de>>(encoded: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_positions_round_trip_and_foreign_strings_do_not_decode() {
        let p = SyncPosition {
            calendar: "a@example.com".into(),
            epoch: 2,
            seq: 17,
        };
        assert_eq!(SyncPosition::decode(&p.encode()), Some(p));
        assert_eq!(SyncPosition::decode("garbage"), None);
        assert_eq!(SyncPosition::decode("CSnotbase64!"), None);
    }
}
