//! The control API: users, tokens, reset, stats, event dumps, invalidation.

use crate::helpers::{timed_event, TestGoogle};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn creating_a_user_gives_a_primary_calendar_named_by_the_email() {
    let google = TestGoogle::start().await;
    let a = google
        .control("/users", json!({"email": "carol@example.com", "name": "Carol"}))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["email"], "carol@example.com");
    assert_eq!(a.body["calendar_id"], "carol@example.com");
    let again = google.control("/users", json!({"email": "carol@example.com"})).await;
    assert_eq!(again.body["sub"], a.body["sub"], "creating twice is idempotent");
    assert_eq!(google.control("/users", json!({"email": "nope"})).await.status, 400);
}

#[tokio::test]
async fn the_event_dump_includes_deleted_events_in_full() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let ev = google
        .insert(&t, "primary", timed_event("kept in the dump", 3, 9))
        .await;
    google
        .send(
            Method::DELETE,
            &format!("/calendar/v3/calendars/primary/events/{}", ev["id"].as_str().unwrap()),
            Some(&t),
            None,
            &[],
        )
        .await;
    let dump = google
        .send(
            Method::GET,
            "/_emulator/calendars/ann%40example.com/events",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(dump.status, 200);
    assert_eq!(dump.body["items"][0]["status"], "cancelled");
    assert_eq!(dump.body["items"][0]["summary"], "kept in the dump");
    assert_eq!(
        google
            .send(Method::GET, "/_emulator/calendars/none@x/events", None, None, &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn reset_forgets_users_tokens_events_and_counters_but_keeps_clients() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    google
        .control(
            "/clients",
            json!({"client_id": "kept", "client_secret": "s", "redirect_uris": ["http://127.0.0.1:1/cb"]}),
        )
        .await;
    assert_eq!(google.control("/reset", json!({})).await.status, 200);
    assert_eq!(
        google.get("/calendar/v3/calendars/primary/events", &t).await.status,
        401
    );
    let users = google.send(Method::GET, "/_emulator/users", None, None, &[]).await;
    assert_eq!(users.body["users"], json!([]));
    let stats = google.stats().await;
    assert_eq!(
        stats["requests"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["events.list"]
    );
    let (status, _) = crate::oauth_flow::authorize(
        &google,
        &[
            ("client_id", "kept"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 302);
}

#[tokio::test]
async fn stats_count_requests_by_operation_and_status() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let ev = google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    let path = format!("/calendar/v3/calendars/primary/events/{}", ev["id"].as_str().unwrap());
    google.get(&path, &t).await;
    google.get("/calendar/v3/calendars/primary/events/missing00", &t).await;
    google.send(Method::DELETE, &path, Some(&t), None, &[]).await;
    let stats = google.stats().await;
    assert_eq!(stats["requests"]["events.insert"], json!({"200": 1}));
    assert_eq!(stats["requests"]["events.get"], json!({"200": 1, "404": 1}));
    assert_eq!(stats["requests"]["events.delete"], json!({"204": 1}));
    assert_eq!(
        google
            .send(Method::DELETE, "/_emulator/stats", None, None, &[])
            .await
            .status,
        200
    );
    assert_eq!(google.stats().await["requests"], json!({}));
}

#[tokio::test]
async fn tokens_minted_by_the_control_api_act_as_the_user_and_can_be_revoked() {
    let google = TestGoogle::start().await;
    let t = google.user_token("dave@example.com").await;
    let list = google.get("/calendar/v3/users/me/calendarList", &t).await;
    assert_eq!(list.body["items"][0]["id"], "dave@example.com");
    assert_eq!(
        google
            .control("/tokens/revoke", json!({"email": "dave@example.com"}))
            .await
            .status,
        200
    );
    assert_eq!(google.get("/calendar/v3/users/me/calendarList", &t).await.status, 401);
    assert_eq!(google.control("/tokens/revoke", json!({})).await.status, 400);
}

#[tokio::test]
async fn invalidating_one_calendar_leaves_other_calendars_tokens_valid() {
    let google = TestGoogle::start().await;
    let (ann, bob) = (
        google.user_token("ann@example.com").await,
        google.user_token("bob@example.com").await,
    );
    let token_of = |t: String| {
        let google = &google;
        async move {
            google.get("/calendar/v3/calendars/primary/events", &t).await.body["nextSyncToken"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (a, b) = (token_of(ann.clone()).await, token_of(bob.clone()).await);
    google
        .control("/sync-tokens/invalidate", json!({"calendar_id": "ann@example.com"}))
        .await;
    assert_eq!(
        google
            .get(&format!("/calendar/v3/calendars/primary/events?syncToken={a}"), &ann)
            .await
            .status,
        410
    );
    assert_eq!(
        google
            .get(&format!("/calendar/v3/calendars/primary/events?syncToken={b}"), &bob)
            .await
            .status,
        200
    );
    assert_eq!(
        google
            .control("/sync-tokens/invalidate", json!({"calendar_id": "x@y"}))
            .await
            .status,
        404
    );
}
