use crate::helpers::{assert_error, spawn_app_with};

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 3).await;
    let alice = app.create_user("alice@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    for _ in 0..3 {
        assert_eq!(app.get(&alice, "/slots").await.status(), 200);
    }
    let limited = app.get(&alice, "/slots").await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_error(limited, 429, "rate_limited").await;

    assert_eq!(app.get(&bob, "/slots").await.status(), 200);
    let health = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health checks are not limited");
}
