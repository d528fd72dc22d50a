//! Per-device rate limiting of warnings: a device that keeps failing the same way logs once per
//! interval, not once per attempt, so one broken CPE cannot flood the logs of a fleet.

use radar_core::DeviceKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}
