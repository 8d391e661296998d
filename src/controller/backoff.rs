//! Retry delays after failed passes, per object: a transient error waits
//! 5 s, then twice as long after each further failure in a row, up to 5
//! minutes; a permanent one waits the 5 minutes at once. A pass that
//! succeeds forgets the object. Only failing objects are held here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::error::{PERMANENT_RETRY, TRANSIENT_RETRY};
use super::lock;

#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures in a row, by uid.
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// One more failure of `uid`: how long to wait before the next try.
    pub fn failed(&self, uid: &str, permanent: bool) -> Duration {
        let mut failures = lock(&self.failures);
        let count = failures.entry(uid.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        if permanent {
            return PERMANENT_RETRY;
        }
        let factor = 2u32.saturating_pow(count.saturating_sub(1).min(16));
        TRANSIENT_RETRY.saturating_mul(factor).min(PERMANENT_RETRY)
    }

    /// A pass of `uid` succeeded.
    pub fn succeeded(&self, uid: &str) {
        let mut failures = lock(&self.failures);
        if !failures.is_empty() {
            failures.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_exponentially_and_a_success_resets() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.failed("u", false).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.failed("other", false).as_secs(), 5, "per object");
        backoff.succeeded("u");
        assert_eq!(backoff.failed("u", false).as_secs(), 5);
        assert_eq!(backoff.failed("u", true), PERMANENT_RETRY);
        for _ in 0..100 {
            backoff.failed("many", false);
        }
        assert_eq!(
            backoff.failed("many", false),
            PERMANENT_RETRY,
            "no overflow"
        );
    }
}
