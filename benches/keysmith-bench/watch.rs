//! How the benchmark sees resources Ready: watches that have made their
//! initial list before the clock starts, the watches an operator holds
//! (for the decomposed raw phases), and the `Issued` events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::BoxError;

fn is_ready_json(status: Option<serde_json::Value>) -> bool {
    status
        .and_then(|s| s.get("conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The objects an event carries as they are now.
fn applied<K>(event: watcher::Event<K>) -> impl Iterator<Item = K> {
    match event {
        watcher::Event::Apply(object) | watcher::Event::InitApply(object) => Some(object),
        _ => None,
    }
    .into_iter()
}

/// What the readiness watch reports: objects now Ready, or that one kind's
/// initial list is complete.
enum Seen {
    Ready(Vec<String>),
    Listed,
}

fn seen<K: kube::Resource>(
    event: watcher::Event<K>,
    is_ready: impl Fn(&K) -> bool,
    prefix: &'static str,
) -> Seen {
    match event {
        watcher::Event::InitDone => Seen::Listed,
        event => Seen::Ready(
            applied(event)
                .filter(|object| is_ready(object))
                .map(|object| format!("{prefix}/{}", object.name_any()))
                .collect(),
        ),
    }
}

/// What a watch of one kind in `ns` sees, as [`Seen`]s.
fn ready_stream<K>(
    client: &Client,
    ns: &str,
    prefix: &'static str,
) -> futures::stream::BoxStream<'static, Result<Seen, watcher::Error>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(
        Api::<K>::namespaced(client.clone(), ns),
        watcher::Config::default(),
    )
    .map_ok(move |e| {
        seen(
            e,
            |object: &K| {
                is_ready_json(
                    serde_json::to_value(object)
                        .ok()
                        .and_then(|v| v.get("status").cloned()),
                )
            },
            prefix,
        )
    })
    .boxed()
}

/// A watch of both kinds in `ns` that has completed its initial lists, so
/// that its own list is not inside the time it measures.
pub struct ReadyWatch {
    merged: futures::stream::BoxStream<'static, Result<Seen, watcher::Error>>,
    ready: HashMap<String, Instant>,
}

impl ReadyWatch {
    pub async fn start(client: &Client, ns: &str) -> Result<ReadyWatch, BoxError> {
        let apps = ready_stream::<GatewayApp>(client, ns, "app");
        let keys = ready_stream::<SignatureKey>(client, ns, "key");
        let mut watch = ReadyWatch {
            merged: stream::select(apps, keys).boxed(),
            ready: HashMap::new(),
        };
        let mut listed = 0;
        while listed < 2 {
            match watch.next(Duration::from_secs(600)).await? {
                Seen::Listed => listed += 1,
                Seen::Ready(_) => {}
            }
        }
        Ok(watch)
    }

    async fn next(&mut self, timeout: Duration) -> Result<Seen, BoxError> {
        loop {
            let next = tokio::time::timeout(timeout, self.merged.next())
                .await
                .map_err(|_| format!("nothing seen for {timeout:?}"))?;
            match next {
                Some(Ok(Seen::Ready(names))) => {
                    let now = Instant::now();
                    for name in &names {
                        self.ready.entry(name.clone()).or_insert(now);
                    }
                    return Ok(Seen::Ready(names));
                }
                Some(Ok(Seen::Listed)) => return Ok(Seen::Listed),
                Some(Err(error)) => eprintln!("watch error (retrying): {error}"),
                None => return Err("watch ended".into()),
            }
        }
    }

    /// Returns when `expected` objects are Ready, with the instant each
    /// became Ready (first seen so).
    pub async fn wait(
        mut self,
        expected: usize,
        timeout: Duration,
    ) -> Result<HashMap<String, Instant>, BoxError> {
        let deadline = Instant::now() + timeout;
        while self.ready.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            self.next(left).await.map_err(|error| {
                format!("only {} of {expected} Ready: {error}", self.ready.len())
            })?;
        }
        Ok(self.ready)
    }
}

/// The watches an operator holds (both kinds in full, Secrets as metadata)
/// and the benchmark's readiness watch (both kinds in full again), open
/// while a raw phase writes; every event decoded, as they would be.
pub struct OperatorWatches {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: Arc<AtomicUsize>,
}

impl OperatorWatches {
    pub async fn start(client: &Client, ns: &str) -> Result<OperatorWatches, BoxError> {
        let events = Arc::new(AtomicUsize::new(0));
        let listed = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            tasks.push(drain(
                watcher(
                    Api::<GatewayApp>::namespaced(client.clone(), ns),
                    watcher::Config::default(),
                ),
                events.clone(),
                listed.clone(),
            ));
            tasks.push(drain(
                watcher(
                    Api::<SignatureKey>::namespaced(client.clone(), ns),
                    watcher::Config::default(),
                ),
                events.clone(),
                listed.clone(),
            ));
        }
        tasks.push(drain(
            watcher(
                Api::<kube::core::PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
                watcher::Config::default(),
            ),
            events.clone(),
            listed.clone(),
        ));
        let count = tasks.len() as u32;
        tokio::time::timeout(Duration::from_secs(600), listed.acquire_many(count))
            .await
            .map_err(|_| "the watches did not list in 600 s")??
            .forget();
        Ok(OperatorWatches { tasks, events })
    }

    /// Closes the watches; the events they saw.
    pub fn stop(self) -> usize {
        for task in &self.tasks {
            task.abort();
        }
        self.events.load(Ordering::Relaxed)
    }
}

/// Reads a watch to its end in a task of its own: counts its `Apply`
/// events, and adds a permit to `listed` when its initial list is done.
fn drain<S, K>(
    stream: S,
    events: Arc<AtomicUsize>,
    listed: Arc<tokio::sync::Semaphore>,
) -> tokio::task::JoinHandle<()>
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => listed.add_permits(1),
                Ok(watcher::Event::Apply(_)) => {
                    events.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    })
}

/// Waits until `expected` `Issued` events exist in `ns`; returns how many
/// there are (more would be a duplicate). A metadata watch, not a list
/// polled: 20,000 events listed four times a second cost the apiserver more
/// than publishing them.
pub async fn wait_events(
    client: &Client,
    ns: &str,
    expected: usize,
    timeout: Duration,
) -> Result<usize, BoxError> {
    let mut stream = watcher(
        Api::<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Event>>::namespaced(
            client.clone(),
            ns,
        ),
        watcher::Config::default().fields("reason=Issued"),
    )
    .boxed();
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while seen.len() < expected {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                format!(
                    "only {} of {expected} Issued events after {timeout:?}",
                    seen.len()
                )
            })?;
        match next {
            Some(Ok(event)) => seen.extend(applied(event).map(|e| e.name_any())),
            Some(Err(error)) => eprintln!("event watch error (retrying): {error}"),
            None => return Err("event watch ended".into()),
        }
    }
    // One list at the end counts duplicates too.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list_metadata(&kube::api::ListParams::default().fields("reason=Issued"))
        .await?
        .items
        .len())
}
