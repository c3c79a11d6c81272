//! The change feed's waiting room: a long poll on `GET /changes` waits here until one of
//! its user's changes commits in this process, or a tick passes (0.5 s: changes committed by
//! another instance sharing the database are found by the tick's re-read). Whoever commits
//! a change calls [`changed`] after the commit. No task, no timer per waiter beyond its own
//! `sleep`, and nothing kept for users nobody waits for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::UserId;

/// How often a waiting long poll reads the log again, for changes written by another
/// instance (this instance's own wake it at once).
pub const TICK: Duration = Duration::from_millis(500);

/// One process-wide table: user id → the signal its waiters share. Entries are weak; a
/// user nobody waits for costs nothing.
fn waiting() -> &'static Mutex<HashMap<Uuid, Weak<Notify>>> {
    static WAITING: OnceLock<Mutex<HashMap<Uuid, Weak<Notify>>>> = OnceLock::new();
    WAITING.get_or_init(Default::default)
}

/// Wakes `user`'s waiting long polls (call it after the change committed).
pub fn changed(user: UserId) {
    // Its webhooks may be due too.
    super::webhooks::wake();
    let signal = waiting()
        .lock()
        .expect("feed table")
        .get(&user.0)
        .and_then(Weak::upgrade);
    if let Some(signal) = signal {
        signal.notify_waiters();
    }
}

/// The signal `user`'s waiters share (created when the first one comes).
pub fn signal(user: UserId) -> Arc<Notify> {
    let mut table = waiting().lock().expect("feed table");
    if let Some(existing) = table.get(&user.0).and_then(Weak::upgrade) {
        return existing;
    }
    // Entries of users nobody waits for any more go as new ones come.
    table.retain(|_, w| w.strong_count() > 0);
    let fresh = Arc::new(Notify::new());
    table.insert(user.0, Arc::downgrade(&fresh));
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_users_waiters_and_nobody_elses() {
        let (ada, bob) = (UserId(Uuid::new_v4()), UserId(Uuid::new_v4()));
        let shared = signal(ada);
        {
            let woken = shared.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            changed(bob);
            assert!(
                tokio::time::timeout(Duration::from_millis(50), woken.as_mut())
                    .await
                    .is_err(),
                "another user's change woke the waiter"
            );
            changed(ada);
            tokio::time::timeout(Duration::from_secs(1), woken)
                .await
                .expect("the user's change wakes the waiter");
        }
        drop(shared);
        // Nobody waits: the entry is gone with the next newcomer.
        let _other = signal(bob);
        assert!(!waiting().lock().unwrap().contains_key(&ada.0));
    }
}
