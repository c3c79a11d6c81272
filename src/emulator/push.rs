//! Push notification delivery: `sync` on watch, `exists` on every change, with
//! drop/duplicate/delay faults and bounded retries of 500/502/503/504 answers.

use super::faults::draw_range;
use super::state::Shared;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `User-Agent` of notification requests.
pub const USER_AGENT: &str = "APIs-Google";

/// One notification to deliver.
#[derive(Debug, Clone)]
struct Notification {
    channel_id: String,
    resource_id: String,
    resource_uri: String,
    address: String,
    token: Option<String>,
    expires_at: DateTime<Utc>,
    message_number: u64,
    state: &'static str,
}

impl Notification {
    /// The notification `channel` gets with this message number and resource state.
    fn for_channel(ch: &crate::emulator::state::Channel, message_number: u64, state: &'static str) -> Self {
        Self {
            channel_id: ch.id.clone(),
            resource_id: ch.resource_id.clone(),
            resource_uri: ch.resource_uri.clone(),
            address: ch.address.clone(),
            token: ch.token.clone(),
            expires_at: ch.expires_at,
            message_number,
            state,
        }
    }
}

/// Sends the `sync` notification (message number 1) of a new channel.
pub fn notify_sync(shared: &Arc<Shared>, channel_id: &str) {
    let planned = {
        let mut guard = shared.state.lock();
        let st = &mut *guard;
        let Some(ch) = st.channels.get(channel_id) else {
            return;
        };
        let n = Notification::for_channel(ch, 1, "sync");
        plan(st, n, true)
    };
    spawn_all(shared, planned);
}

/// Notifies the channels watching `calendar_id` of a change: at once (one `exists` per
/// change), or through the batch scheduler when the fault plan sets `batch_ms`.
pub fn notify_change(shared: &Arc<Shared>, calendar_id: &str) {
    let batching = shared.state.lock().faults.notifications.batch_ms > 0;
    if batching {
        super::batch::enqueue(shared, calendar_id);
    } else {
        send_exists(shared, calendar_id, true);
    }
}

/// Sends `exists` to every live channel watching `calendar_id`, after the plan's drawn
/// `delay_ms` when `delayed`.
pub fn send_exists(shared: &Arc<Shared>, calendar_id: &str, delayed: bool) {
    let now = Utc::now();
    let planned = {
        let mut guard = shared.state.lock();
        let st = &mut *guard;
        let mut notifications = Vec::new();
        for ch in st.channels.values_mut() {
            if ch.calendar_id != calendar_id || !ch.is_live(now) {
                continue;
            }
            ch.message_number += 1;
            notifications.push(Notification::for_channel(ch, ch.message_number, "exists"));
        }
        notifications
            .into_iter()
            .flat_map(|n| plan(st, n, delayed))
            .collect::<Vec<_>>()
    };
    spawn_all(shared, planned);
}

/// Applies notification faults: returns the copies to send, each with its delay (none
/// unless `delayed`).
fn plan(st: &mut super::state::State, n: Notification, delayed: bool) -> Vec<(Notification, Option<Duration>)> {
    let faults = st.faults.notifications.clone();
    if faults.drop_rate > 0.0 && st.rng.gen::<f64>() < faults.drop_rate {
        st.stats.notifications.dropped += 1;
        return Vec::new();
    }
    let copies = if faults.duplicate_rate > 0.0 && st.rng.gen::<f64>() < faults.duplicate_rate {
        st.stats.notifications.duplicated += 1;
        2
    } else {
        1
    };
    (0..copies)
        .map(|_| {
            let delay = if delayed {
                draw_range(faults.delay_ms, &mut st.rng)
            } else {
                None
            };
            (n.clone(), delay)
        })
        .collect()
}

fn spawn_all(shared: &Arc<Shared>, planned: Vec<(Notification, Option<Duration>)>) {
    for (n, delay) in planned {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            deliver(&shared, n).await;
        });
    }
}

/// An RFC 1123 date, as `X-Goog-Channel-Expiration` carries it.
pub fn rfc1123(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn channel_is_live(shared: &Shared, channel_id: &str) -> bool {
    let st = shared.state.lock();
    st.channels.get(channel_id).is_some_and(|c| c.is_live(Utc::now()))
}

async fn deliver(shared: &Shared, n: Notification) {
    let policy = shared.config.push_retry;
    let mut backoff = policy.initial_backoff;
    for attempt in 1..=policy.max_attempts.max(1) {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        if !channel_is_live(shared, &n.channel_id) {
            let mut st = shared.state.lock();
            st.stats.notifications.suppressed += 1;
            return;
        }
        let mut request = shared
            .http
            .post(&n.address)
            .timeout(policy.request_timeout)
            .header("X-Goog-Channel-ID", &n.channel_id)
            .header("X-Goog-Message-Number", n.message_number.to_string())
            .header("X-Goog-Resource-ID", &n.resource_id)
            .header("X-Goog-Resource-State", n.state)
            .header("X-Goog-Resource-URI", &n.resource_uri)
            .header("X-Goog-Channel-Expiration", rfc1123(n.expires_at))
            .header(reqwest::header::CONTENT_LENGTH, "0");
        if let Some(token) = &n.token {
            request = request.header("X-Goog-Channel-Token", token);
        }
        let outcome = request.send().await.map(|r| r.status().as_u16());
        let retryable = {
            let mut st = shared.state.lock();
            st.stats.notifications.attempts += 1;
            match outcome {
                Ok(102 | 200 | 201 | 202 | 204) => {
                    st.stats.notifications.sent += 1;
                    return;
                }
                Ok(500 | 502 | 503 | 504) | Err(_) => true,
                Ok(_) => false,
            }
        };
        if !retryable || attempt == policy.max_attempts.max(1) {
            shared.state.lock().stats.notifications.failed += 1;
            return;
        }
        shared.state.lock().stats.notifications.retried += 1;
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_is_formatted_as_an_rfc_1123_date() {
        let at = DateTime::from_timestamp(1_384_823_632, 0).unwrap();
        assert_eq!(rfc1123(at), "Tue, 19 Nov 2013 01:13:52 GMT");
    }
}
