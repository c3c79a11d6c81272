//! Notification batching and delay (`notifications: {"batch_ms", "delay_ms"}` in the
//! fault plan): changes within a window give each channel one late `exists`.

use crate::helpers::{timed_event, Receiver, TestGoogle};
use crate::push::watch;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn changes_within_a_batch_window_give_each_channel_one_late_notification() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let first = Receiver::start().await;
    let second = Receiver::start().await;
    assert_eq!(
        watch(&google, &t, "chan-1", &first.address(), json!({})).await.status,
        200
    );
    assert_eq!(
        watch(&google, &t, "chan-2", &second.address(), json!({})).await.status,
        200
    );
    first.wait_for_count(1).await;
    second.wait_for_count(1).await;
    google
        .faults(json!({"notifications": {"batch_ms": 300, "delay_ms": 200}}))
        .await;

    let started = Instant::now();
    let ev = google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    google.insert(&t, "primary", timed_event("b", 3, 11)).await;
    let path = format!("/calendar/v3/calendars/primary/events/{}", ev["id"].as_str().unwrap());
    google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"summary": "a2"})), &[])
        .await;

    let got = first.wait_for_count(2).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "sent after the window and the delay: {:?}",
        started.elapsed()
    );
    assert_eq!(got[1].state(), "exists");
    second.wait_for_count(2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(first.received().len(), 2, "one notification for three changes");
    assert_eq!(second.received().len(), 2);
    let stats = google.stats().await;
    assert_eq!(
        stats["notifications"]["batched"], 2,
        "two changes folded into the open batch"
    );

    google.insert(&t, "primary", timed_event("c", 4, 9)).await;
    let later = first.wait_for_count(3).await;
    assert!(
        later[2].number() > later[1].number(),
        "a later change opens a new batch"
    );
}

#[tokio::test]
async fn a_delay_without_batching_delays_each_notification() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    watch(&google, &t, "chan-1", &receiver.address(), json!({})).await;
    receiver.wait_for_count(1).await;
    google.faults(json!({"notifications": {"delay_ms": 300}})).await;
    let started = Instant::now();
    google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    google.insert(&t, "primary", timed_event("b", 3, 11)).await;
    receiver.wait_for_count(3).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}
