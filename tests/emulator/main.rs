//! Conformance suite of the Google emulator: raw HTTP for exact wire details and the real
//! google-calendar3 client for what slotsync will actually send.

mod consent;
mod control;
mod deleted_calendar;
mod events;
mod faults;
mod helpers;
mod hub;
mod instances;
mod list;
mod oauth;
mod oauth_flow;
mod push;
