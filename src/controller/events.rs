//! Events: queued by reconciles, published by one background task through
//! kube's `Recorder`s (which turn repeats into a series), off the path to
//! Ready (SPEC §8).
//!
//! During a burst of credential writes ([`BURST_WRITES`] in two seconds,
//! the last one less than [`QUIET`] ago) the publisher holds events back;
//! once the burst is over it publishes everything queued, [`IN_FLIGHT`] at
//! a time. An event is never held longer than [`MAX_WAIT`]: in a burst that
//! lasts longer, events that old are published alongside the writes, which
//! bounds the queue. The queue is unbounded otherwise, so a reconcile never
//! waits for it and no event is dropped; on shutdown the publisher drains
//! the queue at full speed for up to [`DRAIN`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use super::lock;
use crate::engine::{PlannedEvent, Severity};

/// No credential write for this long: the burst is over.
const QUIET: Duration = Duration::from_millis(250);
/// Credential writes in this second and the one before that make a burst
/// (5 a second). Below it (a cluster with steady, light churn) events are
/// published at once; above it they would take the apiserver from the
/// writes: 20 resources created at 127/s met a p50 create→Ready of 77-103 ms
/// with their events sent among them (a limit of 40); with 10, 50 resources
/// at half load met 14-56 ms (BENCHMARKS.md).
const BURST_WRITES: u32 = 10;
/// The longest an event waits behind a burst. A burst of 20,000 new
/// resources takes about 90 s on a 2-core machine and publishes no event
/// until it ends; a longer one publishes events that have waited this long
/// as it goes, so the queue holds at most this much of the burst.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// Events published at once.
const IN_FLIGHT: usize = 16;
/// How often the publisher looks again while it holds events back.
const TICK: Duration = Duration::from_millis(50);
/// On shutdown, how long the publisher may take to drain the queue (the
/// lease is released after it, inside the pod's 30 s grace period).
pub const DRAIN: Duration = Duration::from_secs(10);

/// kube's `Recorder` keeps every event it published (to turn repeats into a
/// series) and drops expired ones (older than 6 minutes) only when it
/// publishes the next one (through the same recorder): after a burst of 20k `Issued` events that is tens
/// of MiB held until some later event. Once that long has passed without an
/// event, every entry has expired, and a fresh `Recorder` (empty cache)
/// replaces the old one without losing anything.
const RECORDER_CACHE_TTL: Duration = Duration::from_secs(6 * 60);

/// Credential writes: when the last one was, and how many in this second
/// and the one before.
struct Activity {
    origin: Instant,
    writes: Mutex<Writes>,
}

#[derive(Default)]
struct Writes {
    /// Whole seconds since `origin` of the newest write.
    second: u64,
    this_second: u32,
    last_second: u32,
    last_write: Option<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            writes: Mutex::new(Writes::default()),
        }
    }

    fn wrote(&self) {
        let now = Instant::now();
        let second = now.duration_since(self.origin).as_secs();
        let mut writes = lock(&self.writes);
        if second != writes.second {
            writes.last_second = if second == writes.second + 1 {
                writes.this_second
            } else {
                0
            };
            writes.this_second = 0;
            writes.second = second;
        }
        writes.this_second += 1;
        writes.last_write = Some(now);
    }

    /// A burst goes on: a credential write less than [`QUIET`] ago, and
    /// [`BURST_WRITES`] of them in this second and the one before.
    fn busy(&self) -> bool {
        let writes = lock(&self.writes);
        let recent = writes.last_write.is_some_and(|at| at.elapsed() < QUIET);
        let second = self.origin.elapsed().as_secs();
        let rate = match second.saturating_sub(writes.second) {
            0 => writes.this_second + writes.last_second,
            1 => writes.this_second,
            _ => 0,
        };
        recent && rate >= BURST_WRITES
    }
}

/// An event waiting to be published.
struct Queued {
    event: Event,
    reference: ObjectReference,
    since: Instant,
}

/// The reconciles' end of the queue.
#[derive(Clone)]
pub struct EventQueue {
    sender: mpsc::UnboundedSender<Queued>,
    activity: Arc<Activity>,
}

impl EventQueue {
    /// A queue and its publisher (to be spawned; it ends once every queue
    /// handle is dropped and the queue is drained).
    pub fn start(
        client: Client,
        reporter: Reporter,
    ) -> (EventQueue, impl std::future::Future<Output = ()>) {
        let (sender, queue) = mpsc::unbounded();
        let activity = Arc::new(Activity::new());
        let publisher = publish_events(client, reporter, queue, activity.clone());
        (EventQueue { sender, activity }, publisher)
    }

    /// A reconcile wrote a credential: events wait while these go on.
    pub fn credential_written(&self) {
        self.activity.wrote();
    }

    /// No more events: the publisher drains what is queued, at full speed.
    pub fn close(&self) {
        self.sender.close_channel();
    }

    /// Queues the plan's events about `object`; never waits.
    pub fn emit(&self, object: ObjectReference, events: &[PlannedEvent]) {
        for planned in events {
            let event = Event {
                type_: match planned.severity {
                    Severity::Normal => EventType::Normal,
                    Severity::Warning => EventType::Warning,
                },
                reason: planned.reason.as_str().into(),
                note: Some(planned.note.clone()),
                action: "Reconcile".into(),
                secondary: None,
            };
            let queued = Queued {
                event,
                reference: object.clone(),
                since: Instant::now(),
            };
            if self.sender.unbounded_send(queued).is_err() {
                warn!("event queue closed; an event was not recorded");
            }
        }
    }
}

/// kube's `Recorder` scans its whole cache of published events on every
/// publish (to drop expired ones): one recorder would make a burst of N
/// events cost N² (measured: 1.3 ms of keysmith CPU per event at 20,000).
/// Events are spread over this many recorders by the object they are about,
/// so repeats about one object still meet in one cache and become a series.
const RECORDER_SHARDS: usize = 64;

struct InUse {
    recorders: Vec<Recorder>,
    last_event: Instant,
}

impl InUse {
    /// The recorder for events about `reference`.
    fn recorder(&self, reference: &ObjectReference) -> Recorder {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&reference.namespace, &reference.name, &reference.uid).hash(&mut hasher);
        self.recorders[hasher.finish() as usize % self.recorders.len()].clone()
    }
}

/// Whether the publisher may send the oldest waiting event now.
fn may_publish(busy: bool, closing: bool, oldest: Option<Instant>, in_flight: usize) -> bool {
    let Some(oldest) = oldest else {
        return false;
    };
    in_flight < IN_FLIGHT && (!busy || closing || oldest.elapsed() >= MAX_WAIT)
}

/// The recorders events go out through, and the task that replaces them
/// (and so their caches of recent events) once they sat idle for
/// [`RECORDER_CACHE_TTL`].
fn recorders(client: Client, reporter: Reporter) -> (Arc<Mutex<InUse>>, AbortOnDrop) {
    let fresh = move || InUse {
        recorders: (0..RECORDER_SHARDS)
            .map(|_| Recorder::new(client.clone(), reporter.clone()))
            .collect(),
        last_event: Instant::now(),
    };
    let current = Arc::new(Mutex::new(fresh()));
    let refresher = AbortOnDrop(tokio::spawn({
        let current = current.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let mut current = lock(&current);
                if current.last_event.elapsed() >= RECORDER_CACHE_TTL {
                    *current = fresh();
                }
            }
        }
    }));
    (current, refresher)
}

async fn publish_events(
    client: Client,
    reporter: Reporter,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    activity: Arc<Activity>,
) {
    let (current, refresher) = recorders(client, reporter);
    let mut waiting: VecDeque<Queued> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let mut closed_at: Option<Instant> = None;
    loop {
        let closing = closed_at.is_some();
        if closing && (waiting.is_empty() && in_flight.is_empty()) {
            break;
        }
        if closed_at.is_some_and(|at| at.elapsed() >= DRAIN) {
            warn!(
                unpublished = waiting.len() + in_flight.len(),
                "shutting down before every queued event was published"
            );
            break;
        }
        while may_publish(
            activity.busy(),
            closing,
            waiting.front().map(|q| q.since),
            in_flight.len(),
        ) {
            let Some(queued) = waiting.pop_front() else {
                break;
            };
            let recorder = {
                let mut current = lock(&current);
                current.last_event = Instant::now();
                current.recorder(&queued.reference)
            };
            in_flight.push(async move {
                if let Err(error) = recorder.publish(&queued.event, &queued.reference).await {
                    warn!(%error, reason = queued.event.reason, "could not record an event");
                }
            });
        }
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            next = queue.next(), if !closing => match next {
                Some(queued) => waiting.push_back(queued),
                None => closed_at = Some(Instant::now()),
            },
            () = tokio::time::sleep(TICK), if !waiting.is_empty() => {}
        }
    }
    drop(refresher);
}

/// A task that ends when its handle goes (also when the publisher itself is
/// dropped by a timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wait_during_a_burst_unless_they_waited_long() {
        let now = Instant::now();
        assert!(!may_publish(false, false, None, 0), "nothing to publish");
        assert!(may_publish(false, false, Some(now), 0), "no burst: at once");
        assert!(may_publish(false, false, Some(now), IN_FLIGHT - 1));
        assert!(!may_publish(false, false, Some(now), IN_FLIGHT));
        assert!(
            !may_publish(true, false, Some(now), 0),
            "burst: a fresh event waits"
        );
        let aged = now - MAX_WAIT;
        assert!(
            may_publish(true, false, Some(aged), 0),
            "burst: an aged one goes"
        );
        assert!(!may_publish(true, false, Some(aged), IN_FLIGHT));
        assert!(may_publish(true, true, Some(now), 0), "closing: full speed");
    }

    #[test]
    fn a_burst_is_many_writes_in_a_second_and_ends_when_they_stop() {
        let activity = Activity::new();
        assert!(!activity.busy(), "nothing written yet");
        for _ in 0..BURST_WRITES - 1 {
            activity.wrote();
        }
        assert!(!activity.busy(), "light churn is no burst");
        activity.wrote();
        assert!(activity.busy());
        std::thread::sleep(QUIET);
        assert!(!activity.busy(), "no write for QUIET: over");
    }
}
