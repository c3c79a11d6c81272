//! When to try a failed push again: `min(base · 2^(n-1), cap)` with ±25 % jitter, so
//! retries of many slots spread out instead of arriving at Google together.

use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 1 s, doubling, at most 15 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `failures + 1` without jitter (`failures` ≥ 1).
    pub fn nominal(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// The delay with jitter; `unit` is a random number in `[0, 1)`, mapped to ±25 %.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let factor = 0.75 + 0.5 * unit.clamp(0.0, 1.0);
        self.nominal(failures).mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.nominal(1), Duration::from_secs(1));
        assert_eq!(b.nominal(2), Duration::from_secs(2));
        assert_eq!(b.nominal(5), Duration::from_secs(16));
        assert_eq!(b.nominal(10), Duration::from_secs(512));
        assert_eq!(b.nominal(11), Duration::from_secs(900));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn jitter_stays_within_a_quarter_either_way() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(3));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(b.delay(3, 0.999_999), Duration::from_secs_f64(4.0 * 1.249_999_5));
        assert_eq!(b.delay(20, 1.0), Duration::from_secs(900).mul_f64(1.25));
    }
}
