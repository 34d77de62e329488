//! What the integration suites share (`mod common;` in each): the fixed start time of every
//! manual clock and a deterministic id source. Each suite uses part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use kv_envelope::{session::IdSource, Result};

/// The instant every suite's `ManualClock` starts at (2025-11-24T16:00:00Z, in ms).
pub const NOW: u64 = 1_764_000_000_000;

/// Distinct deterministic session ids: a counter in the first bytes, the rest `fill` (suites use
/// different fills, so their ids never look alike in a failure message).
pub struct CountingIds {
    next: AtomicU64,
    fill: u8,
}

impl CountingIds {
    /// Ids `1, 2, 3, …` padded with `fill`.
    pub fn new(fill: u8) -> Self {
        Self {
            next: AtomicU64::new(0),
            fill,
        }
    }
}

impl IdSource for CountingIds {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        dest.fill(self.fill);
        for (d, s) in dest.iter_mut().zip(n.to_be_bytes()) {
            *d = s;
        }
        Ok(())
    }
}
