//! Push notifications: watch, sync/exists, exact headers, retries, stop and expiry.

use crate::helpers::{reason, timed_event, wait_for, Receiver, TestGoogle};
use reqwest::Method;
use serde_json::{json, Value};
use slotsync::emulator::EmulatorConfig;
use std::time::Duration;

pub async fn watch(google: &TestGoogle, token: &str, id: &str, address: &str, extra: Value) -> crate::helpers::Answer {
    let mut body = json!({"id": id, "type": "web_hook", "address": address, "token": format!("token-{id}")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    google
        .send(
            Method::POST,
            "/calendar/v3/calendars/primary/events/watch",
            Some(token),
            Some(body),
            &[],
        )
        .await
}

#[tokio::test]
async fn watch_sends_sync_then_exists_for_every_change_with_googles_exact_headers() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    let w = watch(&google, &t, "chan-a", &receiver.address(), json!({})).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.body["kind"], "api#channel");
    assert_eq!(w.body["id"], "chan-a");
    assert_eq!(w.body["token"], "token-chan-a");
    let expiration: i64 = w.body["expiration"]
        .as_str()
        .expect("expiration is a JSON string")
        .parse()
        .unwrap();
    let ttl = expiration - chrono::Utc::now().timestamp_millis();
    assert!(
        (604_700_000..=604_800_000).contains(&ttl),
        "default ttl is 7 days: {ttl}"
    );
    let resource_uri = w.body["resourceUri"].as_str().unwrap().to_owned();
    assert!(resource_uri.starts_with(&format!(
        "{}/calendar/v3/calendars/ann@example.com/events",
        google.base_url()
    )));

    let sync = receiver.wait_for_count(1).await;
    assert_eq!(sync[0].state(), "sync");
    assert_eq!(sync[0].number(), 1);

    let ev = google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    google
        .send(
            Method::PATCH,
            &format!("/calendar/v3/calendars/primary/events/{}", ev["id"].as_str().unwrap()),
            Some(&t),
            Some(json!({"summary": "b"})),
            &[],
        )
        .await;
    let all = receiver.wait_for_count(3).await;
    let mut numbers: Vec<u64> = all.iter().map(|r| r.number()).collect();
    numbers.sort();
    assert_eq!(numbers, vec![1, 2, 3]);
    let exists = all.iter().find(|r| r.number() == 2).unwrap();
    assert_eq!(exists.state(), "exists");
    assert_eq!(exists.header("x-goog-channel-id"), Some("chan-a"));
    assert_eq!(exists.header("x-goog-resource-id"), w.body["resourceId"].as_str());
    assert_eq!(exists.header("x-goog-resource-uri"), Some(resource_uri.as_str()));
    assert_eq!(exists.header("x-goog-channel-token"), Some("token-chan-a"));
    let expected_expiry = chrono::DateTime::from_timestamp_millis(expiration)
        .unwrap()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    assert_eq!(
        exists.header("x-goog-channel-expiration"),
        Some(expected_expiry.as_str())
    );
    assert_eq!(exists.header("user-agent"), Some("APIs-Google"));
    assert_eq!(exists.body_len, 0);
    let stats = google.stats().await;
    assert_eq!(stats["notifications"]["sent"], 3);
}

#[tokio::test]
async fn every_channel_on_a_calendar_gets_its_own_copy() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let (r1, r2) = (Receiver::start().await, Receiver::start().await);
    watch(&google, &t, "one", &r1.address(), json!({})).await;
    watch(&google, &t, "two", &r2.address(), json!({})).await;
    r1.wait_for_count(1).await;
    r2.wait_for_count(1).await;
    let other = google.user_token("bob@example.com").await;
    google.insert(&t, "primary", timed_event("by ann", 3, 9)).await;
    google
        .insert(&other, "primary", timed_event("bob's own calendar", 3, 9))
        .await;
    for r in [&r1, &r2] {
        let got = r.wait_for_count(2).await;
        assert_eq!(got[1].state(), "exists");
    }
    // Bob's change is on another calendar: give the first receiver a later change to
    // prove nothing else arrived in between.
    google.insert(&t, "primary", timed_event("again", 4, 9)).await;
    let got = r1.wait_for_count(3).await;
    assert_eq!(got.iter().map(|r| r.number()).max(), Some(3));
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn nothing_is_sent_after_channels_stop_or_expiry() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let (stopped, expired, sentinel) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let w = watch(&google, &t, "stopped", &stopped.address(), json!({})).await;
    watch(&google, &t, "expired", &expired.address(), json!({})).await;
    for r in [&stopped, &expired] {
        r.wait_for_count(1).await;
    }
    let other = google.user_token("bob@example.com").await;
    let stop_body = json!({"id": "stopped", "resourceId": w.body["resourceId"]});
    let foreign = google
        .send(
            Method::POST,
            "/calendar/v3/channels/stop",
            Some(&other),
            Some(stop_body.clone()),
            &[],
        )
        .await;
    assert_eq!(foreign.status, 404, "only the creator may stop a channel");
    let s = google
        .send(
            Method::POST,
            "/calendar/v3/channels/stop",
            Some(&t),
            Some(stop_body.clone()),
            &[],
        )
        .await;
    assert_eq!(s.status, 204);
    let unknown = google
        .send(
            Method::POST,
            "/calendar/v3/channels/stop",
            Some(&t),
            Some(json!({"id": "nope"})),
            &[],
        )
        .await;
    assert_eq!((unknown.status, reason(&unknown)), (404, "notFound"));
    assert_eq!(
        google
            .control("/channels/expire", json!({"channel_id": "expired"}))
            .await
            .status,
        200
    );
    watch(&google, &t, "sentinel", &sentinel.address(), json!({})).await;
    sentinel.wait_for_count(1).await;
    google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    sentinel.wait_for_count(2).await;
    assert_eq!(stopped.received().len(), 1);
    assert_eq!(expired.received().len(), 1);
}

#[tokio::test]
async fn retryable_answers_are_retried_with_backoff_and_others_are_not() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    receiver.answer_next_with(&[503, 500, 200]);
    watch(&google, &t, "flaky", &receiver.address(), json!({})).await;
    let got = receiver.wait_for_count(3).await;
    assert!(
        got.iter().all(|r| r.number() == 1 && r.state() == "sync"),
        "the same message is retried"
    );
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), vec![503, 500, 200]);
    receiver.answer_next_with(&[404]);
    google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    let stats = wait_for("a failed notification", Duration::from_secs(5), || async {
        let s = google.stats().await;
        (s["notifications"]["failed"] == 1).then_some(s)
    })
    .await;
    assert_eq!(stats["notifications"]["retried"], 2);
    assert_eq!(stats["notifications"]["sent"], 1);
    assert_eq!(receiver.received().len(), 4, "a 404 answer is not retried");
}

#[tokio::test]
async fn channel_ttl_is_honoured_and_capped() {
    let mut config = EmulatorConfig::for_tests();
    config.channel_ttl_cap = Duration::from_secs(3600);
    let google = TestGoogle::start_with(config).await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    let now = chrono::Utc::now().timestamp_millis();
    let short = watch(
        &google,
        &t,
        "short",
        &receiver.address(),
        json!({"params": {"ttl": "60"}}),
    )
    .await;
    let exp: i64 = short.body["expiration"].as_str().unwrap().parse().unwrap();
    assert!((now + 59_000..=now + 61_000).contains(&exp));
    let long = watch(
        &google,
        &t,
        "long",
        &receiver.address(),
        json!({"params": {"ttl": "999999"}}),
    )
    .await;
    let exp: i64 = long.body["expiration"].as_str().unwrap().parse().unwrap();
    assert!(
        exp <= chrono::Utc::now().timestamp_millis() + 3_600_000,
        "capped at one hour"
    );
}

#[tokio::test]
async fn watch_validates_its_channel() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    assert_eq!(
        watch(&google, &t, "dup", &receiver.address(), json!({})).await.status,
        200
    );
    let dup = watch(&google, &t, "dup", &receiver.address(), json!({})).await;
    assert_eq!((dup.status, reason(&dup)), (400, "channelIdNotUnique"));
    assert_eq!(
        watch(&google, &t, "bad-address", "not a url", json!({})).await.status,
        400
    );
    assert_eq!(
        watch(&google, &t, "bad-type", &receiver.address(), json!({"type": "email"}))
            .await
            .status,
        400
    );
    assert_eq!(
        watch(&google, &t, &"x".repeat(65), &receiver.address(), json!({}))
            .await
            .status,
        400
    );
}
