//! The periodic work's timing rules: when a connection's next fallback pull is due, and
//! how a fleet shares a quota. Pure; the store records the times, the jobs act on them.

use chrono::{DateTime, Duration, Utc};

/// How the fallback pulls are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullCadence {
    /// One pull per connection per interval.
    pub interval: Duration,
    /// A connection whose channel delivered a notification within the last interval is
    /// pulled every `quiet_factor` intervals instead (1: always every interval).
    pub quiet_factor: u32,
}

impl PullCadence {
    /// The first due time of a connection never scheduled: `now` plus a phase within the
    /// interval (`fraction` in [0, 1), drawn at random by the caller), so connections made
    /// together are not pulled together.
    pub fn first_due(&self, now: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
        let fraction = fraction.clamp(0.0, 1.0);
        let millis = (self.interval.num_milliseconds() as f64 * fraction) as i64;
        truncate_millis(now + Duration::milliseconds(millis))
    }

    /// The due time after a pull that was due at `due` and ran at `now`. The phase is
    /// kept — the next due time is `due` plus whole intervals — so each connection is
    /// pulled exactly once per interval however late a run is, and never drifts. It is one
    /// interval after `due` (or `quiet_factor` intervals when the channel notified since
    /// `now - interval`), moved on by whole intervals until it is no more than one interval
    /// in the past: a backlog is caught up by one pull per connection, not by one per
    /// missed interval.
    pub fn next_due(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        last_notified: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let step = self.interval.max(Duration::milliseconds(1));
        let notified = last_notified.is_some_and(|at| at > now - step);
        let intervals = if notified { self.quiet_factor.max(1) } else { 1 };
        let mut next = due + step * intervals as i32;
        let oldest = now - step;
        if next <= oldest {
            let behind = (oldest - next).num_milliseconds() / step.num_milliseconds() + 1;
            next += step * behind as i32;
        }
        truncate_millis(next)
    }
}

/// `at` to whole milliseconds: every database keeps that precision, so a due time read
/// back compares equal to the one written.
pub fn truncate_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// One instance's share of a fleet-wide per-minute quota: `total / instances`, rounded
/// down, at least 1.
pub fn share_of(total: u32, instances: u32) -> u32 {
    (total / instances.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(minutes: i64, quiet: u32) -> PullCadence {
        PullCadence {
            interval: Duration::minutes(minutes),
            quiet_factor: quiet,
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    #[test]
    fn a_pull_on_time_or_late_is_next_due_one_interval_after_its_due_time() {
        let c = cadence(15, 4);
        assert_eq!(c.next_due(at(0), at(0), None), at(15));
        assert_eq!(c.next_due(at(0), at(9), None), at(15), "late: the phase is kept");
        assert_eq!(
            c.next_due(at(0), at(29), None),
            at(15),
            "one interval late still counts"
        );
    }

    #[test]
    fn a_backlog_longer_than_an_interval_is_caught_up_with_one_pull_keeping_the_phase() {
        let c = cadence(15, 4);
        // Due at 0, pulled at 100: 15, 30, … 75 are more than one interval behind.
        let next = c.next_due(at(0), at(100), None);
        assert_eq!(next, at(90));
        assert!(next > at(100) - Duration::minutes(15));
    }

    #[test]
    fn a_connection_notified_within_the_interval_is_pulled_less_often() {
        let c = cadence(15, 4);
        assert_eq!(c.next_due(at(0), at(1), Some(at(-5))), at(60));
        assert_eq!(c.next_due(at(0), at(1), Some(at(-20))), at(15), "notified long ago");
        assert_eq!(cadence(15, 1).next_due(at(0), at(1), Some(at(0))), at(15));
    }

    #[test]
    fn first_due_times_fall_within_one_interval() {
        let c = cadence(15, 4);
        assert_eq!(c.first_due(at(0), 0.0), at(0));
        assert_eq!(c.first_due(at(0), 0.5), at(0) + Duration::seconds(450));
        assert!(c.first_due(at(0), 0.999_999) < at(15));
    }

    #[test]
    fn each_instance_takes_an_equal_share_of_the_quota() {
        assert_eq!(share_of(10_000, 1), 10_000);
        assert_eq!(share_of(10_000, 3), 3_333);
        assert_eq!(share_of(10_000, 0), 10_000);
        assert_eq!(share_of(2, 5), 1);
    }
}
