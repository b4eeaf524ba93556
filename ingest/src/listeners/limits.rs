//! Connection limits shared by the stream listeners (TCP syslog, HTTP): a cap on connections
//! served at once and a cap per source address, so one host (or one attacker opening sockets
//! and never writing: slowloris) cannot take every slot.
//!
//! A connection holds a [`ConnectionPermit`] while it is served; dropping the permit gives the
//! slot back. The bookkeeping is one small map behind a mutex, touched twice per connection and
//! never per event.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` connections are open.
    Total,
    /// `max_per_source` connections from this address are open.
    PerSource,
}

impl Refusal {
    /// The reason's name in logs, stats and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerSource => "max_connections_per_source",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Caps on open connections, overall and per source address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_source: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

impl ConnectionLimiter {
    /// Limits of `max_total` connections, `max_per_source` of them from one address (both at
    /// least 1).
    pub fn new(max_total: usize, max_per_source: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    /// Takes a slot for a connection from `source`, or says which limit refuses it.
    pub fn try_acquire(self: &Arc<Self>, source: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let from_source = open.by_source.entry(source).or_insert(0);
        if *from_source >= self.max_per_source {
            return Err(Refusal::PerSource);
        }
        *from_source += 1;
        open.total += 1;
        Ok(ConnectionPermit {
            limiter: Arc::clone(self),
            source,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    fn release(&self, source: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_source.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                open.by_source.remove(&source);
            }
        }
    }
}

/// One open connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    source: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limiter.release(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn one_source_cannot_take_every_slot() {
        let limiter = ConnectionLimiter::new(4, 2);
        let a1 = limiter.try_acquire(ip(1)).unwrap();
        let _a2 = limiter.try_acquire(ip(1)).unwrap();
        assert_eq!(limiter.try_acquire(ip(1)).unwrap_err(), Refusal::PerSource);
        let _b1 = limiter.try_acquire(ip(2)).unwrap();
        let _b2 = limiter.try_acquire(ip(2)).unwrap();
        assert_eq!(limiter.try_acquire(ip(3)).unwrap_err(), Refusal::Total);
        assert_eq!(limiter.open(), 4);
        drop(a1);
        assert_eq!(limiter.open(), 3);
        let _a3 = limiter.try_acquire(ip(1)).unwrap();
        assert_eq!(limiter.try_acquire(ip(3)).unwrap_err(), Refusal::Total);
    }

    #[test]
    fn released_sources_leave_no_entry_behind() {
        let limiter = ConnectionLimiter::new(8, 8);
        for last in 0..=255 {
            drop(limiter.try_acquire(ip(last)).unwrap());
        }
        let open = limiter.open.lock().unwrap();
        assert_eq!(open.total, 0);
        assert!(open.by_source.is_empty());
    }
}
