//! The API through a typed client that nobody here wrote: `progenitor` (Oxide's OpenAPI
//! client generator) builds it at compile time from the committed `openapi/openapi.json`,
//! and these tests drive the main flows with it against the real service and the Google
//! emulator. A spec that progenitor cannot read, or that disagrees with what the service
//! answers, fails here: the build breaks, or a typed call gets an unexpected answer.
//!
//! How the client is generated, and what had to be chosen for it (progenitor's own
//! options only):
//! - progenitor 0.11: the newest release whose generated code uses reqwest 0.12, the
//!   `reqwest` this crate already has (later releases generate for reqwest 0.13, and the
//!   generated code names `::reqwest` itself, so it cannot be pointed at a renamed crate).
//! - `interface = Builder`: `client.list_slots().limit(..).cursor(..).send()`; the default
//!   positional style takes every optional parameter as an `Option` argument.
//! - `tags = Merged`: every operation is a method of `Client`, no per-tag traits to import.
//! - `derives = [PartialEq]`, so whole answers compare (a replayed slot with the first
//!   one); typify derives it only for simple enums and string newtypes.
//! - progenitor ignores `securitySchemes`: the bearer token is a default header of the
//!   `reqwest::Client` handed to `Client::new_with_client`, one client per token.
//! - Header parameters (`Idempotency-Key`, `If-Match`) are builder methods; response
//!   headers (`ETag`, `Location`) are not typed, `ResponseValue::headers()` has them.
//! - Error answers are `Error::ErrorResponse(ResponseValue<types::ErrorBody>)`; the tests
//!   assert on the status and `ErrorBody::code`.
//! - Constrained strings (`minLength`, `maxLength`, `pattern`) become checked newtypes
//!   (`TimedSlotInputTitle`, `NewUserEmail`, ...) set through the generated builders; the
//!   `oneOf` slot body is the untagged enum `SlotBody`, `From` either variant.
//! - typify maps `date-time` to `DateTime<Utc>` (the offset of the slot's time zone that
//!   the service writes is dropped on reading), `date` to `NaiveDate`, and the integer
//!   `limit` (`minimum: 1`) to `NonZeroU32`.
//! - Every request also carries progenitor's `api-version` header (the spec's
//!   `info.version`); the service ignores it.
//!
//! Not driven here: the OAuth callback (progenitor types only its 200; the 302 is neither
//! a success nor an error to it, so it would be `Error::UnexpectedResponse`, and reqwest
//! follows it by default), so connecting goes through the browser-like helper
//! `ConnectedApp::connect_and_settle`.

use std::num::NonZeroU32;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::helpers::{spawn_app, spawn_app_with_google, wait_until, TestApp, TestUser, ADMIN_TOKEN};

/// The generated client: `api::Client`, and the schemas as `api::types::*`.
mod api {
    progenitor::generate_api!(
        spec = "openapi/openapi.json",
        interface = Builder,
        tags = Merged,
        derives = [PartialEq],
    );
}

use api::types::{
    AllDaySlotInput, ErrorBody, NewUser, NewUserDisplayName, SlotSource, SyncStateName, TimedSlotInput,
    TimedSlotInputDescription,
};
use api::{Error, ResponseValue};

/// A generated client for the service, sending `token` as the bearer token.
fn client(app: &TestApp, token: &str) -> api::Client {
    let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    api::Client::new_with_client(&app.address, http)
}

/// The error answer of a call that must fail with `status`, as the generated type.
fn error_body<T: std::fmt::Debug>(result: Result<ResponseValue<T>, Error<ErrorBody>>, status: u16) -> ErrorBody {
    match result {
        Err(Error::ErrorResponse(answer)) => {
            assert_eq!(answer.status().as_u16(), status, "{answer:?}");
            let body = answer.into_inner();
            assert!(!body.message.is_empty(), "{body:?}");
            body
        }
        other => panic!("expected an error answer with status {status}, got {other:?}"),
    }
}

/// The `ETag` response header.
fn etag<T>(answer: &ResponseValue<T>) -> &str {
    answer.headers()["etag"].to_str().unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

fn day(yyyy_mm_dd: &str) -> NaiveDate {
    yyyy_mm_dd.parse().unwrap()
}

/// A page size for `limit`.
fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A timed slot's input, built with the generated builder (which checks the title).
fn timed(title: &str, start: &str, end: &str) -> TimedSlotInput {
    TimedSlotInput::builder()
        .title(title)
        .start(at(start))
        .end(at(end))
        .timezone(Some("Europe/Paris".to_owned()))
        .try_into()
        .unwrap()
}

/// Creates a user through the generated client, as the admin.
async fn create_user(admin: &api::Client, email: &str) -> TestUser {
    let created = admin
        .create_user()
        .body(NewUser::builder().email(email))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created = created.into_inner();
    TestUser {
        id: created.user.id.to_string(),
        email: email.to_owned(),
        token: created.api_token,
    }
}

#[tokio::test]
async fn users_are_created_listed_and_rotate_their_token_through_the_generated_client() {
    let app = spawn_app().await;
    let admin = client(&app, ADMIN_TOKEN);

    let name: NewUserDisplayName = "Ada".parse().unwrap();
    let created = admin
        .create_user()
        .body_map(|b| b.email("Ada@Example.com").display_name(Some(name)))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created = created.into_inner();
    assert_eq!(created.user.email, "ada@example.com");
    assert_eq!(created.user.display_name.as_deref(), Some("Ada"));
    assert!(created.api_token.starts_with("ss_"), "{}", created.api_token);
    let bob = admin
        .create_user()
        .body_map(|b| b.email("bob@example.com"))
        .send()
        .await
        .unwrap()
        .into_inner();

    let taken = admin
        .create_user()
        .body_map(|b| b.email("ADA@example.com"))
        .send()
        .await;
    assert_eq!(error_body(taken, 409).code, "duplicate");

    // Two pages of one, by email.
    let first = admin.list_users().limit(limit(1)).send().await.unwrap().into_inner();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].id, created.user.id);
    let cursor = first.next_cursor.expect("a second page");
    let second = admin
        .list_users()
        .limit(limit(1))
        .cursor(cursor)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].id, bob.user.id);
    let all = admin.list_users().send().await.unwrap().into_inner();
    assert_eq!(all.items.len(), 2);
    assert_eq!(all.next_cursor, None);

    let ada = client(&app, &created.api_token);
    let me = ada.get_me().send().await.unwrap().into_inner();
    assert_eq!(me, created.user);
    assert_eq!(error_body(ada.list_users().send().await, 401).code, "unauthorized");

    let rotated = ada.rotate_own_token().send().await.unwrap().into_inner();
    assert_ne!(rotated.api_token, created.api_token);
    assert_eq!(error_body(ada.get_me().send().await, 401).code, "unauthorized");
    let ada = client(&app, &rotated.api_token);
    assert_eq!(ada.get_me().send().await.unwrap().into_inner().id, created.user.id);
}

#[tokio::test]
async fn slots_go_through_create_get_list_replace_and_delete_with_the_generated_client() {
    let app = spawn_app().await;
    let admin = client(&app, ADMIN_TOKEN);
    let user = create_user(&admin, "u@example.com").await;
    let api = client(&app, &user.token);

    // Create with an Idempotency-Key; the same key and body replay the first answer.
    let input = timed("Focus", "2026-12-01T09:00:00+01:00", "2026-12-01T10:30:00+01:00");
    let created = api
        .create_slot()
        .idempotency_key("key-1")
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(etag(&created), "\"1\"");
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let slot = created.into_inner();
    assert!(location.ends_with(&format!("/slots/{}", slot.id)), "{location}");
    assert_eq!(slot.title, "Focus");
    assert_eq!(slot.start, at("2026-12-01T08:00:00Z"));
    assert_eq!(slot.end, at("2026-12-01T09:30:00Z"));
    assert_eq!(slot.timezone, "Europe/Paris");
    assert!(!slot.all_day);
    assert_eq!(slot.version, 1);
    assert_eq!(slot.source, SlotSource::App);
    assert_eq!(slot.sync.state, SyncStateName::Pending);
    assert!(!slot.deleted);

    let replayed = api
        .create_slot()
        .idempotency_key("key-1")
        .body(input)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status().as_u16(), 201);
    assert_eq!(replayed.into_inner(), slot);

    let reused = api
        .create_slot()
        .idempotency_key("key-1")
        .body(timed("Other", "2026-12-01T09:00:00+01:00", "2026-12-01T10:30:00+01:00"))
        .send()
        .await;
    let err = error_body(reused, 422);
    assert_eq!(err.code, "idempotency_key_reused");
    assert_eq!(err.field.as_deref(), Some("Idempotency-Key"));

    // An all-day slot: dates, the end exclusive.
    let holiday: AllDaySlotInput = AllDaySlotInput::builder()
        .title("Holiday")
        .all_day(true)
        .start_date(day("2026-12-24"))
        .end_date(day("2026-12-27"))
        .timezone(Some("Europe/Paris".to_owned()))
        .try_into()
        .unwrap();
    let holiday = api.create_slot().body(holiday).send().await.unwrap().into_inner();
    assert!(holiday.all_day);
    assert_eq!(holiday.start_date, Some(day("2026-12-24")));
    assert_eq!(holiday.end_date, Some(day("2026-12-27")));
    assert_eq!(holiday.start, at("2026-12-24T00:00:00+01:00"));
    assert_eq!(holiday.end, at("2026-12-27T00:00:00+01:00"));

    let got = api.get_slot().id(slot.id).send().await.unwrap();
    assert_eq!(etag(&got), "\"1\"");
    assert_eq!(got.into_inner(), slot);

    // Listed by start, one a page.
    let page = api.list_slots().limit(limit(1)).send().await.unwrap().into_inner();
    assert_eq!(page.items, std::slice::from_ref(&slot));
    let next = page.next_cursor.expect("a second page");
    let page = api
        .list_slots()
        .limit(limit(1))
        .cursor(next)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.items, std::slice::from_ref(&holiday));
    assert_eq!(page.next_cursor, None);
    let late_december = api
        .list_slots()
        .from(at("2026-12-20T00:00:00Z"))
        .to(at("2027-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(late_december.items, std::slice::from_ref(&holiday));

    // Replace with If-Match; a stale version is refused and changes nothing.
    let description: TimedSlotInputDescription = "no meetings".parse().unwrap();
    let replacement: TimedSlotInput = TimedSlotInput::builder()
        .title("Deep focus")
        .description(Some(description))
        .start(at("2026-12-01T09:00:00+01:00"))
        .end(at("2026-12-01T11:00:00+01:00"))
        .timezone(Some("Europe/Paris".to_owned()))
        .try_into()
        .unwrap();
    let replaced = api
        .replace_slot()
        .id(slot.id)
        .if_match("\"1\"")
        .body(replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&replaced), "\"2\"");
    let replaced = replaced.into_inner();
    assert_eq!(replaced.title, "Deep focus");
    assert_eq!(replaced.description.as_deref(), Some("no meetings"));
    assert_eq!(replaced.end, at("2026-12-01T10:00:00Z"));
    assert_eq!(replaced.version, 2);

    let stale = api
        .replace_slot()
        .id(slot.id)
        .if_match("\"1\"")
        .body(timed("Lost", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .send()
        .await;
    let err = error_body(stale, 412);
    assert_eq!(err.code, "version_mismatch");
    assert_eq!(err.field.as_deref(), Some("If-Match"));
    let now = api.get_slot().id(slot.id).send().await.unwrap().into_inner();
    assert_eq!(now, replaced);

    // Delete: 204, then the slot is gone for get and for a second delete.
    let deleted = api.delete_slot().id(slot.id).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let gone = api.get_slot().id(slot.id).send().await;
    assert_eq!(error_body(gone, 404).code, "not_found");
    let again = api.delete_slot().id(slot.id).send().await;
    assert_eq!(error_body(again, 404).code, "not_found");
    let left = api.list_slots().send().await.unwrap().into_inner();
    assert_eq!(left.items, std::slice::from_ref(&holiday));
    let with_deleted = api
        .list_slots()
        .include_deleted(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(with_deleted.items.iter().any(|s| s.id == slot.id && s.deleted));
}

#[tokio::test]
async fn connection_and_sync_status_before_and_after_connecting_through_the_generated_client() {
    let ctx = spawn_app_with_google().await;
    let admin = client(&ctx.app, ADMIN_TOKEN);
    let user = create_user(&admin, "g@example.com").await;
    let api = client(&ctx.app, &user.token);

    let connection = api.get_connection().send().await.unwrap().into_inner();
    assert!(!connection.connected);
    assert_eq!(connection.status, None);
    assert_eq!(connection.google_email, None);
    assert!(connection.granted_scopes.is_empty());
    let status = api.get_sync_status().send().await.unwrap().into_inner();
    assert_eq!(status.connection, None);
    assert!(!status.pull.sync_token_present);
    assert!(status.pull.channels.is_empty());
    assert_eq!(status.outbox.pending, 0);
    assert_eq!(status.held_deletions, 0);

    ctx.app.connect_and_settle(&user).await;

    let connection = api.get_connection().send().await.unwrap().into_inner();
    assert!(connection.connected);
    assert_eq!(connection.status.as_deref(), Some("active"));
    assert_eq!(connection.google_email.as_deref(), Some("g@example.com"));
    assert_eq!(connection.calendar_id.as_deref(), Some("primary"));
    assert!(connection.has_required_scopes);
    assert!(connection.missing_scopes.is_empty());
    assert!(!connection.granted_scopes.is_empty());
    assert!(connection.connected_at.is_some());
    assert_eq!(connection.next_step, None);
    let status = api.get_sync_status().send().await.unwrap().into_inner();
    assert_eq!(status.connection.as_deref(), Some("active"));
    assert!(status.pull.sync_token_present);
    assert!(status.pull.last_full_sync_at.is_some());
    assert_eq!(status.pull.last_error, None);

    // A slot created through the generated client reaches Google, as its status shows.
    let slot = api
        .create_slot()
        .body(timed("Synced", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"))
        .send()
        .await
        .unwrap()
        .into_inner();
    wait_until("the slot is synced", std::time::Duration::from_secs(30), || async {
        let now = api.get_slot().id(slot.id).send().await.unwrap().into_inner();
        now.sync.state == SyncStateName::Synced
    })
    .await;
    let now = api.get_slot().id(slot.id).send().await.unwrap().into_inner();
    assert!(now.sync.google_event_id.is_some());
    assert!(now.sync.last_synced_at.is_some());
    let status = api.get_sync_status().send().await.unwrap().into_inner();
    assert_eq!(status.outbox.synced, 1);
    assert_eq!(status.outbox.pending, 0);
    assert!(status.recent_errors.is_empty());
}
