//! Kinesis' per-shard limits, for streams with `enforce_limits`: writes of 1,000
//! records/s and 1 MiB/s, reads of 5 GetRecords calls/s and 2 MiB/s; each a token bucket
//! holding one second's worth (the burst allowance).

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

/// GetRecords calls per second a shard takes.
pub const READS_PER_SECOND: f64 = 5.0;
/// Bytes per second GetRecords may return from a shard.
pub const READ_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;

/// Two token buckets for reads: calls, and bytes returned. The bytes bucket is charged
/// after a read (its size is known only then) and may go below zero, which throttles
/// the next calls until it refills, as Kinesis does.
#[derive(Debug)]
pub struct ReadLimiter {
    calls: f64,
    bytes: f64,
    refilled: Instant,
}

impl Default for ReadLimiter {
    fn default() -> Self {
        Self {
            calls: READS_PER_SECOND,
            bytes: READ_BYTES_PER_SECOND,
            refilled: Instant::now(),
        }
    }
}

impl ReadLimiter {
    /// Takes one call if the shard allows it now.
    pub fn try_begin(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.calls = (self.calls + dt * READS_PER_SECOND).min(READS_PER_SECOND);
        self.bytes = (self.bytes + dt * READ_BYTES_PER_SECOND).min(READ_BYTES_PER_SECOND);
        if self.calls >= 1.0 && self.bytes > 0.0 {
            self.calls -= 1.0;
            true
        } else {
            false
        }
    }

    /// Charges the bytes a read returned.
    pub fn charge(&mut self, bytes: usize) {
        self.bytes -= bytes as f64;
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
    fn five_reads_a_second_and_bytes_charged_after() {
        let t0 = Instant::now();
        let mut r = ReadLimiter::default();
        assert_eq!((0..10).filter(|_| r.try_begin(t0)).count(), 5);
        let t1 = t0 + Duration::from_secs(1);
        assert!(r.try_begin(t1));
        r.charge(3 * 1024 * 1024);
        // Over budget: throttled until the bytes refill (half a second here).
        assert!(!r.try_begin(t1));
        assert!(r.try_begin(t1 + Duration::from_millis(600)));
    }

    #[test]
    fn bytes_are_limited_too() {
        let t0 = Instant::now();
        let mut l = WriteLimiter::default();
        assert!(l.try_take(1024 * 1024, t0));
        assert!(!l.try_take(1, t0));
    }
}
