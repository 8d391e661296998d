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
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

use crate::{
    Args, BoxError, CpuSeconds, Operator, create_namespace, create_resources, delete_namespaces,
    delta, mutating_requests, percentile, process_cpu, raw_writes, round,
};

/// The access key the conformance server accepts (the tests' own).
const ACCESS_KEY_ID: &str = "KEYSMITHTESTACCESSKEY01";
const ACCESS_KEY_SECRET: &str = "keysmith-test-access-key-secret-0123456789";
/// Huawei coordinates the server is started with (its defaults).
const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";
const INSTANCE_ID: &str = "eddc4d25480b4cd6b512f270a1b8b341";
const REGION: &str = "cn-hangzhou";
const CONNECTION: &str = "bench-gateway";
const CREDENTIALS: &str = "bench-gateway-credentials";

/// A running `keysmith-conformance`; killed on drop.
struct ConformanceServer {
    child: Child,
    /// `127.0.0.1:PORT`
    address: String,
}

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

impl ConformanceServer {
    fn start(provider: &str) -> Result<ConformanceServer, BoxError> {
        let binary = env!("CARGO_BIN_EXE_keysmith-conformance");
        let mut child = Command::new(binary)
            .args(["--provider", provider, "--listen", "127.0.0.1:0"])
            .args(["--project-id", PROJECT_ID, "--instance-id", INSTANCE_ID])
            .args(["--region", REGION])
            .env("CONFORMANCE_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("CONFORMANCE_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {binary}: {e}"))?;
        let mut first = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut first)?;
        let address = first
            .trim()
            .strip_prefix("listening on http://")
            .ok_or_else(|| format!("the conformance server said {first:?}"))?
            .to_string();
        Ok(ConformanceServer { child, address })
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// One control request (`/_conformance/...`, no body); the JSON answer.
    fn control(&self, method: &str, path: &str) -> Result<serde_json::Value, BoxError> {
        let mut stream = std::net::TcpStream::connect(&self.address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.address
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("{method} {path}: {head}").into());
        }
        Ok(serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())))
    }

    fn stats(&self) -> Result<Stats, BoxError> {
        Ok(serde_json::from_value(
            self.control("GET", "/_conformance/stats")?,
        )?)
    }

    fn zero(&self) -> Result<(), BoxError> {
        self.control("DELETE", "/_conformance/stats").map(|_| ())
    }

    fn cpu(&self) -> f64 {
        process_cpu(&self.child.id().to_string())
    }
}

impl Drop for ConformanceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    operator: Operator,
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
    binary: &PathBuf,
    ns: &str,
    synced: bool,
) -> Result<Phase, BoxError> {
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
    let cpu = CpuSeconds::sample(Some(operator.child.id())).since(cpu_before);
    let after = mutating_requests(client).await?;
    let mut times: Vec<f64> = done
        .values()
        .map(|t| (*t - started).as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Phase {
        seconds,
        writes: delta(&after, &before, &["secrets", "gatewayapps"]),
        events: delta(&after, &before, &["events"]),
        cpu,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
        detail: write_detail(&after, &before),
        operator,
    })
}

pub async fn run(client: &Client, args: &Args, binary: &PathBuf) -> Result<(), BoxError> {
    let n = args.count;
    let c = args.client_concurrency;
    let provider = args.provider.as_str();
    let (rps, burst) = (args.gateway_rps, args.gateway_burst);
    let drift = args.gateway_drift_interval.as_str();
    let server = ConformanceServer::start(provider)?;
    eprintln!(
        "keysmith-bench --gateway: {n} GatewayApps, provider {provider} at {}, limits {rps}/s burst {burst}, operator concurrency {}",
        server.endpoint(),
        args.operator_concurrency
    );
    let run_id = std::process::id();
    let raw_ns = format!("bench-gw-raw-{run_id}");
    let off_ns = format!("bench-gw-off-{run_id}");
    let on_ns = format!("bench-gw-on-{run_id}");

    // 1. The raw baseline of SPEC §8, on N GatewayApps.
    create_namespace(client, &raw_ns).await?;
    let raw_objects: Vec<(bool, String)> = app_names("raw", n)
        .into_iter()
        .map(|name| (true, name))
        .collect();
    create_resources(client, &raw_ns, &raw_objects, c).await?;
    let cpu_before = CpuSeconds::sample(None);
    let raw = raw_writes(client, &raw_ns, &raw_objects, c, false)
        .await?
        .as_secs_f64();
    let raw_cpu = CpuSeconds::sample(None).since(cpu_before);
    eprintln!(
        "raw baseline: {raw:.2}s for {} writes; CPU s: {raw_cpu}",
        2 * n
    );
    let deleted = delete_namespaces(client, &[&raw_ns]).await?;
    eprintln!("{raw_ns} deleted in {deleted:.1}s");

    // 2. keysmith without sync.
    create_namespace(client, &off_ns).await?;
    create_apps(client, &off_ns, &app_names("app", n), false, c).await?;
    let off = keysmith_phase(client, args, binary, &off_ns, false).await?;
    eprintln!(
        "sync off: {:.2}s to all Ready; {} writes (+{} events); CPU s: {}",
        off.seconds, off.writes, off.events, off.cpu
    );
    off.operator.stop();
    let deleted = delete_namespaces(client, &[&off_ns]).await?;
    eprintln!("{off_ns} deleted in {deleted:.1}s");

    // 3. keysmith with sync to the conformance server.
    create_namespace(client, &on_ns).await?;
    create_connection(
        client,
        &on_ns,
        provider,
        &server.endpoint(),
        (rps, burst),
        drift,
    )
    .await?;
    create_apps(client, &on_ns, &app_names("app", n), true, c).await?;
    server.zero()?;
    let server_cpu = server.cpu();
    let on = keysmith_phase(client, args, binary, &on_ns, true).await?;
    let server_cpu = server.cpu() - server_cpu;
    let at_ready = server.stats()?;
    eprintln!(
        "sync on: {:.2}s to all Ready+GatewaySynced; {} writes (+{} events); CPU s: {}, conformance server {server_cpu:.1}",
        on.seconds, on.writes, on.events, on.cpu
    );
    eprintln!("gateway at all Ready: {at_ready:?}");
    // Settled: the events' tail published, the operator idle.
    on.operator.settle(Duration::from_secs(180)).await;
    let settled = server.stats()?;
    eprintln!("gateway once settled: {settled:?}");

    // 4. Idle, with a restart in the middle. The server's counters are
    // polled four times a second: a drift check shows as a run of list
    // calls after a quiet spell, so the checks can be counted apart.
    let idle_seconds = args.gateway_idle_seconds;
    let list_op = if provider == "huawei" {
        "ListAppsV2"
    } else {
        "DescribeAppAttributes"
    };
    server.zero()?;
    let idle_before = mutating_requests(client).await?;
    let mut operator = on.operator;
    let idle_started = Instant::now();
    let (half, end) = (
        Duration::from_secs(idle_seconds / 2),
        Duration::from_secs(idle_seconds),
    );
    let mut idle_first_half: Option<Stats> = None;
    let (mut pages_seen, mut drift_checks) = (0u64, 0u64);
    let mut last_page: Option<Instant> = None;
    while idle_started.elapsed() < end {
        if idle_first_half.is_none() && idle_started.elapsed() >= half {
            idle_first_half = Some(server.stats()?);
            operator.stop();
            operator = Operator::start(binary, &on_ns, args.operator_concurrency)?;
        }
        let pages = server.stats()?.calls.get(list_op).copied().unwrap_or(0);
        if pages > pages_seen {
            if last_page.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
                drift_checks += 1;
            }
            last_page = Some(Instant::now());
            pages_seen = pages;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let idle_first_half = idle_first_half.unwrap_or_default();
    let idle = server.stats()?;
    let idle_pages = idle.calls.get(list_op).copied().unwrap_or(0);
    let idle_after = mutating_requests(client).await?;
    let idle_detail = write_detail(&idle_after, &idle_before);
    let idle_api_writes = delta(
        &idle_after,
        &idle_before,
        &["secrets", "gatewayapps", "gatewayconnections", "events"],
    );
    eprintln!(
        "idle {idle_seconds}s with a restart: first half {idle_first_half:?}; all {idle:?}; {drift_checks} drift checks; apiserver writes {idle_api_writes}"
    );

    // 5. Deletion with the operator running: the cleanup finalizer's calls.
    let deletion = if args.keep {
        None
    } else {
        server.zero()?;
        let seconds = delete_namespaces(client, &[&on_ns]).await?;
        let stats = server.stats()?;
        eprintln!("{on_ns} deleted in {seconds:.1}s; gateway {stats:?}");
        Some((seconds, stats))
    };
    operator.stop();

    let per_app = |x: f64| x / n as f64;
    let floor = (settled.total().saturating_sub(u64::from(burst))) as f64 / f64::from(rps);
    let ratio_off = raw / off.seconds;
    let ratio_on = raw / on.seconds;
    let row = |label: &str, value: String| println!("  {label:<58} {value:>14}");
    println!(
        "keysmith-bench --gateway: {n} GatewayApps synced to one {provider} conformance server"
    );
    println!(
        "  cores {}, memory {:.1} GiB; GatewayConnection limits requestsPerSecond {rps}, burst {burst}",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0),
        crate::mem_gib()
    );
    println!("first issue");
    row(
        "gateway writes per app (server `writes` / N)",
        format!("{:.2}", per_app(settled.writes as f64)),
    );
    row(
        "gateway reads per app",
        format!("{:.2}", per_app(settled.reads() as f64)),
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
        format!("{:.2} / {:.2}", per_app(off.writes), per_app(on.writes)),
    );
    row(
        "events per app, sync off / on (by all Ready)",
        format!("{:.2} / {:.2}", per_app(off.events), per_app(on.events)),
    );
    println!("  apiserver writes, sync off: {}", off.detail);
    println!("  apiserver writes, sync on:  {}", on.detail);
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
        format!("{ratio_off:.3}"),
    );
    row(
        "throughput ratio (raw / keysmith), sync on",
        format!("{ratio_on:.3}"),
    );
    row(
        "client-limit floor: (calls - burst) / requestsPerSecond",
        format!("{floor:.2} s"),
    );
    row(
        "start→done p50 / p99, sync off",
        format!("{:.0} / {:.0} ms", off.p50_ms, off.p99_ms),
    );
    row(
        "start→done p50 / p99, sync on",
        format!("{:.0} / {:.0} ms", on.p50_ms, on.p99_ms),
    );
    println!("  CPU seconds, raw phase:      {raw_cpu}");
    println!("  CPU seconds, sync off:       {}", off.cpu);
    println!(
        "  CPU seconds, sync on:        {}, conformance server {server_cpu:.1}",
        on.cpu
    );
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
        format!("{:.1}", at_ready.total() as f64 / on.seconds.max(1.0)),
    );
    println!(
        "idle ({idle_seconds} s, operator restarted at {} s)",
        idle_seconds / 2
    );
    row("gateway writes", format!("{}", idle.writes));
    row(
        &format!("drift checks (driftCheckInterval {drift})"),
        format!("{drift_checks}"),
    );
    row(
        &format!("list pages ({list_op}) in them / per check"),
        format!(
            "{idle_pages} / {:.1}",
            idle_pages as f64 / drift_checks.max(1) as f64
        ),
    );
    row(
        "apps listed per page (N × checks / pages)",
        format!(
            "{:.0}",
            (n as u64 * drift_checks) as f64 / idle_pages.max(1) as f64
        ),
    );
    row(
        "gateway reads (before / after the restart)",
        format!(
            "{} / {}",
            idle_first_half.reads(),
            idle.reads() - idle_first_half.reads()
        ),
    );
    println!("  gateway calls by operation: {}", idle.per_operation());
    row(
        "apiserver writes (Secrets, apps, connections, events)",
        format!("{idle_api_writes}"),
    );
    println!("  apiserver writes: {idle_detail}");
    if let Some((seconds, stats)) = &deletion {
        println!("deletion (namespace deleted, operator running)");
        row("namespace gone after", format!("{seconds:.1} s"));
        println!("  gateway calls by operation: {}", stats.per_operation());
    }
    println!(
        "{}",
        json!({
            "count": n,
            "provider": provider,
            "requests_per_second": rps,
            "burst": burst,
            "raw_seconds": round(raw),
            "seconds_sync_off": round(off.seconds),
            "seconds_sync_on": round(on.seconds),
            "throughput_ratio_sync_off": round(ratio_off),
            "throughput_ratio_sync_on": round(ratio_on),
            "gateway_writes_per_app": round(per_app(settled.writes as f64)),
            "gateway_calls": settled.calls,
            "apiserver_writes_per_app_sync_off": round(per_app(off.writes)),
            "apiserver_writes_per_app_sync_on": round(per_app(on.writes)),
            "peak_calls_per_second": settled.peak_calls_per_second,
            "idle_seconds": idle_seconds,
            "idle_gateway_writes": idle.writes,
            "idle_gateway_reads": idle.reads(),
            "idle_drift_checks": drift_checks,
            "idle_list_pages": idle_pages,
            "drift_check_interval": drift,
            "idle_apiserver_writes": idle_api_writes,
            "deletion_gateway_calls": deletion.as_ref().map(|(_, s)| &s.calls),
        })
    );
    Ok(())
}
