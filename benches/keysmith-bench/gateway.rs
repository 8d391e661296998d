//! `keysmith-bench --gateway`: cloud gateway sync (SPEC §11.4), against a
//! `keysmith-conformance` server this program starts on loopback.
//!
//!   cargo bench --bench keysmith-bench -- --gateway --count 1000
//!
//! All N resources are GatewayApps. The phases, each in a namespace of its
//! own (the previous one deleted, and waited for, first):
//! - raw: the raw baseline of SPEC §8 (one Secret create + one status apply
//!   per app, by a tuned client of ours), as the main benchmark measures it.
//! - sync off: N GatewayApps without `connectionRef`; the clock runs from
//!   starting the release `keysmith run` until a watch (listed before the
//!   clock starts) has seen every one Ready.
//! - sync on: N GatewayApps with `connectionRef` to one GatewayConnection
//!   (credentials Secret opted in, `limits` from `--gateway-rps` and
//!   `--gateway-burst`) naming the conformance server; the same clock, until
//!   every one is Ready with `GatewaySynced=True`. The server's counters are
//!   zeroed just before: its `writes` / N is the gateway writes per app on
//!   first issue, its `peak_calls_per_second` (calls in any one-second
//!   window) the client limit as the server sees it.
//! - idle: once the operator has settled, the counters are zeroed again and
//!   `--gateway-idle-seconds` pass with an operator restart in the middle (a
//!   full re-list and re-reconcile): gateway writes (expected 0) and reads
//!   (the connection checks, and the drift checks' list pages: the
//!   connection's `driftCheckInterval` is `--gateway-drift-interval`, 20 s by
//!   default, so that the window holds several), and the apiserver's writes.
//! - deletion: the sync-on namespace is deleted with the operator running
//!   (deletionPolicy Delete, the default: the cleanup finalizer removes each
//!   app at the gateway first); the gateway calls that takes.
//!
//! The last line printed is one JSON object with the figures.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::{GatewayApp, GatewayConnection};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;

use crate::conformance::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, ConformanceServer, INSTANCE_ID, PROJECT_ID, REGION,
};
use crate::measure::{
    CpuSeconds, delta, mem_gib, mutating_requests, percentile, process_cpu, round,
};
use crate::objects::{create_namespace, create_resources, delete_namespaces};
use crate::operator::Operator;
use crate::raw::raw_writes;
use crate::{Args, BoxError};

const CONNECTION: &str = "bench-gateway";
const CREDENTIALS: &str = "bench-gateway-credentials";

/// `GET /_conformance/stats`.
#[derive(Debug, Default, Deserialize)]
struct Stats {
    calls: BTreeMap<String, u64>,
    writes: u64,
    peak_calls_per_second: u64,
}

impl Stats {
    fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    fn reads(&self) -> u64 {
        self.total() - self.writes
    }

    /// `Op n, Op n` (or `none`).
    fn per_operation(&self) -> String {
        if self.calls.is_empty() {
            return "none".into();
        }
        self.calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The server's counters now.
async fn stats(server: &ConformanceServer) -> Result<Stats, BoxError> {
    let answer = server.stats().await;
    Ok(serde_json::from_value(answer)?)
}

/// Zeroes the server's counters.
async fn zero(server: &ConformanceServer) {
    server.zero_stats().await;
}

/// The server's CPU seconds so far.
fn server_cpu(server: &ConformanceServer) -> f64 {
    process_cpu(&server.pid().to_string())
}

fn app_names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:06}")).collect()
}

/// N GatewayApps with a gateway-legal appName, synced through the bench's
/// connection when `sync`.
async fn create_apps(
    client: &Client,
    ns: &str,
    names: &[String],
    sync: bool,
    concurrency: usize,
) -> Result<(), BoxError> {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let apps = apps.clone();
            async move {
                let mut spec =
                    json!({"appName": format!("bench_app_{i:06}"), "remark": "keysmith-bench"});
                if sync {
                    spec["connectionRef"] = json!({"name": CONNECTION});
                }
                let app: GatewayApp = serde_json::from_value(json!({
                    "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                    "metadata": {"name": name}, "spec": spec
                }))?;
                apps.create(&PostParams::default(), &app).await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// The credentials Secret (opted in as a source) and the GatewayConnection.
async fn create_connection(
    client: &Client,
    ns: &str,
    provider: &str,
    endpoint: &str,
    (rps, burst): (u32, u32),
    drift: &str,
) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(CREDENTIALS.into()),
            annotations: Some(BTreeMap::from([(
                "keysmith.dev/allow-source".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("accessKeyId".to_string(), ByteString(ACCESS_KEY_ID.into())),
            (
                "accessKeySecret".to_string(),
                ByteString(ACCESS_KEY_SECRET.into()),
            ),
        ])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    let connections: Api<GatewayConnection> = Api::namespaced(client.clone(), ns);
    let connection: GatewayConnection = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayConnection",
        "metadata": {"name": CONNECTION},
        "spec": {
            "provider": if provider == "huawei" { "HuaweiAPIG" } else { "AlibabaAPIGateway" },
            "endpoint": endpoint,
            "region": REGION,
            "projectId": PROJECT_ID,
            "instanceId": INSTANCE_ID,
            "credentialsRef": {"name": CREDENTIALS},
            "limits": {"requestsPerSecond": rps, "burst": burst},
            "driftCheckInterval": drift,
        }
    }))?;
    connections
        .create(&PostParams::default(), &connection)
        .await?;
    Ok(())
}

/// Whether the condition `type_` is True in a status, read as JSON.
fn condition_true(status: &serde_json::Value, type_: &str) -> bool {
    status["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// A watch of the GatewayApps in a namespace that has completed its initial
/// list (so that the list is not inside the time it measures).
struct AppWatch {
    events: futures::stream::BoxStream<'static, Result<watcher::Event<GatewayApp>, watcher::Error>>,
    done: HashMap<String, Instant>,
    /// Also wait for `GatewaySynced=True`.
    synced: bool,
}

impl AppWatch {
    async fn start(client: &Client, ns: &str, synced: bool) -> Result<AppWatch, BoxError> {
        let events = watcher(
            Api::<GatewayApp>::namespaced(client.clone(), ns),
            watcher::Config::default(),
        )
        .boxed();
        let mut watch = AppWatch {
            events,
            done: HashMap::new(),
            synced,
        };
        while !watch.next(Duration::from_secs(600)).await? {}
        Ok(watch)
    }

    /// One event; true when it ends the initial list.
    async fn next(&mut self, timeout: Duration) -> Result<bool, BoxError> {
        loop {
            let next = tokio::time::timeout(timeout, self.events.next())
                .await
                .map_err(|_| format!("nothing seen for {timeout:?}"))?;
            let app = match next {
                Some(Ok(watcher::Event::InitDone)) => return Ok(true),
                Some(Ok(watcher::Event::Apply(app) | watcher::Event::InitApply(app))) => app,
                Some(Ok(_)) => return Ok(false),
                Some(Err(error)) => {
                    eprintln!("watch error (retrying): {error}");
                    continue;
                }
                None => return Err("watch ended".into()),
            };
            let status = serde_json::to_value(&app.status)?;
            if condition_true(&status, "Ready")
                && (!self.synced || condition_true(&status, "GatewaySynced"))
            {
                self.done.entry(app.name_any()).or_insert_with(Instant::now);
            }
            return Ok(false);
        }
    }

    async fn wait(
        mut self,
        expected: usize,
        timeout: Duration,
    ) -> Result<HashMap<String, Instant>, BoxError> {
        let deadline = Instant::now() + timeout;
        while self.done.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            self.next(left)
                .await
                .map_err(|e| format!("only {} of {expected} done: {e}", self.done.len()))?;
        }
        Ok(self.done)
    }
}

/// What one keysmith phase measured.
struct Phase {
    seconds: f64,
    /// Mutating apiserver requests on Secrets and GatewayApps.
    writes: f64,
    events: f64,
    cpu: String,
    p50_ms: f64,
    p99_ms: f64,
    /// The apiserver's mutating requests by `resource/subresource VERB`.
    detail: String,
}

/// The mutating requests between two samples, by `resource/subresource VERB`.
fn write_detail(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> String {
    let mutating = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];
    let parts: Vec<String> = after
        .iter()
        .filter(|(key, _)| {
            key.rsplit_once(' ')
                .is_some_and(|(_, verb)| mutating.contains(&verb))
        })
        .filter_map(|(key, value)| {
            let change = value - before.get(key).copied().unwrap_or(0.0);
            (change > 0.0).then(|| format!("{key} {change}"))
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Starts keysmith on `ns`, where the N apps already are, and times it until
/// all are Ready (and GatewaySynced when `synced`).
async fn keysmith_phase(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &str,
    synced: bool,
) -> Result<(Phase, Operator), BoxError> {
    let n = args.count;
    let before = mutating_requests(client).await?;
    let cpu_before = CpuSeconds::sample(None);
    let watch = AppWatch::start(client, ns, synced).await?;
    let started = Instant::now();
    let operator = Operator::start(binary, ns, args.operator_concurrency)?;
    let done = watch
        .wait(n, Duration::from_secs(600 + n as u64 / 5))
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSeconds::sample(Some(operator.pid())).since(cpu_before);
    let after = mutating_requests(client).await?;
    let mut times: Vec<f64> = done
        .values()
        .map(|t| (*t - started).as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let phase = Phase {
        seconds,
        writes: delta(&after, &before, &["secrets", "gatewayapps"]),
        events: delta(&after, &before, &["events"]),
        cpu,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
        detail: write_detail(&after, &before),
    };
    Ok((phase, operator))
}

/// What the sync-on phase measured at the server.
struct AtServer {
    /// The server's CPU seconds during the phase.
    cpu: f64,
    /// Its counters when every app was Ready and GatewaySynced.
    at_ready: Stats,
    /// Its counters once the operator had settled (the events' tail published).
    settled: Stats,
}

/// The idle window with a restart in its middle.
struct Idle {
    /// The server's counters at the restart, and at the end.
    first_half: Stats,
    all: Stats,
    drift_checks: u64,
    /// List pages (`list_op` calls) in the window.
    pages: u64,
    api_writes: f64,
    /// The apiserver's mutating requests by `resource/subresource VERB`.
    detail: String,
}

pub async fn run(client: &Client, args: &Args, binary: &Path) -> Result<(), BoxError> {
    let provider = if args.provider == "huawei" {
        "huawei"
    } else {
        "alibaba"
    };
    let server = ConformanceServer::start(provider);
    eprintln!(
        "keysmith-bench --gateway: {} GatewayApps, provider {provider} at {}, limits {}/s burst {}, operator concurrency {}",
        args.count,
        server.endpoint,
        args.gateway_rps,
        args.gateway_burst,
        args.operator_concurrency
    );
    let run_id = std::process::id();
    let on_ns = format!("bench-gw-on-{run_id}");
    let (raw, raw_cpu) = raw_phase(client, args, &format!("bench-gw-raw-{run_id}")).await?;
    let off = sync_off_phase(client, args, binary, &format!("bench-gw-off-{run_id}")).await?;
    let (on, at_server, operator) = sync_on_phase(client, args, binary, &server, &on_ns).await?;
    let (idle, operator) = idle_phase(client, args, binary, &server, &on_ns, operator).await?;
    let deletion = deletion_phase(client, args, &server, &on_ns).await?;
    operator.stop();
    let report = Report {
        args,
        provider,
        raw,
        raw_cpu,
        off: &off,
        on: &on,
        at_server: &at_server,
        idle: &idle,
        deletion: deletion.as_ref(),
    };
    report.print();
    println!("{}", report.summary());
    Ok(())
}

/// Phase 1: the raw baseline of SPEC §8, on N GatewayApps: (seconds, CPU).
async fn raw_phase(client: &Client, args: &Args, ns: &String) -> Result<(f64, String), BoxError> {
    let (n, c) = (args.count, args.client_concurrency);
    create_namespace(client, ns).await?;
    let raw_objects: Vec<(bool, String)> = app_names("raw", n)
        .into_iter()
        .map(|name| (true, name))
        .collect();
    create_resources(client, ns, &raw_objects, c).await?;
    let cpu_before = CpuSeconds::sample(None);
    let raw = raw_writes(client, ns, &raw_objects, c, false)
        .await?
        .as_secs_f64();
    let raw_cpu = CpuSeconds::sample(None).since(cpu_before);
    eprintln!(
        "raw baseline: {raw:.2}s for {} writes; CPU s: {raw_cpu}",
        2 * n
    );
    let deleted = delete_namespaces(client, &[ns]).await?;
    eprintln!("{ns} deleted in {deleted:.1}s");
    Ok((raw, raw_cpu))
}

/// Phase 2: keysmith without sync; its operator stopped and its namespace gone after.
async fn sync_off_phase(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &String,
) -> Result<Phase, BoxError> {
    create_namespace(client, ns).await?;
    let names = app_names("app", args.count);
    create_apps(client, ns, &names, false, args.client_concurrency).await?;
    let (off, operator) = keysmith_phase(client, args, binary, ns, false).await?;
    eprintln!(
        "sync off: {:.2}s to all Ready; {} writes (+{} events); CPU s: {}",
        off.seconds, off.writes, off.events, off.cpu
    );
    operator.stop();
    let deleted = delete_namespaces(client, &[ns]).await?;
    eprintln!("{ns} deleted in {deleted:.1}s");
    Ok(off)
}

/// Phase 3: keysmith with sync to the conformance server, until all are Ready and
/// GatewaySynced, then until the operator has settled (the events' tail
/// published, the operator idle).
async fn sync_on_phase(
    client: &Client,
    args: &Args,
    binary: &Path,
    server: &ConformanceServer,
    ns: &str,
) -> Result<(Phase, AtServer, Operator), BoxError> {
    create_namespace(client, ns).await?;
    create_connection(
        client,
        ns,
        server.provider,
        &server.endpoint,
        (args.gateway_rps, args.gateway_burst),
        &args.gateway_drift_interval,
    )
    .await?;
    let names = app_names("app", args.count);
    create_apps(client, ns, &names, true, args.client_concurrency).await?;
    zero(server).await;
    let cpu_before = server_cpu(server);
    let (on, operator) = keysmith_phase(client, args, binary, ns, true).await?;
    let cpu = server_cpu(server) - cpu_before;
    let at_ready = stats(server).await?;
    eprintln!(
        "sync on: {:.2}s to all Ready+GatewaySynced; {} writes (+{} events); CPU s: {}, conformance server {cpu:.1}",
        on.seconds, on.writes, on.events, on.cpu
    );
    eprintln!("gateway at all Ready: {at_ready:?}");
    operator.settle(Duration::from_secs(180)).await;
    let settled = stats(server).await?;
    eprintln!("gateway once settled: {settled:?}");
    let at_server = AtServer {
        cpu,
        at_ready,
        settled,
    };
    Ok((on, at_server, operator))
}

/// The call that lists the apps, a page at a time (the drift check's).
fn list_operation(provider: &str) -> &'static str {
    if provider == "huawei" {
        "ListAppsV2"
    } else {
        "DescribeAppAttributes"
    }
}

/// Phase 4: idle, with a restart in the middle.
async fn idle_phase(
    client: &Client,
    args: &Args,
    binary: &Path,
    server: &ConformanceServer,
    ns: &str,
    operator: Operator,
) -> Result<(Idle, Operator), BoxError> {
    let list_op = list_operation(server.provider);
    zero(server).await;
    let idle_before = mutating_requests(client).await?;
    let (first_half, drift_checks, operator) =
        idle_window(args, binary, server, ns, operator).await?;
    let all = stats(server).await?;
    let pages = all.calls.get(list_op).copied().unwrap_or(0);
    let idle_after = mutating_requests(client).await?;
    let detail = write_detail(&idle_after, &idle_before);
    let api_writes = delta(
        &idle_after,
        &idle_before,
        &["secrets", "gatewayapps", "gatewayconnections", "events"],
    );
    eprintln!(
        "idle {}s with a restart: first half {first_half:?}; all {all:?}; {drift_checks} drift checks; apiserver writes {api_writes}",
        args.gateway_idle_seconds
    );
    let idle = Idle {
        first_half,
        all,
        drift_checks,
        pages,
        api_writes,
        detail,
    };
    Ok((idle, operator))
}

/// The idle window, the operator restarted at its middle: the server's
/// counters at the restart, and the drift checks seen. The counters are
/// polled four times a second: a drift check shows as a run of list calls
/// after a quiet spell, so the checks can be counted apart.
async fn idle_window(
    args: &Args,
    binary: &Path,
    server: &ConformanceServer,
    ns: &str,
    mut operator: Operator,
) -> Result<(Stats, u64, Operator), BoxError> {
    let list_op = list_operation(server.provider);
    let idle_started = Instant::now();
    let (half, end) = (
        Duration::from_secs(args.gateway_idle_seconds / 2),
        Duration::from_secs(args.gateway_idle_seconds),
    );
    let mut first_half: Option<Stats> = None;
    let (mut pages_seen, mut drift_checks) = (0u64, 0u64);
    let mut last_page: Option<Instant> = None;
    while idle_started.elapsed() < end {
        if first_half.is_none() && idle_started.elapsed() >= half {
            first_half = Some(stats(server).await?);
            operator.stop();
            operator = Operator::start(binary, ns, args.operator_concurrency)?;
        }
        let pages = stats(server)
            .await?
            .calls
            .get(list_op)
            .copied()
            .unwrap_or(0);
        if pages > pages_seen {
            if last_page.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                drift_checks += 1;
            }
            last_page = Some(Instant::now());
            pages_seen = pages;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((first_half.unwrap_or_default(), drift_checks, operator))
}

/// Phase 5: deletion with the operator running: the cleanup finalizer's calls
/// (nothing with `--keep`): seconds until the namespace is gone, the calls.
async fn deletion_phase(
    client: &Client,
    args: &Args,
    server: &ConformanceServer,
    ns: &String,
) -> Result<Option<(f64, Stats)>, BoxError> {
    if args.keep {
        return Ok(None);
    }
    zero(server).await;
    let seconds = delete_namespaces(client, &[ns]).await?;
    let stats = stats(server).await?;
    eprintln!("{ns} deleted in {seconds:.1}s; gateway {stats:?}");
    Ok(Some((seconds, stats)))
}

/// Everything measured, to print.
struct Report<'a> {
    args: &'a Args,
    provider: &'static str,
    raw: f64,
    raw_cpu: String,
    off: &'a Phase,
    on: &'a Phase,
    at_server: &'a AtServer,
    idle: &'a Idle,
    deletion: Option<&'a (f64, Stats)>,
}

/// One figure: its label, and its value right-aligned.
fn row(label: &str, value: String) {
    println!("  {label:<58} {value:>14}");
}

impl Report<'_> {
    fn per_app(&self, x: f64) -> f64 {
        x / self.args.count as f64
    }

    fn print(&self) {
        let (n, provider) = (self.args.count, self.provider);
        let (rps, burst) = (self.args.gateway_rps, self.args.gateway_burst);
        println!(
            "keysmith-bench --gateway: {n} GatewayApps synced to one {provider} conformance server"
        );
        println!(
            "  cores {}, memory {:.1} GiB; GatewayConnection limits requestsPerSecond {rps}, burst {burst}",
            std::thread::available_parallelism()
                .map(|p| p.get())
                .unwrap_or(0),
            mem_gib()
        );
        self.print_first_issue();
        self.print_throughput();
        self.print_client_limit();
        self.print_idle();
        if let Some((seconds, stats)) = self.deletion {
            println!("deletion (namespace deleted, operator running)");
            row("namespace gone after", format!("{seconds:.1} s"));
            println!("  gateway calls by operation: {}", stats.per_operation());
        }
    }

    fn print_first_issue(&self) {
        let (off, on) = (self.off, self.on);
        let AtServer {
            at_ready, settled, ..
        } = self.at_server;
        println!("first issue");
        row(
            "gateway writes per app (server `writes` / N)",
            format!("{:.2}", self.per_app(settled.writes as f64)),
        );
        row(
            "gateway reads per app",
            format!("{:.2}", self.per_app(settled.reads() as f64)),
        );
        println!("  gateway calls by operation: {}", settled.per_operation());
        if at_ready.writes != settled.writes || at_ready.total() != settled.total() {
            println!(
                "  (at all Ready: {} writes, {} calls; the rest came after)",
                at_ready.writes,
                at_ready.total()
            );
        }
        row(
            "apiserver writes per app, sync off / on",
            format!(
                "{:.2} / {:.2}",
                self.per_app(off.writes),
                self.per_app(on.writes)
            ),
        );
        row(
            "events per app, sync off / on (by all Ready)",
            format!(
                "{:.2} / {:.2}",
                self.per_app(off.events),
                self.per_app(on.events)
            ),
        );
        println!("  apiserver writes, sync off: {}", off.detail);
        println!("  apiserver writes, sync on:  {}", on.detail);
    }

    /// `(calls - burst) / requestsPerSecond`: the time the client limit alone takes.
    fn floor(&self) -> f64 {
        let (rps, burst) = (self.args.gateway_rps, self.args.gateway_burst);
        let calls = self.at_server.settled.total();
        (calls.saturating_sub(u64::from(burst))) as f64 / f64::from(rps)
    }

    fn print_throughput(&self) {
        let (raw, off, on) = (self.raw, self.off, self.on);
        println!("throughput");
        row("raw baseline (2 writes per app)", format!("{raw:.2} s"));
        row(
            "keysmith, start to all Ready, sync off",
            format!("{:.2} s", off.seconds),
        );
        row(
            "keysmith, start to all Ready + GatewaySynced, sync on",
            format!("{:.2} s", on.seconds),
        );
        row(
            "throughput ratio (raw / keysmith), sync off",
            format!("{:.3}", raw / off.seconds),
        );
        row(
            "throughput ratio (raw / keysmith), sync on",
            format!("{:.3}", raw / on.seconds),
        );
        row(
            "client-limit floor: (calls - burst) / requestsPerSecond",
            format!("{:.2} s", self.floor()),
        );
        row(
            "start→done p50 / p99, sync off",
            format!("{:.0} / {:.0} ms", off.p50_ms, off.p99_ms),
        );
        row(
            "start→done p50 / p99, sync on",
            format!("{:.0} / {:.0} ms", on.p50_ms, on.p99_ms),
        );
        println!("  CPU seconds, raw phase:      {}", self.raw_cpu);
        println!("  CPU seconds, sync off:       {}", off.cpu);
        println!(
            "  CPU seconds, sync on:        {}, conformance server {:.1}",
            on.cpu, self.at_server.cpu
        );
    }

    fn print_client_limit(&self) {
        let (rps, burst) = (self.args.gateway_rps, self.args.gateway_burst);
        let AtServer {
            at_ready, settled, ..
        } = self.at_server;
        println!("client limit, as the server sees it");
        row(
            "peak calls in any 1 s window",
            format!("{}", settled.peak_calls_per_second),
        );
        row(
            "allowed in any 1 s window (burst + requestsPerSecond)",
            format!("{}", burst + rps),
        );
        row(
            "mean calls per second over the sync-on phase",
            format!("{:.1}", at_ready.total() as f64 / self.on.seconds.max(1.0)),
        );
    }

    fn print_idle(&self) {
        let idle = self.idle;
        let seconds = self.args.gateway_idle_seconds;
        let (checks, pages) = (idle.drift_checks, idle.pages);
        let list_op = list_operation(self.provider);
        println!(
            "idle ({seconds} s, operator restarted at {} s)",
            seconds / 2
        );
        row("gateway writes", format!("{}", idle.all.writes));
        row(
            &format!(
                "drift checks (driftCheckInterval {})",
                self.args.gateway_drift_interval
            ),
            format!("{checks}"),
        );
        row(
            &format!("list pages ({list_op}) in them / per check"),
            format!("{pages} / {:.1}", pages as f64 / checks.max(1) as f64),
        );
        row(
            "apps listed per page (N × checks / pages)",
            format!(
                "{:.0}",
                (self.args.count as u64 * checks) as f64 / pages.max(1) as f64
            ),
        );
        row(
            "gateway reads (before / after the restart)",
            format!(
                "{} / {}",
                idle.first_half.reads(),
                idle.all.reads() - idle.first_half.reads()
            ),
        );
        println!("  gateway calls by operation: {}", idle.all.per_operation());
        row(
            "apiserver writes (Secrets, apps, connections, events)",
            format!("{}", idle.api_writes),
        );
        println!("  apiserver writes: {}", idle.detail);
    }

    /// The last line: the figures as one JSON object.
    fn summary(&self) -> serde_json::Value {
        let (args, off, on, idle) = (self.args, self.off, self.on, self.idle);
        let settled = &self.at_server.settled;
        json!({
            "count": args.count,
            "provider": self.provider,
            "requests_per_second": args.gateway_rps,
            "burst": args.gateway_burst,
            "raw_seconds": round(self.raw),
            "seconds_sync_off": round(off.seconds),
            "seconds_sync_on": round(on.seconds),
            "throughput_ratio_sync_off": round(self.raw / off.seconds),
            "throughput_ratio_sync_on": round(self.raw / on.seconds),
            "gateway_writes_per_app": round(self.per_app(settled.writes as f64)),
            "gateway_calls": settled.calls,
            "apiserver_writes_per_app_sync_off": round(self.per_app(off.writes)),
            "apiserver_writes_per_app_sync_on": round(self.per_app(on.writes)),
            "peak_calls_per_second": settled.peak_calls_per_second,
            "idle_seconds": args.gateway_idle_seconds,
            "idle_gateway_writes": idle.all.writes,
            "idle_gateway_reads": idle.all.reads(),
            "idle_drift_checks": idle.drift_checks,
            "idle_list_pages": idle.pages,
            "drift_check_interval": args.gateway_drift_interval,
            "idle_apiserver_writes": idle.api_writes,
            "deletion_gateway_calls": self.deletion.map(|(_, s)| &s.calls),
        })
    }
}
