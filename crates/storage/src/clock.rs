//! Time as the domain reads it.
//!
//! Retention, arrival times, iterator age and lifecycle windows are all measured in
//! wall-clock milliseconds. Reading them through a [`Clock`] lets a test move time
//! instead of waiting for it: AWS's minimums (24 hours of retention) stay true, and a
//! test advances a [`ManualClock`] past them rather than configuring fractions of an
//! hour and sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now_ms(&self) -> u64;
}

/// A shared clock, as the domain holds it.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to: for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock that reads the system's time now, then stands still.
    pub fn starting_now() -> Arc<Self> {
        Arc::new(Self {
            now_ms: AtomicU64::new(SystemClock.now_ms()),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now_ms.fetch_add(ms, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let c = ManualClock::starting_now();
        let t = c.now_ms();
        assert!(t > 1_700_000_000_000);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now_ms(), t);
        c.advance(Duration::from_secs(86_400));
        assert_eq!(c.now_ms(), t + 86_400_000);
    }
}
