//! Notification batching (`notifications.batch_ms` in the fault plan): real Google sends
//! notifications late and folds several changes into one (see the push notifications
//! guide, <https://developers.google.com/calendar/api/guides/push>).
//!
//! A change opens a batch for its calendar (due after `batch_ms` plus the drawn
//! `delay_ms`) unless one is open; further changes within it are folded in. One
//! scheduler task per emulator sleeps until the earliest due batch (or until woken by a
//! new one) and sends each due calendar's channels a single `exists` — no timer per
//! change or per user. Pending batches live in `State::pending_batches`.

use super::faults::draw_range;
use super::push;
use super::state::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Folds a change of `calendar_id` into its open batch, or opens one.
pub fn enqueue(shared: &Arc<Shared>, calendar_id: &str) {
    {
        let mut guard = shared.state.lock();
        let st = &mut *guard;
        if st.pending_batches.contains_key(calendar_id) {
            st.stats.notifications.batched += 1;
            return;
        }
        let window = Duration::from_millis(st.faults.notifications.batch_ms);
        let delay = draw_range(st.faults.notifications.delay_ms, &mut st.rng).unwrap_or_default();
        st.pending_batches
            .insert(calendar_id.to_owned(), Instant::now() + window + delay);
    }
    shared.batch_wake.notify_one();
}

/// The scheduler: runs until the emulator stops.
pub async fn run_scheduler(shared: Arc<Shared>) {
    loop {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let next_due = shared.state.lock().pending_batches.values().min().copied();
        match next_due {
            None => shared.batch_wake.notified().await,
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shared.batch_wake.notified() => {}
                }
            }
        }
        let due: Vec<String> = {
            let mut st = shared.state.lock();
            let now = Instant::now();
            let due: Vec<String> = st
                .pending_batches
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(cal, _)| cal.clone())
                .collect();
            for cal in &due {
                st.pending_batches.remove(cal);
            }
            due
        };
        for calendar_id in due {
            push::send_exists(&shared, &calendar_id, false);
        }
    }
}
