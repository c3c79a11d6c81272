//! Fault injection, quota and latency, with their figures in /_emulator/stats.

use crate::helpers::{reason, timed_event, Receiver, TestGoogle};
use crate::push::watch;
use reqwest::Method;
use serde_json::json;
use slotsync::emulator::{EmulatorConfig, QuotaConfig, QuotaStatus};
use std::time::{Duration, Instant};

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

async fn put_faults(google: &TestGoogle, plan: serde_json::Value) {
    let a = google
        .send(Method::PUT, "/_emulator/faults", None, Some(plan), &[])
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

#[tokio::test]
async fn an_injected_503_changes_nothing_and_is_counted() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    put_faults(&google, json!({"ops": {"events.insert": {"503": 1.0}}})).await;
    let a = google
        .send(Method::POST, EVENTS, Some(&t), Some(timed_event("a", 3, 9)), &[])
        .await;
    assert_eq!((a.status, reason(&a)), (503, "backendError"));
    let all = google
        .send(
            Method::GET,
            "/_emulator/calendars/ann@example.com/events",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(all.body["items"], json!([]));
    let stats = google.stats().await;
    assert_eq!(stats["faults"]["events.insert"]["503"], 1);
    assert_eq!(stats["requests"]["events.insert"]["503"], 1);
    assert_eq!(
        google.get(EVENTS, &t).await.status,
        200,
        "other operations are unaffected"
    );
}

#[tokio::test]
async fn a_lost_response_applies_the_write_then_answers_503() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    put_faults(&google, json!({"events.insert": {"lost_response": 1.0}})).await;
    let mut ev = timed_event("a", 3, 9);
    ev["id"] = json!("lost00000000000000000000001");
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(ev.clone()), &[]).await;
    assert_eq!(a.status, 503);
    assert_eq!(
        google
            .send(Method::DELETE, "/_emulator/faults", None, None, &[])
            .await
            .status,
        200
    );
    let retry = google.send(Method::POST, EVENTS, Some(&t), Some(ev), &[]).await;
    assert_eq!(
        (retry.status, reason(&retry)),
        (409, "duplicate"),
        "the first write was applied"
    );
    assert_eq!(google.stats().await["faults"]["events.insert"]["lost_response"], 1);
}

#[tokio::test]
async fn a_wildcard_429_hits_every_calendar_operation_but_not_oauth() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    put_faults(&google, json!({"*": {"429": 1.0}})).await;
    let a = google.get(EVENTS, &t).await;
    assert_eq!((a.status, reason(&a)), (429, "rateLimitExceeded"));
    assert_eq!(a.body["error"]["errors"][0]["domain"], "usageLimits");
    assert_eq!(google.get("/calendar/v3/users/me/calendarList", &t).await.status, 429);
    let userinfo = google.get("/v1/userinfo", &t).await;
    assert_eq!(userinfo.status, 200);
}

#[tokio::test]
async fn seeded_fault_draws_are_reproducible() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let mut config = EmulatorConfig::for_tests();
        config.seed = Some(seed);
        let google = TestGoogle::start_with(config).await;
        let t = google.user_token("ann@example.com").await;
        put_faults(&google, json!({"events.list": {"503": 0.5}})).await;
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(google.get(EVENTS, &t).await.status);
        }
        out
    }
    let first = statuses(7).await;
    assert_eq!(first, statuses(7).await);
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn oauth_token_faults_apply_only_when_named() {
    let google = TestGoogle::start().await;
    put_faults(&google, json!({"oauth.token": {"503": 1.0}})).await;
    let r = google
        .http
        .post(google.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(google.stats().await["faults"]["oauth.token"]["503"], 1);
}

#[tokio::test]
async fn dropped_and_duplicated_notifications_are_counted() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    put_faults(
        &google,
        json!({"notifications": {"duplicate_rate": 1.0, "delay_ms": [1, 20]}}),
    )
    .await;
    watch(&google, &t, "dup", &receiver.address(), json!({})).await;
    let got = receiver.wait_for_count(2).await;
    assert!(
        got.iter().all(|r| r.number() == 1),
        "a duplicate keeps its message number"
    );
    put_faults(&google, json!({"notifications": {"drop_rate": 1.0}})).await;
    google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    google.insert(&t, "primary", timed_event("b", 4, 9)).await;
    let stats = google.stats().await;
    assert_eq!(stats["notifications"]["dropped"], 2);
    assert_eq!(stats["notifications"]["duplicated"], 1);
    google.send(Method::DELETE, "/_emulator/faults", None, None, &[]).await;
    google.insert(&t, "primary", timed_event("c", 5, 9)).await;
    let after = receiver.wait_for_count(3).await;
    assert_eq!(after[2].number(), 4, "dropped notifications still used their numbers");
}

#[tokio::test]
async fn the_per_user_quota_answers_403_user_rate_limit_exceeded() {
    let mut config = EmulatorConfig::for_tests();
    config.quota = Some(QuotaConfig {
        per_user_per_minute: 3,
        status: QuotaStatus::Forbidden403,
    });
    let google = TestGoogle::start_with(config).await;
    let (ann, bob) = (
        google.user_token("ann@example.com").await,
        google.user_token("bob@example.com").await,
    );
    for _ in 0..3 {
        assert_eq!(google.get(EVENTS, &ann).await.status, 200);
    }
    let over = google.get(EVENTS, &ann).await;
    assert_eq!((over.status, reason(&over)), (403, "userRateLimitExceeded"));
    assert_eq!(over.body["error"]["errors"][0]["domain"], "usageLimits");
    assert_eq!(google.get(EVENTS, &bob).await.status, 200, "the quota is per user");
}

#[tokio::test]
async fn the_quota_can_answer_429_instead() {
    let mut config = EmulatorConfig::for_tests();
    config.quota = Some(QuotaConfig {
        per_user_per_minute: 1,
        status: QuotaStatus::TooMany429,
    });
    let google = TestGoogle::start_with(config).await;
    let t = google.user_token("ann@example.com").await;
    google.get(EVENTS, &t).await;
    let over = google.get(EVENTS, &t).await;
    assert_eq!((over.status, reason(&over)), (429, "rateLimitExceeded"));
    assert_eq!(google.stats().await["requests"]["events.list"]["429"], 1);
}

#[tokio::test]
async fn added_latency_delays_calendar_requests() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    put_faults(&google, json!({"latency_ms": [120, 120]})).await;
    let started = Instant::now();
    assert_eq!(google.get(EVENTS, &t).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn malformed_fault_plans_are_rejected() {
    let google = TestGoogle::start().await;
    for plan in [
        json!({"*": {"boom": 0.1}}),
        json!({"*": {"503": 1.5}}),
        json!({"latency_ms": [9, 1]}),
        json!([1]),
    ] {
        let a = google
            .send(Method::PUT, "/_emulator/faults", None, Some(plan.clone()), &[])
            .await;
        assert_eq!(a.status, 400, "{plan}");
    }
}
