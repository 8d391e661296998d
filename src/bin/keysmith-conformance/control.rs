//! The test switches of a conformance server, under `/_conformance/`:
//!
//! - `POST /_conformance/faults` `{"operation": "CreateApp", "kind": "unavailable", "times": 1}`
//!   queues a fault for the next `times` calls of that operation (`"*"`: any).
//!   Kinds: `unavailable` (5xx, nothing done), `throttled` (the provider's
//!   throttling answer, nothing done), `timeout_after_acting` (acts, then
//!   answers only after `delay_ms`, default 30 s), `drop_after_acting` (acts,
//!   then breaks the connection mid-answer).
//! - `DELETE /_conformance/faults`: drop every queued fault.
//! - `POST /_conformance/latency` `{"ms": 50}`: every answer waits that long.
//! - `GET /_conformance/stats`: calls per operation, writes, and the highest
//!   number of calls seen in any one-second window (the client limit as the
//!   server sees it).
//! - `DELETE /_conformance/stats`: zero the counters.
//!
//! Each provider names its operations as its API does (Huawei:
//! `CreateAppV2`…; Alibaba: the `Action`), and adds its own routes for the
//! state (see its module).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::Shared;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Unavailable,
    Throttled,
    TimeoutAfterActing,
    DropAfterActing,
}

impl FaultKind {
    /// Whether the server performs the operation before failing.
    pub fn acts(self) -> bool {
        matches!(
            self,
            FaultKind::TimeoutAfterActing | FaultKind::DropAfterActing
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Fault {
    pub operation: String,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Inner {
    faults: Vec<Fault>,
    latency: Duration,
    calls: BTreeMap<String, u64>,
    writes: u64,
    recent: VecDeque<Instant>,
    peak_per_second: usize,
}

/// Faults, latency and counters, shared by every handler.
#[derive(Default)]
pub struct Control {
    inner: Mutex<Inner>,
}

#[derive(Serialize)]
pub struct Stats {
    pub calls: BTreeMap<String, u64>,
    pub writes: u64,
    pub peak_calls_per_second: usize,
}

impl Control {
    /// Counts one authenticated call of `operation` and returns the fault to
    /// play for it, if one is queued. `write` marks operations that change
    /// the store.
    pub fn call(&self, operation: &str, write: bool) -> Option<Fault> {
        let mut inner = self.inner.lock().unwrap();
        *inner.calls.entry(operation.to_string()).or_default() += 1;
        if write {
            inner.writes += 1;
        }
        let now = Instant::now();
        inner.recent.push_back(now);
        while inner
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            inner.recent.pop_front();
        }
        inner.peak_per_second = inner.peak_per_second.max(inner.recent.len());
        let index = inner
            .faults
            .iter()
            .position(|f| f.operation == operation || f.operation == "*")?;
        let fault = inner.faults[index].clone();
        inner.faults[index].times -= 1;
        if inner.faults[index].times == 0 {
            inner.faults.remove(index);
        }
        Some(fault)
    }

    /// The configured latency, to wait before every answer.
    pub fn latency(&self) -> Duration {
        self.inner.lock().unwrap().latency
    }

    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock().unwrap();
        Stats {
            calls: inner.calls.clone(),
            writes: inner.writes,
            peak_calls_per_second: inner.peak_per_second,
        }
    }
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/_conformance/faults",
            post(
                |State(s): State<Arc<Shared>>, Json(fault): Json<Fault>| async move {
                    if fault.times > 0 {
                        s.control.inner.lock().unwrap().faults.push(fault);
                    }
                    "queued"
                },
            )
            .delete(|State(s): State<Arc<Shared>>| async move {
                s.control.inner.lock().unwrap().faults.clear();
                "cleared"
            }),
        )
        .route(
            "/_conformance/latency",
            post(
                |State(s): State<Arc<Shared>>, Json(l): Json<Latency>| async move {
                    s.control.inner.lock().unwrap().latency = Duration::from_millis(l.ms);
                    "set"
                },
            ),
        )
        .route(
            "/_conformance/stats",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.control.stats()) }).delete(
                |State(s): State<Arc<Shared>>| async move {
                    let mut inner = s.control.inner.lock().unwrap();
                    inner.calls.clear();
                    inner.writes = 0;
                    inner.recent.clear();
                    inner.peak_per_second = 0;
                    "zeroed"
                },
            ),
        )
        .with_state(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_plays_its_times_then_is_gone() {
        let control = Control::default();
        control.inner.lock().unwrap().faults.push(Fault {
            operation: "CreateApp".into(),
            kind: FaultKind::Unavailable,
            times: 2,
            delay_ms: None,
        });
        assert!(control.call("DescribeApps", false).is_none());
        assert_eq!(
            control.call("CreateApp", true).map(|f| f.kind),
            Some(FaultKind::Unavailable)
        );
        assert!(control.call("CreateApp", true).is_some());
        assert!(control.call("CreateApp", true).is_none());
        let stats = control.stats();
        assert_eq!(stats.calls["CreateApp"], 3);
        assert_eq!(stats.writes, 3);
    }
}
