//! slotsync: two-way sync between user-owned time slots and Google Calendar.
//!
//! Layers (dependencies point downward only): `api` → `sync` → {`google`, `store`} →
//! `domain`; `jobs` calls `sync`. `emulator` is a self-contained local Google used by the
//! tests and the demo.

pub mod api;
pub mod app;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod emulator;
pub mod google;
pub mod jobs;
pub mod observe;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
