//! The inbound limit cannot be sidestepped: buckets belong to principals and client
//! addresses, not to header spellings; unknown tokens are charged to their address before
//! any query; the limiter's memory stays bounded.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;

use crate::helpers::{assert_error, spawn_app_with, wait_until, TestApp};

async fn get_with_auth(app: &TestApp, authorization: &str) -> reqwest::Response {
    app.client
        .get(app.url("/slots"))
        .header(AUTHORIZATION, authorization)
        .send()
        .await
        .unwrap()
}

async fn get_forwarded_for(app: &TestApp, forwarded_for: &str) -> reqwest::Response {
    app.client
        .get(app.url("/slots"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
}

fn random_token() -> String {
    format!("ss_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn the_same_user_shares_one_bucket_whatever_the_authorization_header_spelling() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 4).await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let t = &alice.token;
    for spelling in [
        format!("Bearer {t}"),
        format!("bearer {t}"),
        format!("BEARER {t}"),
        format!("bEaReR    {t}"),
    ] {
        assert_eq!(get_with_auth(&app, &spelling).await.status(), 200, "{spelling}");
    }
    assert_error(get_with_auth(&app, &format!("BeArEr  {t}")).await, 429, "rate_limited").await;
    assert_eq!(
        app.get(&bob, "/slots").await.status(),
        200,
        "another user has a bucket of their own"
    );
    assert!(
        app.state.inbound_limit.key_count() <= 4,
        "admin, alice, bob and the address"
    );
}

#[tokio::test]
async fn a_thousand_random_tokens_from_one_address_hit_its_limit_and_cost_few_lookups() {
    let limit = 20;
    let app = spawn_app_with(|s| s.rate_limit_per_minute = limit).await;
    let (mut unauthorized, mut limited) = (0u64, 0u64);
    for _ in 0..1_000 {
        match get_with_auth(&app, &format!("Bearer {}", random_token()))
            .await
            .status()
        {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // The burst, and at most a few cells refilled while the test ran (one per 3 s).
    assert!(
        (u64::from(limit)..u64::from(limit) + 5).contains(&unauthorized),
        "{unauthorized} requests were admitted"
    );
    assert_eq!(limited, 1_000 - unauthorized);
    let inbound = &app.state.inbound_limit;
    assert_eq!(
        inbound.token_lookups(),
        unauthorized,
        "one lookup per admitted request, none per refused one"
    );
    assert_eq!(inbound.unknown_tokens_cached() as u64, unauthorized);
    assert_eq!(inbound.key_count(), 1, "every random token shares the address's bucket");
}

#[tokio::test]
async fn a_repeated_unknown_token_is_refused_without_another_lookup() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 1_000).await;
    let token = format!("Bearer {}", random_token());
    for _ in 0..50 {
        assert_error(get_with_auth(&app, &token).await, 401, "unauthorized").await;
    }
    assert_eq!(
        app.state.inbound_limit.token_lookups(),
        1,
        "the negative cache answers the rest"
    );
}

#[tokio::test]
async fn a_deleted_users_token_stops_working_at_once_and_is_then_refused_without_queries() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 1_000).await;
    let doomed = app.create_user("doomed@example.com").await;
    assert_eq!(app.get(&doomed, "/slots").await.status(), 200);
    let resp = app.admin_delete(&format!("/auth/users/{}", doomed.id)).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    // The limiter still takes the token for the user's, but only the database authenticates.
    assert_error(app.get(&doomed, "/slots").await, 401, "unauthorized").await;
    let lookups = app.state.inbound_limit.token_lookups();
    for _ in 0..10 {
        assert_error(app.get(&doomed, "/slots").await, 401, "unauthorized").await;
    }
    assert_eq!(app.state.inbound_limit.token_lookups(), lookups);
}

#[tokio::test]
async fn many_distinct_keys_leave_the_limiter_bounded_and_idle_buckets_are_evicted() {
    // 600 000 a minute: a bucket that served one request is full again after 0.1 ms.
    let app = spawn_app_with(|s| {
        s.rate_limit_per_minute = 600_000;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let limit = &app.state.inbound_limit;
    let user = app.create_user("carol@example.com").await;
    for i in 0..300 {
        get_with_auth(&app, &format!("Bearer {}", random_token())).await;
        let spelling = if i % 2 == 0 { "bearer" } else { "BEARER" };
        get_with_auth(&app, &format!("{spelling} {}", user.token)).await;
    }
    assert!(
        limit.key_count() <= 3,
        "tokens and spellings add no buckets: {}",
        limit.key_count()
    );
    for i in 0..200 {
        get_forwarded_for(&app, &format!("198.51.100.{}", i % 250)).await;
    }
    assert!(limit.key_count() >= 200, "each forwarded client has a bucket");
    assert!(limit.key_count() <= slotsync::api::rate_limit::MAX_KEYS);
    wait_until("idle buckets are evicted", Duration::from_secs(5), || async {
        limit.evict_idle();
        limit.key_count() == 0
    })
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_get_separate_buckets_and_cannot_pick_their_own() {
    let app = spawn_app_with(|s| {
        s.rate_limit_per_minute = 2;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    for _ in 0..2 {
        assert_eq!(get_forwarded_for(&app, "198.51.100.1").await.status(), 401);
    }
    assert_error(get_forwarded_for(&app, "198.51.100.1").await, 429, "rate_limited").await;
    // What a client writes to the left of the proxy's entry is not read.
    let spoofed = get_forwarded_for(&app, "203.0.113.9, 198.51.100.1").await;
    assert_eq!(spoofed.status(), 429);
    assert_eq!(
        get_forwarded_for(&app, "198.51.100.2").await.status(),
        401,
        "another client behind the proxy has its own bucket"
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(get_forwarded_for(&app, "198.51.100.1").await.status(), 401);
    }
    let other = get_forwarded_for(&app, "198.51.100.2").await;
    assert_error(other, 429, "rate_limited").await;
    assert_eq!(app.state.inbound_limit.key_count(), 1);
}
