//! What the probes report: whether the caches have synced, or this replica
//! is a standby. Set by the controller and leader election, read by
//! `crate::runtime::http`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What the probes report.
#[derive(Debug, Default)]
pub struct Health {
    /// Caches (reflector stores) that finished their first list.
    synced: AtomicUsize,
    /// How many must have, for readiness.
    needed: AtomicUsize,
    /// A standby replica (leader election, not leading) is ready as it is.
    standby: AtomicBool,
}

impl Health {
    pub fn new(caches: usize) -> Self {
        let health = Health::default();
        health.needed.store(caches, Ordering::SeqCst);
        health
    }

    pub fn cache_synced(&self) {
        self.synced.fetch_add(1, Ordering::SeqCst);
    }

    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
            || self.synced.load(Ordering::SeqCst) >= self.needed.load(Ordering::SeqCst)
    }
}
