//! sea-orm entities, one per table of DESIGN §3.

pub mod change_heads;
pub mod changes;
pub mod channels;
pub mod dedicated_calendars;
pub mod google_connections;
pub mod held_deletions;
pub mod idempotency_keys;
pub mod instances;
pub mod oauth_states;
pub mod occurrence_exceptions;
pub mod slot_links;
pub mod slots;
pub mod sync_events;
pub mod sync_settings;
pub mod sync_states;
pub mod users;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
