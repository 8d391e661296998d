//! Events: queued by reconciles, published by one background task with one
//! shared `Recorder` (which turns repeats into a series), a few at a time,
//! off the path to Ready.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

use super::lock;
use crate::engine::{PlannedEvent, Severity};

/// How many events may wait before reconciles wait for the publisher.
const QUEUE_LEN: usize = 1024;
/// Events published at once.
const IN_FLIGHT: usize = 4;

/// kube's `Recorder` keeps every event it published (to turn repeats into a
/// series) and drops expired ones (older than 6 minutes) only when it
/// publishes the next one: after a burst of 20k `Issued` events that is tens
/// of MiB held until some later event. Once that long has passed without an
/// event, every entry has expired, and a fresh `Recorder` (empty cache)
/// replaces the old one without losing anything.
const RECORDER_CACHE_TTL: Duration = Duration::from_secs(6 * 60);

/// The reconciles' end of the queue.
#[derive(Clone)]
pub struct EventQueue(mpsc::Sender<(Event, ObjectReference)>);

impl EventQueue {
    /// A queue and its publisher (to be spawned; it ends once every queue
    /// handle is dropped and the queue is drained).
    pub fn start(
        client: Client,
        reporter: Reporter,
    ) -> (EventQueue, impl std::future::Future<Output = ()>) {
        let (sender, queue) = mpsc::channel(QUEUE_LEN);
        (EventQueue(sender), publish_events(client, reporter, queue))
    }

    /// Queues the plan's events about `object`.
    pub async fn emit(&self, object: ObjectReference, events: &[PlannedEvent]) {
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
            let mut sender = self.0.clone();
            if sender.send((event, object.clone())).await.is_err() {
                warn!("event queue closed; an event was not recorded");
            }
        }
    }
}

struct InUse {
    recorder: Recorder,
    last_event: Instant,
}

async fn publish_events(
    client: Client,
    reporter: Reporter,
    queue: mpsc::Receiver<(Event, ObjectReference)>,
) {
    let fresh = move || InUse {
        recorder: Recorder::new(client.clone(), reporter.clone()),
        last_event: Instant::now(),
    };
    let current = Arc::new(Mutex::new(fresh()));
    let refresher = tokio::spawn({
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
    });
    queue
        .for_each_concurrent(IN_FLIGHT, |(event, reference)| {
            let recorder = {
                let mut current = lock(&current);
                current.last_event = Instant::now();
                current.recorder.clone()
            };
            async move {
                if let Err(error) = recorder.publish(&event, &reference).await {
                    warn!(%error, reason = event.reason, "could not record an event");
                }
            }
        })
        .await;
    refresher.abort();
}
