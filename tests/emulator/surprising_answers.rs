//! The answers that surprise clients, as fault plan switches: a 404 that goes away,
//! 403 on writes to an event deleted in the UI, and a broken OAuth client on refresh.

use crate::helpers::{reason, timed_event, TestGoogle};
use crate::oauth_flow::{connect, token_request, SCOPES};
use google_calendar3::api::Event;
use reqwest::Method;
use serde_json::json;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

async fn put_faults(google: &TestGoogle, plan: serde_json::Value) {
    let a = google
        .send(Method::PUT, "/_emulator/faults", None, Some(plan), &[])
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

#[tokio::test]
async fn a_transient_404_answers_n_times_per_event_then_the_event_is_there() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let id = google.insert(&t, "primary", timed_event("a", 3, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    put_faults(
        &google,
        json!({"transient_404": {"times": 2, "ops": ["events.get", "events.patch"]}}),
    )
    .await;
    for _ in 0..2 {
        let err = hub.events().get("primary", &id).doit().await.unwrap_err();
        assert_eq!(
            crate::helpers::google_error_body(&err)["error"]["errors"][0]["reason"],
            "notFound"
        );
    }
    let (_, got) = hub.events().get("primary", &id).doit().await.unwrap();
    assert_eq!(got.summary.as_deref(), Some("a"));
    let patch = |s: &str| Event {
        summary: Some(s.into()),
        ..Event::default()
    };
    assert!(
        hub.events().patch(patch("b"), "primary", &id).doit().await.is_ok(),
        "the count is per event, not per op"
    );
    let stats = google.stats().await;
    assert_eq!(stats["faults"]["events.get"]["transient_404"], 2);
    assert_eq!(stats["requests"]["events.get"]["404"], 2);

    let other = google.insert(&t, "primary", timed_event("c", 4, 9)).await;
    let path = format!("{EVENTS}/{}", other["id"].as_str().unwrap());
    let a = google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"summary": "d"})), &[])
        .await;
    assert_eq!(
        (a.status, reason(&a)),
        (404, "notFound"),
        "another event has its own count"
    );
    assert_eq!(google.events("ann@example.com").await.len(), 2, "nothing was deleted");
}

#[tokio::test]
async fn writes_to_an_event_deleted_in_the_ui_can_answer_403_instead_of_410() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let id = google.insert(&t, "primary", timed_event("a", 3, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{EVENTS}/{id}");
    google.send(Method::DELETE, &path, Some(&t), None, &[]).await;
    let a = google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"summary": "b"})), &[])
        .await;
    assert_eq!((a.status, reason(&a)), (410, "deleted"), "by default as documented");

    put_faults(&google, json!({"deleted_event_writes": 403})).await;
    let err = hub
        .events()
        .update(timed("b"), "primary", &id)
        .doit()
        .await
        .unwrap_err();
    let body = crate::helpers::google_error_body(&err);
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["errors"][0]["reason"].as_str()
        ),
        (Some(403), Some("forbidden"))
    );
    let again = google.send(Method::DELETE, &path, Some(&t), None, &[]).await;
    assert_eq!(again.status, 410, "deleting it again stays 410");
    let bad = google
        .send(
            Method::PUT,
            "/_emulator/faults",
            None,
            Some(json!({"deleted_event_writes": 404})),
            &[],
        )
        .await;
    assert_eq!(bad.status, 400);
}

fn timed(summary: &str) -> Event {
    serde_json::from_value(timed_event(summary, 3, 9)).unwrap()
}

async fn refresh(google: &TestGoogle, refresh_token: &str) -> (u16, serde_json::Value) {
    token_request(
        google,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        false,
    )
    .await
}

#[tokio::test]
async fn a_broken_oauth_client_answers_invalid_client_or_deleted_client_until_switched_off() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&google, &refresh_token).await.0, 200);

    put_faults(&google, json!({"token_endpoint": "invalid_client"})).await;
    let (status, body) = refresh(&google, &refresh_token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());

    put_faults(&google, json!({"token_endpoint": "deleted_client"})).await;
    let (status, body) = refresh(&google, &refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("deleted_client")));
    assert_eq!(google.stats().await["faults"]["oauth.token"]["deleted_client"], 1);

    google.send(Method::DELETE, "/_emulator/faults", None, None, &[]).await;
    let (status, body) = refresh(&google, &refresh_token).await;
    assert_eq!(status, 200, "the client works again: {body}");
}
