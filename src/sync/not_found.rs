//! A 404 on an event slotsync knows is not taken at its word at once. Google's errors
//! guide says a 404 may be transient and to retry with exponential backoff; concluding
//! "deleted in Google" too early re-creates an event that still exists (a duplicate) or
//! deletes a slot whose event is still there. So wherever a 404 would mean a deletion —
//! a patch, get or delete of a linked event — the call is made again, up to
//! `GOOGLE_NOT_FOUND_RETRIES` times with a delay doubling from
//! `GOOGLE_NOT_FOUND_RETRY_MS`; only a 404 that persists counts. Calls on ids slotsync
//! never saw at Google (an insert's derived id that may never have been written) are not
//! asked again: their 404 is expected.

use std::future::Future;
use std::time::Duration;

use crate::config::Settings;
use crate::domain::Backoff;
use crate::google::{GoneKind, GoogleError};
use crate::observe;

/// How a 404 on a known event is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotFoundRetry {
    /// How many times the call is made again.
    pub retries: u32,
    /// The delay before the first retry (doubling after each, ±25 % jitter).
    pub first_delay: Duration,
}

impl NotFoundRetry {
    /// From `GOOGLE_NOT_FOUND_RETRIES` and `GOOGLE_NOT_FOUND_RETRY_MS`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            retries: settings.google_not_found_retries,
            first_delay: Duration::from_millis(settings.google_not_found_retry_ms),
        }
    }

    /// Runs `call` (the Google operation `op` on a known event), again after each 404
    /// while retries are left; returns the first other answer, or the last 404.
    pub async fn run<T, F, Fut>(&self, op: &'static str, mut call: F) -> Result<T, GoogleError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GoogleError>>,
    {
        let backoff = Backoff {
            base: self.first_delay,
            cap: self.first_delay.saturating_mul(64),
        };
        let mut retried = 0;
        loop {
            match call().await {
                Err(GoogleError::Gone(GoneKind::NotFound)) if retried < self.retries => {
                    retried += 1;
                    let delay = backoff.delay(retried, rand::random::<f64>());
                    observe::not_found_retry(op);
                    tracing::debug!(
                        op,
                        retried,
                        ?delay,
                        "404 on a known event; asking again before believing it"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(GoogleError::Gone(GoneKind::NotFound)) if retried > 0 => {
                    tracing::info!(op, retried, "404 on a known event confirmed: it is gone");
                    return Err(GoogleError::Gone(GoneKind::NotFound));
                }
                other => {
                    if retried > 0 {
                        tracing::info!(op, retried, "a 404 on a known event was transient");
                    }
                    return other;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(retries: u32) -> NotFoundRetry {
        NotFoundRetry {
            retries,
            first_delay: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn a_404_that_goes_away_is_not_believed() {
        let calls = AtomicU32::new(0);
        let result = quick(3)
            .run("events.get", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(GoogleError::Gone(GoneKind::NotFound)),
                    _ => Ok("event"),
                }
            })
            .await;
        assert_eq!(result, Ok("event"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_404_that_persists_is_answered_after_the_retries_and_other_answers_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(2)
            .run("events.get", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(GoogleError::Gone(GoneKind::NotFound))
            })
            .await;
        assert_eq!(result, Err(GoogleError::Gone(GoneKind::NotFound)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(2)
            .run("events.patch", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(GoogleError::Gone(GoneKind::Deleted))
            })
            .await;
        assert_eq!(result, Err(GoogleError::Gone(GoneKind::Deleted)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 410 is believed at once");
    }
}
