//! Database migrations for slotsync. `Migrator` is run at startup by the service and by
//! `slotsync migrate`; the `migration` binary offers the same for operators.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_schema;
mod m20261121_000002_create_oauth_states;
mod m20261121_000003_push_status;
mod m20261121_000004_pull_and_channels;
mod m20261121_000005_live_slots_index;
mod m20261130_000006_connection_lifecycle;
mod m20261130_000007_retention_indexes;
mod m20261130_000008_idempotency_slot_id;
mod m20261130_000009_change_log;
mod m20261130_000010_webhooks;
mod m20261130_000011_occurrence_exceptions;
mod m20261130_000012_fleet_schedule;
mod m20261130_000013_sync_settings;
mod m20261130_000014_slot_appearance;

/// Every migration of the schema, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_schema::Migration),
            Box::new(m20261121_000002_create_oauth_states::Migration),
            Box::new(m20261121_000003_push_status::Migration),
            Box::new(m20261121_000004_pull_and_channels::Migration),
            Box::new(m20261121_000005_live_slots_index::Migration),
            Box::new(m20261130_000006_connection_lifecycle::Migration),
            Box::new(m20261130_000007_retention_indexes::Migration),
            Box::new(m20261130_000008_idempotency_slot_id::Migration),
            Box::new(m20261130_000009_change_log::Migration),
            Box::new(m20261130_000010_webhooks::Migration),
            Box::new(m20261130_000011_occurrence_exceptions::Migration),
            Box::new(m20261130_000012_fleet_schedule::Migration),
            Box::new(m20261130_000013_sync_settings::Migration),
            Box::new(m20261130_000014_slot_appearance::Migration),
        ]
    }
}
