//! `keysmith run` under measurement: started by the launcher the tests use
//! (tests/support/launch.rs) with no HTTP ports and warnings only, its
//! memory and CPU read from /proc.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::launch::{self, Launch};
use crate::measure::process_cpu;

pub struct Operator {
    child: Child,
}

impl Operator {
    /// `keysmith run --namespace <ns> --concurrency <concurrency>`.
    pub fn start(binary: &Path, ns: &str, concurrency: u16) -> Result<Operator, BoxError> {
        let launch = Launch {
            extra_args: vec!["--concurrency".into(), concurrency.to_string()],
            ..Launch::new(binary, ns)
        };
        Ok(Operator {
            child: launch.spawn()?,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now (`VmRSS`), or at its peak (`VmHWM`), in MiB.
    pub fn memory_mib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// Waits (up to `limit`) until the operator has used under 2% of a core
    /// for 3 s running: its re-list and re-reconciles are over.
    pub async fn settle(&self, limit: Duration) {
        let pid = self.child.id().to_string();
        let deadline = Instant::now() + limit;
        let mut quiet = 0;
        let mut last = process_cpu(&pid);
        while quiet < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = process_cpu(&pid);
            quiet = if now - last < 0.02 { quiet + 1 } else { 0 };
            last = now;
        }
    }

    /// SIGTERM, and wait for it to exit (SIGKILL after a minute).
    pub fn stop(mut self) {
        launch::terminate(&mut self.child, Duration::from_secs(60));
    }
}
