//! Typed states for assertions: read a slot's `sync.state` or a connection's `status` out
//! of an API answer as the enum the service uses, so a test compares variants (a typo is
//! a compile error, not an assertion that never matches).

use serde_json::Value;
pub use slotsync::api::slot_model::SyncStateName as SyncState;
pub use slotsync::domain::ConnectionStatus;

/// `sync.state` of a slot as `GET /slots/{id}` answers it.
pub fn sync_state(slot: &Value) -> SyncState {
    serde_json::from_value(slot["sync"]["state"].clone()).unwrap_or_else(|e| panic!("no sync state in {slot}: {e}"))
}

/// `status` of a connection as `GET /auth/google/connection` answers it.
pub fn connection_status(connection: &Value) -> ConnectionStatus {
    serde_json::from_value(connection["status"].clone())
        .unwrap_or_else(|e| panic!("no connection status in {connection}: {e}"))
}

/// Whether every slot of `slots` is in `state`.
pub fn all_in(slots: &[Value], state: SyncState) -> bool {
    slots.iter().all(|s| sync_state(s) == state)
}
