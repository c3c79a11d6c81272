//! The slot breaker: counts alternations between the two sides (a local change synced to
//! Google, then a Google change applied here) within a sliding window. Past the threshold
//! the slot is paused, so two writers that keep undoing each other cannot loop forever.

use chrono::{DateTime, Duration, Utc};

use super::states::Side;

/// A slot breaker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotBreaker {
    /// Alternations counted in the current window.
    pub alternations: i32,
    /// When the current window began.
    pub window_start: Option<DateTime<Utc>>,
}

/// The breaker's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRule {
    /// Alternations that trip it.
    pub threshold: u32,
    /// The window they must fall in.
    pub window: Duration,
}

impl SlotBreaker {
    /// The counters after a Google change is applied at `now`, given the side that changed
    /// the slot before; and whether the breaker trips.
    pub fn after_google_change(self, previous: Option<Side>, now: DateTime<Utc>, rule: BreakerRule) -> (Self, bool) {
        if previous != Some(Side::App) {
            return (self, false);
        }
        let in_window = self.window_start.is_some_and(|start| now - start < rule.window);
        let next = if in_window {
            SlotBreaker {
                alternations: self.alternations.saturating_add(1),
                window_start: self.window_start,
            }
        } else {
            SlotBreaker {
                alternations: 1,
                window_start: Some(now),
            }
        };
        let tripped = u32::try_from(next.alternations).unwrap_or(0) >= rule.threshold;
        (next, tripped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: BreakerRule = BreakerRule {
        threshold: 5,
        window: Duration::seconds(60),
    };

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn five_alternations_within_the_window_trip_it() {
        let mut b = SlotBreaker {
            alternations: 0,
            window_start: None,
        };
        for i in 0..4 {
            let (next, tripped) = b.after_google_change(Some(Side::App), at(i * 10), RULE);
            assert!(!tripped, "alternation {}", i + 1);
            b = next;
        }
        let (b, tripped) = b.after_google_change(Some(Side::App), at(45), RULE);
        assert!(tripped);
        assert_eq!(b.alternations, 5);
    }

    #[test]
    fn google_changes_in_a_row_are_not_alternations() {
        let b = SlotBreaker {
            alternations: 4,
            window_start: Some(at(0)),
        };
        assert_eq!(b.after_google_change(Some(Side::Google), at(1), RULE), (b, false));
        assert_eq!(b.after_google_change(None, at(1), RULE), (b, false));
    }

    #[test]
    fn a_new_window_starts_the_count_again() {
        let b = SlotBreaker {
            alternations: 4,
            window_start: Some(at(0)),
        };
        let (next, tripped) = b.after_google_change(Some(Side::App), at(61), RULE);
        assert!(!tripped);
        assert_eq!(next.alternations, 1);
        assert_eq!(next.window_start, Some(at(61)));
    }
}
