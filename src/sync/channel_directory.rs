//! What this process remembers of notification channels, so the webhook answers without a
//! query: per channel, what its checks need (user, resource id, expiry, stopped), read
//! from the store on a miss and kept for [`ENTRY_TTL`]; and the highest message number
//! seen per channel (the de-duplication marks).
//!
//! Every change this process makes to a channel (stop, expiry, resource id, deletion)
//! forgets its entry, so the next notification reads the row again. A change made by
//! another instance is seen once the entry is older than [`ENTRY_TTL`]; until then a
//! notification of a channel stopped elsewhere is accepted, which costs one coalesced pull.
//! Unknown channels are not remembered: a channel created by another instance is found
//! at its first notification.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::store::channels::ChannelRow;

/// How long an entry is trusted: the longest a stop, renewal or re-creation made by
/// another instance goes unseen here.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// Channels remembered at most (a live channel per user, two during a renewal). When full,
/// entries older than the TTL go first, and everything when that is not enough.
pub const MAX_CHANNELS: usize = 100_000;
/// Channels whose marks are kept before the table is cleared (a cleared mark only lets a
/// redelivery through, which costs one coalesced pull).
const MAX_MARKED_CHANNELS: usize = 100_000;

/// What the webhook's checks need of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownChannel {
    /// The channel's user.
    pub user_id: Uuid,
    /// Google's id of the watched calendar (`None` until Google answered the watch).
    pub resource_id: Option<String>,
    /// When Google stops delivering.
    pub expires_at: DateTime<Utc>,
    /// Stopped (replaced or disconnected): its notifications are refused.
    pub stopped: bool,
}

impl From<&ChannelRow> for KnownChannel {
    fn from(row: &ChannelRow) -> Self {
        KnownChannel {
            user_id: row.user_id,
            resource_id: row.resource_id.clone(),
            expires_at: row.expires_at,
            stopped: row.stopped_at.is_some(),
        }
    }
}

/// Taken before a channel's row is read; [`ChannelDirectory::remember`] keeps the row only
/// if no entry was forgotten since, so a read that raced a stop never outlives it.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(u64);

struct Entry {
    channel: KnownChannel,
    read_at: Instant,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<Uuid, Entry>,
    /// Counts the forgets.
    generation: u64,
}

/// The channels known to this process, and their message marks. One per app.
pub struct ChannelDirectory {
    entries: Mutex<Entries>,
    marks: MessageMarks,
    ttl: Duration,
    capacity: usize,
}

impl Default for ChannelDirectory {
    fn default() -> Self {
        Self::new(ENTRY_TTL, MAX_CHANNELS)
    }
}

impl ChannelDirectory {
    /// A directory trusting entries for `ttl`, holding at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            marks: MessageMarks::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// `f` of the channel, when it was read less than the TTL ago (under the directory's
    /// lock: `f` must be quick).
    pub fn lookup<R>(&self, id: Uuid, f: impl FnOnce(&KnownChannel) -> R) -> Option<R> {
        self.lookup_at(id, Instant::now(), f)
    }

    /// A copy of the channel, when it was read less than the TTL ago.
    pub fn get(&self, id: Uuid) -> Option<KnownChannel> {
        self.lookup(id, KnownChannel::clone)
    }

    fn lookup_at<R>(&self, id: Uuid, now: Instant, f: impl FnOnce(&KnownChannel) -> R) -> Option<R> {
        let mut entries = self.entries.lock();
        let entry = entries.by_id.get(&id)?;
        if now.saturating_duration_since(entry.read_at) < self.ttl {
            return Some(f(&entry.channel));
        }
        entries.by_id.remove(&id);
        None
    }

    /// Call before reading a channel's row that is then given to [`Self::remember`].
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.entries.lock().generation)
    }

    /// Keeps `row`, read after `ticket` was taken, unless a channel was forgotten since
    /// (the read may predate that change). Returns what the row says either way.
    pub fn remember(&self, ticket: ReadTicket, row: &ChannelRow) -> KnownChannel {
        self.remember_at(ticket, row, Instant::now())
    }

    fn remember_at(&self, ticket: ReadTicket, row: &ChannelRow, now: Instant) -> KnownChannel {
        let channel = KnownChannel::from(row);
        let mut entries = self.entries.lock();
        if entries.generation != ticket.0 {
            return channel;
        }
        if entries.by_id.len() >= self.capacity && !entries.by_id.contains_key(&row.id) {
            let ttl = self.ttl;
            entries
                .by_id
                .retain(|_, e| now.saturating_duration_since(e.read_at) < ttl);
            // Mostly fresh entries: start over rather than sweep again at every insert.
            if entries.by_id.len() > self.capacity / 2 {
                entries.by_id.clear();
            }
        }
        entries.by_id.insert(
            row.id,
            Entry {
                channel: channel.clone(),
                read_at: now,
            },
        );
        channel
    }

    /// Forgets a channel this process just changed (stopped, expired, watched); its next
    /// notification reads the row again.
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.entries.lock();
        entries.generation += 1;
        entries.by_id.remove(&id);
    }

    /// Forgets every channel of a user (their rows were deleted).
    pub fn forget_user(&self, user_id: Uuid) {
        let mut entries = self.entries.lock();
        entries.generation += 1;
        entries.by_id.retain(|_, e| e.channel.user_id != user_id);
    }

    /// Records message `number` of `channel`; whether it is higher than any seen before.
    pub fn is_new_message(&self, channel: Uuid, number: u64) -> bool {
        self.marks.is_new(channel, number)
    }

    /// How many channels are remembered.
    pub fn len(&self) -> usize {
        self.entries.lock().by_id.len()
    }

    /// Whether no channel is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The highest message number seen per channel, in memory. Google's numbers increase per
/// channel but are not consecutive; a number at or below the mark is a redelivery or a
/// late message, and the pull requested for the higher number already covers its change.
#[derive(Default)]
pub struct MessageMarks {
    marks: Mutex<HashMap<Uuid, u64>>,
}

impl MessageMarks {
    /// Records `number` for `channel`; whether it is higher than any seen before.
    pub fn is_new(&self, channel: Uuid, number: u64) -> bool {
        let mut marks = self.marks.lock();
        if marks.len() >= MAX_MARKED_CHANNELS && !marks.contains_key(&channel) {
            marks.clear();
        }
        match marks.get(&channel) {
            Some(&mark) if number <= mark => false,
            _ => {
                marks.insert(channel, number);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user_id: Uuid) -> ChannelRow {
        let now = Utc::now();
        ChannelRow {
            id: Uuid::new_v4(),
            user_id,
            resource_id: Some("resource".into()),
            expires_at: now + chrono::Duration::days(7),
            created_at: now,
            stopped_at: None,
            renew_lease_until: None,
            replaced_by: None,
        }
    }

    #[test]
    fn a_remembered_channel_is_answered_until_its_ttl_and_read_again_after() {
        let directory = ChannelDirectory::new(Duration::from_secs(30), 10);
        let channel = row(Uuid::new_v4());
        assert_eq!(directory.get(channel.id), None, "unknown until read");
        let now = Instant::now();
        let known = directory.remember_at(directory.ticket(), &channel, now);
        assert_eq!(known, KnownChannel::from(&channel));
        let at = |secs| directory.lookup_at(channel.id, now + Duration::from_secs(secs), KnownChannel::clone);
        assert_eq!(at(29), Some(known));
        assert_eq!(at(30), None, "stale");
        assert!(directory.is_empty(), "a stale entry is dropped when met");
    }

    #[test]
    fn a_forgotten_channel_is_read_again_and_a_read_that_raced_the_change_is_not_kept() {
        let directory = ChannelDirectory::default();
        let user = Uuid::new_v4();
        let (a, b) = (row(user), row(user));
        directory.remember(directory.ticket(), &a);
        directory.remember(directory.ticket(), &b);
        directory.forget(a.id);
        assert_eq!(directory.get(a.id), None);
        assert!(directory.get(b.id).is_some(), "only that channel is forgotten");

        // A read begun before a stop may have seen the channel live: not kept.
        let ticket = directory.ticket();
        directory.forget(a.id);
        let answered = directory.remember(ticket, &a);
        assert!(!answered.stopped, "the caller still gets what it read");
        assert_eq!(directory.get(a.id), None, "but it is not remembered");

        // One that began after it is.
        let stopped = ChannelRow {
            stopped_at: Some(Utc::now()),
            ..a.clone()
        };
        directory.remember(directory.ticket(), &stopped);
        assert!(directory.get(a.id).expect("remembered").stopped);
    }

    #[test]
    fn forgetting_a_user_forgets_only_their_channels() {
        let directory = ChannelDirectory::default();
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (a1, a2, b1) = (row(ada), row(ada), row(bob));
        for r in [&a1, &a2, &b1] {
            directory.remember(directory.ticket(), r);
        }
        directory.forget_user(ada);
        assert_eq!(directory.get(a1.id), None);
        assert_eq!(directory.get(a2.id), None);
        assert!(directory.get(b1.id).is_some());
        assert_eq!(directory.len(), 1);
    }

    #[test]
    fn the_directory_never_holds_more_than_its_capacity() {
        let ttl = Duration::from_secs(30);
        let directory = ChannelDirectory::new(ttl, 4);
        let user = Uuid::new_v4();
        let start = Instant::now();
        // Two old entries, then fresh ones: when full, the stale ones go first.
        let old: Vec<_> = (0..2).map(|_| row(user)).collect();
        for r in &old {
            directory.remember_at(directory.ticket(), r, start);
        }
        let later = start + ttl;
        let fresh: Vec<_> = (0..2).map(|_| row(user)).collect();
        for r in &fresh {
            directory.remember_at(directory.ticket(), r, later);
        }
        assert_eq!(directory.len(), 4);
        let one_more = row(user);
        directory.remember_at(directory.ticket(), &one_more, later);
        assert_eq!(directory.len(), 3, "the two stale entries made room");
        for r in fresh.iter().chain([&one_more]) {
            assert!(directory.lookup_at(r.id, later, |_| ()).is_some());
        }
        // Full of fresh entries: it starts over rather than grow.
        for _ in 0..10 {
            directory.remember_at(directory.ticket(), &row(user), later);
            assert!(directory.len() <= 4, "{} entries", directory.len());
        }
    }

    #[test]
    fn message_numbers_above_the_mark_are_new_and_the_rest_are_not() {
        let marks = MessageMarks::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(marks.is_new(a, 1));
        assert!(!marks.is_new(a, 1), "a redelivery");
        assert!(marks.is_new(a, 7), "numbers need not be consecutive");
        assert!(!marks.is_new(a, 5), "a late message is covered by the pull for 7");
        assert!(marks.is_new(b, 1), "each channel counts on its own");
        assert!(marks.is_new(a, 8));
    }

    #[test]
    fn two_directories_keep_their_own_marks() {
        let (one, two) = (ChannelDirectory::default(), ChannelDirectory::default());
        let channel = Uuid::new_v4();
        assert!(one.is_new_message(channel, 3));
        assert!(two.is_new_message(channel, 3), "another app has not seen it");
        assert!(!one.is_new_message(channel, 3));
    }
}
