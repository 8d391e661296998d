//! keysmith-bench: throughput, writes, idle writes, latency and memory of
//! `keysmith run` against the control plane in KUBECONFIG (SPEC section 8).
//!
//!   cargo bench --bench keysmith-bench -- --count 1000
//!
//! (`cargo bench` builds it and the release `keysmith` binary it drives.)
//!
//! What each timing includes:
//! - raw: N resources (half GatewayApps, half SignatureKeys) are created first in
//!   their own namespace; the clock then times only a tuned client of ours doing
//!   exactly keysmith's minimal writes for each — one Secret create and one
//!   status apply of the same sizes — at the concurrency that saturates the
//!   apiserver.
//! - keysmith: N resources are created in another namespace with the operator
//!   stopped; the clock runs from starting the release `keysmith run` to the
//!   moment a watch has seen every one Ready (start-up, initial lists, reads
//!   and writes all included; the benchmark's own watch has made its initial
//!   list before the clock starts).
//! - writes: mutating requests (POST/PUT/PATCH/APPLY/DELETE) on Secrets,
//!   GatewayApps and SignatureKeys counted by the apiserver's own
//!   `apiserver_request_total`, during the keysmith phase only; events are
//!   counted apart.
//! - idle: the same count over a quiet period that includes an operator restart
//!   (a full re-list and re-reconcile).
//! - latency: with the operator running, resources are created at half the
//!   measured keysmith throughput and timed from create to Ready (by watch).
//! - rss: the operator's VmRSS from /proc at the end.
//!
//! The last line printed is one JSON object with the figures.
//!
//! `--gateway` measures the cloud gateway sync instead (SPEC §11.4): see
//! `gateway/mod.rs`.

mod gateway;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Measure keysmith against the control plane in KUBECONFIG")]
struct Args {
    /// Resources to issue (half GatewayApps, half SignatureKeys).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Client concurrency for creating resources and for the raw baseline.
    #[arg(long, default_value_t = 64)]
    client_concurrency: usize,
    /// `keysmith run --concurrency`.
    #[arg(long, default_value_t = 16)]
    operator_concurrency: u16,
    /// Resources created for the latency measurement (0: min(count, 200)).
    #[arg(long, default_value_t = 0)]
    latency_count: usize,
    /// Also time N plain Secret creates against N server-side applies of
    /// the same Secrets (the per-request cost of keysmith's first write).
    #[arg(long)]
    compare_secret_writes: bool,
    /// Unrelated Secrets to create before starting (memory overhead check).
    #[arg(long, default_value_t = 0)]
    unrelated_secrets: usize,
    /// Quiet period for the idle-write count, in seconds.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// The keysmith binary (default: the one cargo built with this program).
    #[arg(long)]
    keysmith: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Take a CPU profile of kube-apiserver (its `/debug/pprof/profile`,
    /// through kubectl) in the middle of the raw phase and of the keysmith
    /// phase, into this directory (`raw.pprof`, `keysmith.pprof`; read them
    /// with `go tool pprof -top`). Meant for N = 20,000, whose phases last
    /// long enough for the 20 s windows.
    #[arg(long)]
    apiserver_profile: Option<PathBuf>,
    /// After the raw baseline, two more raw phases (each on N new
    /// resources in a namespace of its own, once the previous phase's
    /// namespace is gone): the Secrets written by
    /// server-side apply instead of create; then that, while the watches an
    /// operator and this benchmark hold are open (both kinds in full twice,
    /// Secrets as metadata), their events decoded. Splits the difference
    /// between the raw baseline and keysmith into its parts.
    #[arg(long)]
    decompose: bool,
    /// At the end, once the keysmith and latency namespaces are deleted,
    /// measure the raw baseline once more (on N new resources) and print the
    /// ratio against it too: the raw phase otherwise always runs first, on
    /// the freshest control plane.
    #[arg(long)]
    raw_again_last: bool,
    /// Keep the keysmith and latency namespaces afterwards (by default they
    /// are deleted, and the program waits until they are gone). The raw
    /// phases' namespaces are always deleted before the keysmith phase.
    #[arg(long)]
    keep: bool,
    /// Measure the cloud gateway sync instead (SPEC §11.4): N GatewayApps
    /// (all apps) synced to a conformance server, against N without sync
    /// and the raw baseline; see benches/gateway/mod.rs.
    #[arg(long)]
    gateway: bool,
    /// `--gateway`: the conformance server's provider.
    #[arg(long, default_value = "huawei", value_parser = ["huawei", "alibaba"])]
    provider: String,
    /// `--gateway`: the GatewayConnection's `limits.requestsPerSecond`.
    #[arg(long, default_value_t = 50)]
    gateway_rps: u32,
    /// `--gateway`: the GatewayConnection's `limits.burst`.
    #[arg(long, default_value_t = 50)]
    gateway_burst: u32,
    /// `--gateway`: the idle window after settling, with an operator restart
    /// in its middle, in seconds.
    #[arg(long, default_value_t = 60)]
    gateway_idle_seconds: u64,
    /// `--gateway`: the GatewayConnection's `driftCheckInterval` (short, so
    /// that the idle window holds several drift checks).
    #[arg(long, default_value = "20s")]
    gateway_drift_interval: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn app_object(name: &str) -> GatewayApp {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": {}
    }))
    .expect("static object")
}

fn key_object(name: &str) -> SignatureKey {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": name}, "spec": {}
    }))
    .expect("static object")
}

fn names(prefix: &str, count: usize) -> Vec<(bool, String)> {
    (0..count)
        .map(|i| (i % 2 == 0, format!("{prefix}-{i:06}")))
        .collect()
}

async fn create_namespace(client: &Client, name: &str) -> Result<(), BoxError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

async fn create_resources(
    client: &Client,
    ns: &str,
    objects: &[(bool, String)],
    concurrency: usize,
) -> Result<(), BoxError> {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    stream::iter(objects.iter().cloned())
        .map(|(is_app, name)| {
            let (apps, keys) = (apps.clone(), keys.clone());
            async move {
                if is_app {
                    apps.create(&PostParams::default(), &app_object(&name))
                        .await
                        .map(|_| ())
                } else {
                    keys.create(&PostParams::default(), &key_object(&name))
                        .await
                        .map(|_| ())
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Exactly what keysmith writes per resource: a Secret of the same shape, and a status.
/// A Secret of the size and shape keysmith writes.
fn bench_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "keysmith-bench".to_string(),
                ),
                ("keysmith.dev/gatewayapp".to_string(), name.to_string()),
            ])),
            annotations: Some(BTreeMap::from([
                ("keysmith.dev/revision".to_string(), "1".to_string()),
                (
                    "keysmith.dev/rotated-at".to_string(),
                    "2026-11-24T10:00:00Z".to_string(),
                ),
                (
                    "keysmith.dev/rotation-reason".to_string(),
                    "Initial".to_string(),
                ),
                (
                    "keysmith.dev/issued-at".to_string(),
                    "2026-11-24T10:00:00Z".to_string(),
                ),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("app_key".to_string(), ByteString(vec![b'k'; 36])),
            ("app_secret".to_string(), ByteString(vec![b's'; 32])),
            ("app_id".to_string(), ByteString(vec![b'i'; 36])),
        ])),
        ..Default::default()
    }
}

/// N plain creates, then N server-side applies (new names) of the same
/// Secrets: seconds and CPU of each.
async fn secret_write_cost(
    client: &Client,
    ns: &str,
    n: usize,
    concurrency: usize,
) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for apply in [false, true] {
        let cpu_before = CpuSeconds::sample(None);
        let started = Instant::now();
        stream::iter(0..n)
            .map(|i| {
                let secrets = secrets.clone();
                async move {
                    let name = format!("cost-{}-{i}", if apply { "apply" } else { "create" });
                    let secret = bench_secret(&name);
                    if apply {
                        let params = PatchParams::apply("keysmith-bench");
                        secrets
                            .patch(&name, &params, &Patch::Apply(&secret))
                            .await
                            .map(|_| ())
                    } else {
                        secrets
                            .create(&PostParams::default(), &secret)
                            .await
                            .map(|_| ())
                    }
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<_>>()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = CpuSeconds::sample(None).since(cpu_before);
        let how = if apply {
            "server-side apply"
        } else {
            "create (POST)"
        };
        eprintln!("secret write cost: {n} × {how}: {seconds:.2}s; CPU s: {cpu}");
        println!("  {n} Secret writes by {how:<26} {seconds:>8.2} s   CPU s: {cpu}");
    }
    Ok(())
}

async fn raw_writes(
    client: &Client,
    ns: &str,
    objects: &[(bool, String)],
    concurrency: usize,
    secret_by_apply: bool,
) -> Result<Duration, BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    stream::iter(objects.iter().cloned())
        .map(|(is_app, name)| {
            let (secrets, apps, keys) = (secrets.clone(), apps.clone(), keys.clone());
            async move {
                let secret = bench_secret(&name);
                if secret_by_apply {
                    let params = PatchParams::apply("keysmith-bench");
                    secrets.patch(&name, &params, &Patch::Apply(&secret)).await?;
                } else {
                    secrets.create(&PostParams::default(), &secret).await?;
                }
                let status = json!({
                    "apiVersion": "keysmith.dev/v1alpha1",
                    "kind": if is_app { "GatewayApp" } else { "SignatureKey" },
                    "status": {
                        "secretName": name, "revision": 1, "lastRotationReason": "Initial",
                        "lastRotationTime": "2026-11-24T10:00:00Z", "updateTime": "2026-11-24T10:00:00Z",
                        "observedGeneration": 1, "generatorLength": 32,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued",
                            "message": format!("credentials issued in Secret {name} (revision 1)"),
                            "lastTransitionTime": "2026-11-24T10:00:00Z", "observedGeneration": 1}]
                    }
                });
                let params = PatchParams::apply("keysmith-bench").force();
                if is_app {
                    apps.patch_status(&name, &params, &Patch::Apply(&status)).await.map(|_| ())
                } else {
                    keys.patch_status(&name, &params, &Patch::Apply(&status)).await.map(|_| ())
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(started.elapsed())
}

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
struct ReadyWatch {
    merged: futures::stream::BoxStream<'static, Result<Seen, watcher::Error>>,
    ready: HashMap<String, Instant>,
}

impl ReadyWatch {
    async fn start(client: &Client, ns: &str) -> Result<ReadyWatch, BoxError> {
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
    async fn wait(
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
struct OperatorWatches {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    events: Arc<std::sync::atomic::AtomicUsize>,
}

impl OperatorWatches {
    async fn start(client: &Client, ns: &str) -> Result<OperatorWatches, BoxError> {
        let events = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listed = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        fn drain<S, K>(
            stream: S,
            events: Arc<std::sync::atomic::AtomicUsize>,
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
                            events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            })
        }
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
    fn stop(self) -> usize {
        for task in &self.tasks {
            task.abort();
        }
        self.events.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Waits until `expected` `Issued` events exist in `ns`; returns how many
/// there are (more would be a duplicate). A metadata watch, not a list
/// polled: 20,000 events listed four times a second cost the apiserver more
/// than publishing them.
async fn wait_events(
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

/// Deletes the namespaces and waits until they are gone (the control
/// plane's namespace controller and garbage collector remove everything in
/// them); the seconds that took.
async fn delete_namespaces(client: &Client, all: &[&String]) -> Result<f64, BoxError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in all {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(900);
    for ns in all {
        while namespaces.get_opt(ns).await?.is_some() {
            if Instant::now() > deadline {
                return Err(format!("namespace {ns} still terminating after 15 minutes").into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Starts a `seconds`-long CPU profile of kube-apiserver after `delay`,
/// written to `dir/name.pprof` (nothing without `dir`).
fn profile_apiserver(
    dir: Option<&PathBuf>,
    name: &'static str,
    delay: Duration,
    seconds: u64,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = dir?.join(format!("{name}.pprof"));
    let kubectl = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(|assets| PathBuf::from(assets).join("kubectl"))
        .filter(|kubectl| kubectl.exists())
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    Some(tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let url = format!("/debug/pprof/profile?seconds={seconds}");
        let output = tokio::task::spawn_blocking(move || {
            Command::new(kubectl).args(["get", "--raw", &url]).output()
        })
        .await;
        match output {
            Ok(Ok(output)) if output.status.success() => match std::fs::write(&path, output.stdout)
            {
                Ok(()) => eprintln!("apiserver profile: {}", path.display()),
                Err(error) => eprintln!("apiserver profile {}: {error}", path.display()),
            },
            Ok(Ok(output)) => eprintln!(
                "apiserver profile failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Ok(Err(error)) => eprintln!("apiserver profile failed: {error}"),
            Err(error) => eprintln!("apiserver profile failed: {error}"),
        }
    }))
}

/// Mutating requests the apiserver has served, by resource; and every
/// request by `resource/subresource VERB`.
async fn mutating_requests(client: &Client) -> Result<BTreeMap<String, f64>, BoxError> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut out = BTreeMap::new();
    // Watchers the apiserver closed because they fell behind (each costs a re-list).
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_terminated_watchers_total{"))
    {
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let detail = format!("terminated watchers {}", label(line, "resource"));
        *out.entry(detail).or_insert(0.0) += value;
    }
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let verb = label(line, "verb");
        let resource = label(line, "resource");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        // Totals count writes only; the per-verb detail shows reads too.
        if matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE") {
            *out.entry(resource.clone()).or_insert(0.0) += value;
        }
        let detail = format!("{resource}/{} {verb}", label(line, "subresource"));
        *out.entry(detail).or_insert(0.0) += value;
    }
    Ok(out)
}

fn label(line: &str, name: &str) -> String {
    line.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>, resources: &[&str]) -> f64 {
    resources
        .iter()
        .map(|r| after.get(*r).copied().unwrap_or(0.0) - before.get(*r).copied().unwrap_or(0.0))
        .sum()
}

struct Operator {
    child: Child,
}

impl Operator {
    fn start(binary: &PathBuf, ns: &str, concurrency: u16) -> Result<Operator, BoxError> {
        let child = Command::new(binary)
            .args([
                "run",
                "--namespace",
                ns,
                "--metrics-addr",
                "off",
                "--health-addr",
                "off",
            ])
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--log-format",
                "json",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Operator { child })
    }

    /// Resident memory now (`VmRSS`), or at its peak (`VmHWM`), in MiB.
    fn memory_mib(&self, field: &str) -> f64 {
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
    async fn settle(&self, limit: Duration) {
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

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) used so far by the processes that share the
/// machine in a run: where a phase's time goes.
#[derive(Clone, Copy, Default)]
struct CpuSeconds {
    apiserver: f64,
    etcd: f64,
    /// kube-controller-manager (its garbage collector watches every write).
    controller_manager: f64,
    operator: f64,
    bench: f64,
}

impl CpuSeconds {
    fn sample(operator: Option<u32>) -> CpuSeconds {
        let mut sample = CpuSeconds {
            bench: process_cpu("self"),
            operator: operator.map_or(0.0, |pid| process_cpu(&pid.to_string())),
            ..CpuSeconds::default()
        };
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .as_deref()
                .map(str::trim)
            {
                Ok("kube-apiserver") => sample.apiserver += process_cpu(&pid),
                Ok("etcd") => sample.etcd += process_cpu(&pid),
                // comm is cut at 15 bytes
                Ok("kube-controller") => sample.controller_manager += process_cpu(&pid),
                _ => {}
            }
        }
        sample
    }

    fn since(self, earlier: CpuSeconds) -> String {
        format!(
            "apiserver {:.1}, etcd {:.1}, controller-manager {:.1}, keysmith {:.1}, bench client {:.1}",
            self.apiserver - earlier.apiserver,
            self.etcd - earlier.etcd,
            self.controller_manager - earlier.controller_manager,
            self.operator - earlier.operator,
            self.bench - earlier.bench
        )
    }
}

/// utime + stime of /proc/PID/stat, in seconds.
fn process_cpu(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn unrelated_secrets(
    client: &Client,
    ns: &str,
    count: usize,
    concurrency: usize,
) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    stream::iter(0..count)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(format!("unrelated-{i:06}")),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([(
                        "payload".to_string(),
                        ByteString(vec![b'x'; 64]),
                    )])),
                    ..Default::default()
                };
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let client = Client::try_default().await?;
    let binary = args
        .keysmith
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_keysmith")));
    if args.gateway {
        return gateway::run(&client, &args, &binary).await;
    }
    let run_id = std::process::id();
    let raw_ns = format!("bench-raw-{run_id}");
    let ks_ns = format!("bench-keysmith-{run_id}");
    let lat_ns = format!("bench-latency-{run_id}");
    for ns in [&raw_ns, &ks_ns, &lat_ns] {
        create_namespace(&client, ns).await?;
    }
    let n = args.count;
    let c = args.client_concurrency;
    eprintln!(
        "keysmith-bench: {n} resources, client concurrency {c}, operator concurrency {}",
        args.operator_concurrency
    );

    if args.unrelated_secrets > 0 {
        eprintln!("creating {} unrelated Secrets", args.unrelated_secrets);
        unrelated_secrets(&client, &ks_ns, args.unrelated_secrets, c).await?;
    }

    // 1. Raw baseline.
    let raw_objects = names("raw", n);
    create_resources(&client, &raw_ns, &raw_objects, c).await?;
    if let Some(dir) = &args.apiserver_profile {
        std::fs::create_dir_all(dir)?;
    }
    let profile = profile_apiserver(
        args.apiserver_profile.as_ref(),
        "raw",
        Duration::from_secs(5),
        20,
    );
    let cpu_before = CpuSeconds::sample(None);
    let raw = raw_writes(&client, &raw_ns, &raw_objects, c, false).await?;
    let raw_cpu = CpuSeconds::sample(None).since(cpu_before);
    eprintln!(
        "raw baseline: {:.2}s for {} writes; CPU s: {raw_cpu}",
        raw.as_secs_f64(),
        2 * n
    );
    if let Some(profile) = profile {
        if !profile.is_finished() {
            eprintln!("apiserver profile: the raw phase ended before its window did");
        }
        profile.await?;
    }

    if args.compare_secret_writes {
        secret_write_cost(&client, &raw_ns, n, c).await?;
    }
    // Every phase runs on an apiserver that holds only its own objects (its
    // heap, and so its garbage collection, grows with every object it
    // holds): the previous phase's namespace is deleted, and waited for,
    // first.
    let mut previous = raw_ns.clone();
    if args.decompose {
        for (step, watched) in [("apply", false), ("watched", true)] {
            let seconds = delete_namespaces(&client, &[&previous]).await?;
            eprintln!("{previous} deleted in {seconds:.1}s");
            let ns = format!("bench-{step}-{run_id}");
            create_namespace(&client, &ns).await?;
            previous = ns.clone();
            let objects = names(step, n);
            create_resources(&client, &ns, &objects, c).await?;
            let watches = if watched {
                Some(OperatorWatches::start(&client, &ns).await?)
            } else {
                None
            };
            let cpu_before = CpuSeconds::sample(None);
            let took = raw_writes(&client, &ns, &objects, c, true).await?;
            let cpu = CpuSeconds::sample(None).since(cpu_before);
            let events = watches.map(OperatorWatches::stop).unwrap_or(0);
            let what = if watched {
                "raw, Secrets applied, operator's and readiness watches open"
            } else {
                "raw, Secrets by server-side apply"
            };
            eprintln!(
                "{what}: {:.2}s; CPU s: {cpu}; watch events {events}",
                took.as_secs_f64()
            );
            println!("  {what:<60} {:>8.2} s   CPU s: {cpu}", took.as_secs_f64());
        }
    }

    let seconds = delete_namespaces(&client, &[&previous]).await?;
    eprintln!("{previous} deleted in {seconds:.1}s, before the keysmith phase");

    // 2. keysmith from a cold start on pre-created resources.
    let objects = names("obj", n);
    create_resources(&client, &ks_ns, &objects, c).await?;
    let before = mutating_requests(&client).await?;
    let cpu_before = CpuSeconds::sample(None);
    let ready_watch = ReadyWatch::start(&client, &ks_ns).await?;
    let started = Instant::now();
    let operator = Operator::start(&binary, &ks_ns, args.operator_concurrency)?;
    let profile = profile_apiserver(
        args.apiserver_profile.as_ref(),
        "keysmith",
        Duration::from_secs(20),
        20,
    );
    let ready = ready_watch
        .wait(n, Duration::from_secs(600 + n as u64 / 10))
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let keysmith_cpu = CpuSeconds::sample(Some(operator.child.id())).since(cpu_before);
    eprintln!("keysmith phase CPU s: {keysmith_cpu}");
    if let Some(profile) = profile {
        if !profile.is_finished() {
            eprintln!("apiserver profile: the keysmith phase ended before its window did");
        }
        profile.await?;
    }
    // Events wait behind the credential writes (SPEC §8): all of them are
    // due within 60 s of the burst's end.
    let cpu_before = CpuSeconds::sample(Some(operator.child.id()));
    let ready_at = Instant::now();
    let issued_events =
        wait_events(&client, &ks_ns, n, Duration::from_secs(120 + n as u64 / 50)).await?;
    let event_delay = ready_at.elapsed().as_secs_f64();
    let event_cpu = CpuSeconds::sample(Some(operator.child.id())).since(cpu_before);
    eprintln!(
        "events: {issued_events} Issued events {event_delay:.1}s after all Ready; CPU s: {event_cpu}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = mutating_requests(&client).await?;
    let writes = delta(
        &after,
        &before,
        &["secrets", "gatewayapps", "signaturekeys"],
    );
    let events = delta(&after, &before, &["events"]);
    // The operator that issued everything, before any restart.
    let issuing_rss_mib = operator.memory_mib("VmRSS:");
    let mut start_to_ready: Vec<f64> = ready
        .values()
        .map(|t| (*t - started).as_secs_f64() * 1000.0)
        .collect();
    start_to_ready.sort_by(|a, b| a.total_cmp(b));
    eprintln!("keysmith: {seconds:.2}s to all Ready; {writes} writes (+{events} events)");
    for (key, value) in &after {
        let change = value - before.get(key).copied().unwrap_or(0.0);
        if key.contains(' ') && change > 0.0 {
            eprintln!("  {key}: {change}");
        }
    }

    // 3. Idle: a quiet period with an operator restart (full re-list) in it.
    let idle_before = mutating_requests(&client).await?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds / 2)).await;
    operator.stop();
    let operator = Operator::start(&binary, &ks_ns, args.operator_concurrency)?;
    tokio::time::sleep(Duration::from_secs(
        args.idle_seconds - args.idle_seconds / 2,
    ))
    .await;
    let idle_after = mutating_requests(&client).await?;
    let idle_writes = delta(
        &idle_after,
        &idle_before,
        &["secrets", "gatewayapps", "signaturekeys", "events"],
    );
    eprintln!(
        "idle: {idle_writes} writes over {}s with a restart",
        args.idle_seconds
    );
    // Memory once the restarted operator has re-listed and re-checked
    // everything and is idle; the peak is reported beside it.
    operator.settle(Duration::from_secs(120)).await;
    let rss_mib = operator.memory_mib("VmRSS:");
    let peak_rss_mib = operator.memory_mib("VmHWM:");
    operator.stop();

    // 4. Latency at half the measured throughput.
    let latency_count = if args.latency_count == 0 {
        n.min(200)
    } else {
        args.latency_count
    };
    let rate = (n as f64 / seconds) / 2.0;
    let lat_operator = Operator::start(&binary, &lat_ns, args.operator_concurrency)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lat_objects = names("lat", latency_count);
    let lat_watch = ReadyWatch::start(&client, &lat_ns).await?;
    let watcher_task = tokio::spawn(async move {
        lat_watch
            .wait(latency_count, Duration::from_secs(600))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut created_at: HashMap<String, Instant> = HashMap::new();
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &lat_ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), &lat_ns);
    let mut ticker = tokio::time::interval(interval);
    let creators = Arc::new(tokio::sync::Semaphore::new(c));
    let mut handles = Vec::new();
    for (is_app, name) in lat_objects {
        ticker.tick().await;
        let key = if is_app {
            format!("app/{name}")
        } else {
            format!("key/{name}")
        };
        created_at.insert(key, Instant::now());
        let (apps, keys, permit) = (
            apps.clone(),
            keys.clone(),
            creators.clone().acquire_owned().await?,
        );
        handles.push(tokio::spawn(async move {
            let _permit = permit;
            if is_app {
                apps.create(&PostParams::default(), &app_object(&name))
                    .await
                    .map(|_| ())
            } else {
                keys.create(&PostParams::default(), &key_object(&name))
                    .await
                    .map(|_| ())
            }
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let lat_ready = watcher_task.await??;
    let mut latencies: Vec<f64> = lat_ready
        .iter()
        .filter_map(|(k, t)| created_at.get(k).map(|c| (*t - *c).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    lat_operator.stop();

    let raw_seconds = raw.as_secs_f64();
    let throughput_ratio = raw_seconds / seconds;
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    println!(
        "keysmith-bench: {n} resources ({} GatewayApps, {} SignatureKeys)",
        n.div_ceil(2),
        n / 2
    );
    println!(
        "  cores {}, memory {:.1} GiB",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0),
        mem_gib()
    );
    println!(
        "  {:<44} {:>12}",
        "raw baseline (2 writes per resource)",
        format!("{raw_seconds:.2} s")
    );
    println!(
        "  {:<44} {:>12}",
        "keysmith, start to all Ready",
        format!("{seconds:.2} s")
    );
    println!("  CPU seconds, raw phase:      {raw_cpu}");
    println!("  CPU seconds, keysmith phase: {keysmith_cpu}");
    println!(
        "  {:<44} {:>12}",
        "throughput ratio (raw / keysmith)",
        format!("{throughput_ratio:.3}")
    );
    println!(
        "  {:<44} {:>12}",
        "start→Ready first / p50 / p99 (cold start)",
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            start_to_ready.first().copied().unwrap_or(f64::NAN),
            percentile(&start_to_ready, 50.0),
            percentile(&start_to_ready, 99.0)
        )
    );
    println!(
        "  {:<44} {:>12}",
        "writes per resource (Secrets + status)",
        format!("{:.2}", writes / n as f64)
    );
    println!(
        "  {:<44} {:>12}",
        "events per resource",
        format!("{:.2}", events / n as f64)
    );
    println!(
        "  {:<44} {:>12}",
        "Issued events, all published after all Ready",
        format!("{issued_events} in {event_delay:.1} s")
    );
    println!("  CPU seconds, event tail:     {event_cpu}");
    println!(
        "  {:<44} {:>12}",
        "idle writes (quiet period with a restart)",
        format!("{idle_writes}")
    );
    println!(
        "  {:<44} {:>12}",
        format!("create→Ready p50 at {rate:.0}/s ({latency_count} objects)"),
        format!("{p50:.0} ms")
    );
    println!(
        "  {:<44} {:>12}",
        "create→Ready p99",
        format!("{p99:.0} ms")
    );
    println!(
        "  {:<44} {:>12}",
        "operator RSS, idle after the restart",
        format!("{rss_mib:.1} MiB")
    );
    println!(
        "  {:<44} {:>12}",
        "operator RSS, right after issuing all",
        format!("{issuing_rss_mib:.1} MiB")
    );
    println!(
        "  {:<44} {:>12}",
        "operator RSS, peak after the restart",
        format!("{peak_rss_mib:.1} MiB")
    );
    if args.unrelated_secrets > 0 {
        println!("  ({} unrelated Secrets present)", args.unrelated_secrets);
    }

    if args.raw_again_last {
        let deleted_in = delete_namespaces(&client, &[&ks_ns, &lat_ns]).await?;
        eprintln!("namespaces deleted in {deleted_in:.1}s, before the raw phase again");
        let ns = format!("bench-raw-last-{run_id}");
        create_namespace(&client, &ns).await?;
        let objects = names("last", n);
        create_resources(&client, &ns, &objects, c).await?;
        let cpu_before = CpuSeconds::sample(None);
        let raw_last = raw_writes(&client, &ns, &objects, c, false).await?;
        let cpu = CpuSeconds::sample(None).since(cpu_before);
        let raw_last = raw_last.as_secs_f64();
        eprintln!("raw baseline again, last: {raw_last:.2}s; CPU s: {cpu}");
        println!(
            "  raw baseline again, measured last              {raw_last:>8.2} s   CPU s: {cpu}"
        );
        println!(
            "  throughput ratio against it                     {:>8.3}",
            raw_last / seconds
        );
        if !args.keep {
            let deleted_in = delete_namespaces(&client, &[&ns]).await?;
            eprintln!("namespace deleted in {deleted_in:.1}s");
        }
    } else if !args.keep {
        let seconds = delete_namespaces(&client, &[&ks_ns, &lat_ns]).await?;
        eprintln!("namespaces deleted in {seconds:.1}s");
    }
    println!(
        "{}",
        json!({
            "count": n,
            "seconds": round(seconds),
            "raw_seconds": round(raw_seconds),
            "throughput_ratio": round(throughput_ratio),
            "writes_per_resource": round(writes / n as f64),
            "idle_writes": idle_writes,
            "p50_ms": round(p50),
            "p99_ms": round(p99),
            "rss_mib": round(rss_mib),
            "events": issued_events,
            "event_delay_s": round(event_delay),
        })
    );
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mem_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(f64::NAN)
}
