//! Per-device rate limiting of warnings: a device that keeps failing the same way logs once per
//! interval, not once per attempt, so one broken CPE cannot flood the logs of a fleet.

use radar_core::DeviceKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Warnings for a connection that keeps failing (a broker or server that is away): the first
/// failure is a warning, the retries are debug lines, with a reminder every `remind`.
pub struct RetryLog {
    remind: Duration,
    warned_at: Option<Instant>,
}

impl RetryLog {
    pub fn new(remind: Duration) -> Self {
        Self {
            remind,
            warned_at: None,
        }
    }

    /// A failure: true when it is worth a warning.
    pub fn failed(&mut self) -> bool {
        let now = Instant::now();
        match self.warned_at {
            Some(at) if now.duration_since(at) < self.remind => false,
            _ => {
                self.warned_at = Some(now);
                true
            }
        }
    }

    /// The connection worked: the next failure is news again.
    pub fn recovered(&mut self) {
        self.warned_at = None;
    }
}

pub struct LogLimiter {
    interval: Duration,
    last: Mutex<HashMap<(DeviceKey, &'static str), Instant>>,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// True when a `kind` warning for `device` may be logged now.
    pub fn allow(&self, device: &DeviceKey, kind: &'static str) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() > 100_000 {
            let interval = self.interval;
            last.retain(|_, t| now.duration_since(*t) < interval);
        }
        match last.get(&(device.clone(), kind)) {
            Some(t) if now.duration_since(*t) < self.interval => false,
            _ => {
                last.insert((device.clone(), kind), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_device_and_kind() {
        let limiter = LogLimiter::new(Duration::from_secs(60));
        let a = DeviceKey::parse("a").unwrap();
        let b = DeviceKey::parse("b").unwrap();
        assert!(limiter.allow(&a, "cr"));
        assert!(!limiter.allow(&a, "cr"));
        assert!(limiter.allow(&a, "other"));
        assert!(limiter.allow(&b, "cr"));
    }

    #[test]
    fn a_lasting_outage_warns_once_then_reminds() {
        let mut log = RetryLog::new(Duration::from_secs(600));
        assert!(log.failed());
        assert!(!log.failed());
        assert!(!log.failed());
        log.recovered();
        assert!(log.failed(), "a new outage is news");
        let mut eager = RetryLog::new(Duration::ZERO);
        assert!(eager.failed());
        assert!(eager.failed(), "reminded once the interval passed");
    }
}
