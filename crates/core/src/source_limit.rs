//! Connections per source address (issue 13: one host must not take every slot of a listener).
//! A listener holds a [`PerAddress`]; each accepted connection takes a [`Slot`] for its peer's
//! address, given back when the connection ends. Over the limit, the listener refuses the
//! connection the way its protocol allows (a 503 with Retry-After). The limit is generous by
//! default: many CPEs share one address behind a carrier-grade NAT.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct PerAddress {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place; dropping it frees the place.
pub struct Slot {
    owner: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    /// `limit` connections per address; 0 means no limit.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `address`, or none when it already has `limit`.
    pub fn try_acquire(self: &Arc<Self>, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if self.limit > 0 && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            owner: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_limit_and_slots_come_back() {
        let limits = PerAddress::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.try_acquire(a).unwrap();
        let _second = limits.try_acquire(a).unwrap();
        assert!(limits.try_acquire(a).is_none());
        assert!(
            limits.try_acquire(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(limits.try_acquire(a).is_some());
        let unlimited = PerAddress::new(0);
        let held: Vec<_> = (0..1000)
            .map(|_| unlimited.try_acquire(a).unwrap())
            .collect();
        assert_eq!(held.len(), 1000);
        drop(held);
        assert!(unlimited.open.lock().unwrap().is_empty());
    }
}
