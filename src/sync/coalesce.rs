//! Coalesced pulls: a notification (or any trigger) only *requests* a pull; one task per
//! user runs it after a short debounce. Requests arriving while a pull is waiting are
//! absorbed by it; requests arriving while it runs cause exactly one more pull after it.
//! So a burst of N notifications costs one pull, or two.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::pull::{PullMode, Puller};
use super::SyncError;
use crate::domain::UserId;

/// A user's pull in flight.
#[derive(Debug, Default)]
struct Flight {
    /// A request came after the current pull started reading Google.
    again: bool,
    /// One of the requests asked for a full sync.
    full: bool,
    /// One of the requests came from a channel's notification.
    notified: bool,
}

/// Schedules pulls, at most one at a time per user (in this process; the pull's own claim
/// keeps instances apart).
#[derive(Clone)]
pub struct PullCoordinator {
    inner: Arc<Inner>,
}

struct Inner {
    puller: Arc<Puller>,
    debounce: Duration,
    flights: Mutex<HashMap<UserId, Flight>>,
    /// Set at shutdown: no new flight starts.
    closed: std::sync::atomic::AtomicBool,
    /// Signalled whenever a flight ends.
    landed: tokio::sync::Notify,
}

/// How long to wait before trying again when another instance is pulling the same user.
const BUSY_RETRY: Duration = Duration::from_millis(500);
/// How many times a busy pull is retried before leaving it to the next trigger.
const BUSY_ATTEMPTS: u32 = 20;

impl PullCoordinator {
    /// A coordinator running `puller` after `debounce`.
    pub fn new(puller: Arc<Puller>, debounce: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                puller,
                debounce,
                flights: Mutex::new(HashMap::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
                landed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The puller (for callers that must pull now and see the outcome).
    pub fn puller(&self) -> &Arc<Puller> {
        &self.inner.puller
    }

    /// Requests a pull of `user` (cheap; never waits).
    pub fn request(&self, user: UserId) {
        self.request_mode(user, PullMode::Incremental);
    }

    /// Requests a pull of `user` in `mode` (a full request makes the next pull full).
    pub fn request_mode(&self, user: UserId, mode: PullMode) {
        self.request_flight(user, mode, false);
    }

    /// Requests a pull of `user` for a notification of their channel (once pulled, the
    /// fallback sync may pull them less often).
    pub fn request_notified(&self, user: UserId) {
        self.request_flight(user, PullMode::Incremental, true);
    }

    fn request_flight(&self, user: UserId, mode: PullMode, notified: bool) {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut flights = self.inner.flights.lock();
        if let Some(flight) = flights.get_mut(&user) {
            flight.again = true;
            flight.full |= mode == PullMode::Full;
            flight.notified |= notified;
            return;
        }
        flights.insert(
            user,
            Flight {
                again: false,
                full: mode == PullMode::Full,
                notified,
            },
        );
        drop(flights);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.fly(user).await });
    }

    /// Stops starting pulls and waits (up to `grace`) for the ones under way to finish, so
    /// no pull claim is left held by a process that is going away.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let landed = self.inner.landed.notified();
            if self.inner.flights.lock().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, landed).await.is_err() {
                tracing::warn!("pulls still running at shutdown; their claims expire by themselves");
                return;
            }
        }
    }

    /// Whether a pull of `user` is waiting or running here.
    pub fn in_flight(&self, user: UserId) -> bool {
        self.inner.flights.lock().contains_key(&user)
    }
}

/// How often a pull waiting for the OAuth client looks whether the process is stopping.
const CLOSED_CHECK: Duration = Duration::from_secs(1);

impl Inner {
    /// Waits while Google refuses the deployment's OAuth client; false if the coordinator
    /// closed meanwhile.
    async fn wait_for_client(&self) -> bool {
        let health = Arc::clone(self.puller.client_health());
        while health.is_degraded() {
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            tokio::select! {
                _ = health.wait_until_accepted() => {}
                _ = tokio::time::sleep(CLOSED_CHECK) => {}
            }
        }
        true
    }

    async fn fly(&self, user: UserId) {
        let mut busy = 0;
        loop {
            // Every pull waits the debounce, follow-ups too: a steady stream of
            // notifications then costs one pull per debounce, not one per pull's length.
            tokio::time::sleep(self.debounce).await;
            // Google refuses the deployment's OAuth client: the flight waits (absorbing
            // requests) and pulls once it is accepted again.
            if !self.wait_for_client().await {
                self.flights.lock().remove(&user);
                self.landed.notify_waiters();
                return;
            }
            // Requests so far are served by the pull about to start.
            let (mode, notified) = {
                let mut flights = self.flights.lock();
                let flight = flights.entry(user).or_default();
                flight.again = false;
                let mode = if std::mem::take(&mut flight.full) {
                    PullMode::Full
                } else {
                    PullMode::Incremental
                };
                (mode, std::mem::take(&mut flight.notified))
            };
            match self.puller.pull(user, mode).await {
                Err(SyncError::PullRunning) if busy < BUSY_ATTEMPTS => {
                    busy += 1;
                    {
                        let mut flights = self.flights.lock();
                        let flight = flights.entry(user).or_default();
                        flight.again = true;
                        flight.full |= mode == PullMode::Full;
                        flight.notified |= notified;
                    }
                    tokio::time::sleep(BUSY_RETRY).await;
                }
                Err(SyncError::NotConnected) => {}
                Err(e) => tracing::warn!(user_id = %user, error = %e, "pull failed; the next trigger retries"),
                Ok(_) if notified => self.puller.note_notified(user).await,
                Ok(_) => {}
            }
            let done = {
                let mut flights = self.flights.lock();
                let closed = self.closed.load(std::sync::atomic::Ordering::SeqCst);
                let again = !closed && flights.get(&user).is_some_and(|f| f.again);
                if !again {
                    flights.remove(&user);
                }
                !again
            };
            if done {
                self.landed.notify_waiters();
                return;
            }
        }
    }
}
