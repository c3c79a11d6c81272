//! sea-orm entities, one per table of DESIGN §3.

pub mod channels;
pub mod google_connections;
pub mod idempotency_keys;
pub mod oauth_states;
pub mod slots;
pub mod sync_events;
pub mod sync_states;
pub mod users;
