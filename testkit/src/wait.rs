//! Polling under a deadline: tests wait for what they can observe, never for a fixed time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `check` every 25 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let holds = poll(timeout, Duration::from_millis(25), || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
    assert!(holds.is_some(), "timed out waiting until {what}");
}

/// Polls `check` every 10 ms until it returns `Some`, and returns that; panics with `what`
/// after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(timeout, Duration::from_millis(10), check)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// `check`'s first `Some`, or `None` once `timeout` has passed.
async fn poll<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
