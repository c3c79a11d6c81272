//! Conformance suite of the Google emulator: raw HTTP for exact wire details and the real
//! google-calendar3 client for what slotsync will actually send.

mod batching;
mod consent;
mod control;
mod deleted_calendar;
mod event_types;
mod events;
mod faults;
mod fields;
mod helpers;
mod hub;
mod instances;
mod list;
mod meetings;
mod oauth;
mod oauth_flow;
mod push;
mod surprising_answers;
