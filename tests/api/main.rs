//! Integration tests: the real service on a random port, its own database per test
//! (a temporary SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set),
//! driven over HTTP.

mod changes;
mod channels;
mod cli;
mod convergence;
mod demo;
mod fairness;
mod generated_client;
mod google_connect;
mod google_tokens;
mod group_commit;
mod health;
mod helpers;
mod import_settings;
mod lifecycle;
mod metrics;
mod openapi;
mod outbound_webhooks;
mod processes;
mod pull;
mod push;
mod rate_limit;
mod rate_limit_guard;
mod recurrence;
mod recurrence_two_way;
mod retention;
mod slot_fields;
mod slots;
mod surprising_answers;
mod two_way;
mod users;
mod validation;
mod webhooks;
