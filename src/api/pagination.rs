//! Opaque cursors and page sizes shared by list routes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::ApiError;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 500;

/// Checks `limit` (1..=500, default 50).
pub fn page_size(limit: Option<u32>) -> Result<u64, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(u64::from(n)),
        n => Err(ApiError::invalid(
            "limit",
            format!("{n} is out of range; expected 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Wraps a position as an opaque cursor.
pub fn encode(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// Reads a cursor back; anything this server did not produce is a 400 on `cursor`.
pub fn decode(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor returned by this API"))
}
