//! Kinesis' per-shard write limits, for streams with `enforce_limits`: 1,000 records/s
//! and 1 MiB/s, each a token bucket holding one second's worth (the burst allowance).

use std::time::Instant;

/// Records per second a shard takes.
pub const RECORDS_PER_SECOND: f64 = 1000.0;
/// Bytes (data plus partition key) per second a shard takes.
pub const BYTES_PER_SECOND: f64 = 1024.0 * 1024.0;

/// Two token buckets: records and bytes.
#[derive(Debug)]
pub struct WriteLimiter {
    records: f64,
    bytes: f64,
    refilled: Instant,
}

impl Default for WriteLimiter {
    fn default() -> Self {
        Self {
            records: RECORDS_PER_SECOND,
            bytes: BYTES_PER_SECOND,
            refilled: Instant::now(),
        }
    }
}

impl WriteLimiter {
    /// Takes one record of `size` bytes if both buckets allow it.
    pub fn try_take(&mut self, size: usize, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.records = (self.records + dt * RECORDS_PER_SECOND).min(RECORDS_PER_SECOND);
        self.bytes = (self.bytes + dt * BYTES_PER_SECOND).min(BYTES_PER_SECOND);
        let size = size as f64;
        if self.records >= 1.0 && self.bytes >= size {
            self.records -= 1.0;
            self.bytes -= size;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut l = WriteLimiter::default();
        assert_eq!((0..1500).filter(|_| l.try_take(10, t0)).count(), 1000);
        // Half a second later, 500 more.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..1000).filter(|_| l.try_take(10, t1)).count(), 500);
    }

    #[test]
    fn bytes_are_limited_too() {
        let t0 = Instant::now();
        let mut l = WriteLimiter::default();
        assert!(l.try_take(1024 * 1024, t0));
        assert!(!l.try_take(1, t0));
    }
}
