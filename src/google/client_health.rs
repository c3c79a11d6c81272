//! Whether Google accepts this deployment's OAuth client. A token request answered
//! `invalid_client` or `deleted_client` (RFC 6749 §5.2; Google answers them when the
//! client was deleted, disabled or its secret rotated in the Cloud console) means no user
//! can be served until an operator fixes the deployment — unlike `invalid_grant`, which is
//! one user's grant. Then the deployment is **degraded**: `/health/ready` answers 503 with
//! the reason, the gauge `slotsync_google_client_degraded` is 1, the vault asks the token
//! endpoint nothing, and the push worker, the pulls and the Google jobs wait (slots stay
//! pending; nobody is marked `needs_reauth`). A probe — one refresh request every
//! `GOOGLE_CLIENT_PROBE_SECS` — notices when the client is accepted again, and everything
//! resumes by itself.
//!
//! The state lives here, once per process, shared through the OAuth client (every token
//! answer updates it) and `SyncContext::client_health` (workers, jobs, health). Each
//! instance of a fleet finds out and probes on its own: they share the client, so they
//! find the same answer within a probe interval.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::observe;

/// Why the deployment is degraded, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    /// What the token endpoint answered (e.g. `invalid_client: Unauthorized`).
    pub reason: String,
    /// When it was first answered.
    pub since: DateTime<Utc>,
}

/// The refresh token the probe sends: no grant has it, so a client Google accepts gets
/// `invalid_grant` back (client authentication comes before the grant, RFC 6749 §5.2),
/// and a broken client `invalid_client` / `deleted_client`. No user's grant is touched.
pub const PROBE_REFRESH_TOKEN: &str = "slotsync-client-probe";

/// The deployment's OAuth client: accepted, or refused since when and why.
#[derive(Debug)]
pub struct ClientHealth {
    state: watch::Sender<Option<Degraded>>,
}

impl Default for ClientHealth {
    fn default() -> Self {
        Self {
            state: watch::Sender::new(None),
        }
    }
}

impl ClientHealth {
    /// Healthy until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Why the deployment is degraded, if it is.
    pub fn degraded(&self) -> Option<Degraded> {
        self.state.borrow().clone()
    }

    /// Whether the deployment is degraded.
    pub fn is_degraded(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// The token endpoint refused the client: degraded from now (logged once, when it
    /// starts; later refusals change nothing).
    pub fn refused(&self, reason: &str) {
        let started = self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some(Degraded {
                reason: reason.to_owned(),
                since: Utc::now(),
            });
            true
        });
        if started {
            observe::google_client_degraded(true);
            tracing::error!(
                reason,
                "Google refuses this deployment's OAuth client (GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET): \
                 pushes and pulls are paused until it is accepted again; see docs/operations.md"
            );
        }
    }

    /// The token endpoint accepted the client (a token was issued, or a grant was judged):
    /// healthy again, and whoever waits resumes.
    pub fn accepted(&self) {
        let ended = self.state.send_if_modified(|state| state.take().is_some());
        if ended {
            observe::google_client_degraded(false);
            tracing::info!("Google accepts this deployment's OAuth client again: pushes and pulls resume");
        }
    }

    /// Returns once the deployment is not degraded (at once if it is not).
    pub async fn wait_until_accepted(&self) {
        let mut changes = self.state.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while we borrow it.
        let _ = changes.wait_for(Option::is_none).await;
    }

    /// Returns once the deployment is degraded.
    pub async fn wait_until_refused(&self) {
        let mut changes = self.state.subscribe();
        let _ = changes.wait_for(Option::is_some).await;
    }
}

/// While the deployment is degraded, asks the token endpoint once every `every` whether
/// the client is accepted again (through `probe`, which records the answer); ends when
/// `stop` turns true.
pub async fn run_probe<F, Fut>(health: &ClientHealth, every: Duration, mut stop: watch::Receiver<bool>, probe: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    while !*stop.borrow() {
        tokio::select! {
            _ = health.wait_until_refused() => {}
            _ = stop.changed() => continue,
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => continue,
        }
        if health.is_degraded() {
            probe().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_degrades_until_an_acceptance_and_waiters_resume() {
        let health = ClientHealth::new();
        assert!(health.degraded().is_none());
        health.refused("invalid_client: Unauthorized");
        let first = health.degraded().expect("degraded");
        health.refused("deleted_client: gone");
        assert_eq!(
            health.degraded(),
            Some(first.clone()),
            "the first reason and time are kept"
        );
        let waiter = async { health.wait_until_accepted().await };
        let accept = async {
            tokio::task::yield_now().await;
            health.accepted();
        };
        tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(waiter, accept) })
            .await
            .expect("the waiter resumes");
        assert!(!health.is_degraded());
    }
}
