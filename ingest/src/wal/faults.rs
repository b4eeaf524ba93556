//! The filesystem seam for fault injection: a full disk, a failing fsync.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Hooks the WAL calls before it writes or syncs. Production uses none; tests plug one in with
/// [`super::WalOptions::fault_injection`].
pub trait FaultInjection: fmt::Debug + Send + Sync {
    /// Called before `len` bytes are written (a record or a new segment's header). Returns how
    /// many of them reach the file before the write fails with "no space left on device";
    /// returning `len` lets the write through.
    fn writable_bytes(&self, len: usize) -> usize {
        len
    }

    /// Called before each fsync; an error fails that fsync.
    fn before_sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A disk with a byte budget: writes consume it, a write that does not fit writes what fits and
/// fails with `StorageFull`. [`DiskBudget::set_remaining`] frees space again.
#[derive(Debug)]
pub struct DiskBudget {
    remaining: AtomicU64,
    fail_syncs: AtomicBool,
}

impl DiskBudget {
    pub fn new(remaining: u64) -> DiskBudget {
        DiskBudget {
            remaining: AtomicU64::new(remaining),
            fail_syncs: AtomicBool::new(false),
        }
    }

    /// Sets the bytes that can still be written.
    pub fn set_remaining(&self, remaining: u64) {
        self.remaining.store(remaining, Ordering::SeqCst);
    }

    pub fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::SeqCst)
    }

    /// Makes every following fsync fail (EIO) while `fail` is set.
    pub fn fail_syncs(&self, fail: bool) {
        self.fail_syncs.store(fail, Ordering::SeqCst);
    }
}

impl FaultInjection for DiskBudget {
    fn writable_bytes(&self, len: usize) -> usize {
        let wanted = len as u64;
        let mut granted = 0;
        let _ = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |remaining| {
                granted = remaining.min(wanted);
                Some(remaining - granted)
            });
        usize::try_from(granted).unwrap_or(len)
    }

    fn before_sync(&self) -> std::io::Result<()> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        Ok(())
    }
}
