//! The main benchmark (SPEC section 8). What each timing includes:
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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keysmith::api::{GatewayApp, SignatureKey};
use kube::Client;
use kube::api::Api;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::measure::{
    CpuSeconds, delta, mem_gib, mutating_requests, percentile, profile_apiserver, round,
};
use crate::objects::{
    create_namespace, create_one, create_resources, delete_namespaces, names, unrelated_secrets,
};
use crate::operator::Operator;
use crate::raw::{raw_writes, secret_write_cost};
use crate::watch::{OperatorWatches, ReadyWatch, wait_events};
use crate::{Args, BoxError};

/// The namespaces of one run.
struct Namespaces {
    run_id: u32,
    raw: String,
    keysmith: String,
    latency: String,
}

/// The raw baseline.
struct Raw {
    seconds: f64,
    cpu: String,
}

/// keysmith from a cold start, until a watch has seen every resource Ready.
struct AllReady {
    seconds: f64,
    cpu: String,
    /// Start to Ready of each resource, in ms, sorted.
    start_to_ready: Vec<f64>,
}

/// The cold start, its writes and the events that followed it.
struct Cold {
    ready: AllReady,
    /// Mutating apiserver requests on Secrets, GatewayApps and SignatureKeys.
    writes: f64,
    events: f64,
    issued_events: usize,
    /// Seconds from all Ready to the last `Issued` event.
    event_delay: f64,
    event_cpu: String,
    /// The operator that issued everything, before any restart.
    issuing_rss_mib: f64,
}

/// The quiet period with a restart, and the restarted operator's memory.
struct Idle {
    writes: f64,
    rss_mib: f64,
    peak_rss_mib: f64,
}

/// Create to Ready at half the measured throughput.
struct Latency {
    count: usize,
    rate: f64,
    p50: f64,
    p99: f64,
}

pub async fn run(client: &Client, args: &Args, binary: &Path) -> Result<(), BoxError> {
    let ns = Namespaces::create(client).await?;
    let (n, c) = (args.count, args.client_concurrency);
    eprintln!(
        "keysmith-bench: {n} resources, client concurrency {c}, operator concurrency {}",
        args.operator_concurrency
    );
    if args.unrelated_secrets > 0 {
        eprintln!("creating {} unrelated Secrets", args.unrelated_secrets);
        unrelated_secrets(client, &ns.keysmith, args.unrelated_secrets, c).await?;
    }
    let raw = raw_phase(client, args, &ns.raw).await?;
    if args.compare_secret_writes {
        secret_write_cost(client, &ns.raw, n, c).await?;
    }
    // Every phase runs on an apiserver that holds only its own objects (its
    // heap, and so its garbage collection, grows with every object it
    // holds): the previous phase's namespace is deleted, and waited for,
    // first.
    let previous = if args.decompose {
        decomposed_raw_phases(client, args, &ns).await?
    } else {
        ns.raw.clone()
    };
    let seconds = delete_namespaces(client, &[&previous]).await?;
    eprintln!("{previous} deleted in {seconds:.1}s, before the keysmith phase");

    let (cold, operator) = cold_start(client, args, binary, &ns.keysmith).await?;
    let idle = idle_with_restart(client, args, binary, &ns.keysmith, operator).await?;
    let latency = latency_phase(client, args, binary, &ns.latency, cold.ready.seconds).await?;
    report_cold_start(args, &raw, &cold);
    report_after(args, &cold, &idle, &latency);
    raw_again_or_clean_up(client, args, &ns, cold.ready.seconds).await?;
    println!("{}", summary(args, &raw, &cold, &idle, &latency));
    Ok(())
}

impl Namespaces {
    async fn create(client: &Client) -> Result<Namespaces, BoxError> {
        let run_id = std::process::id();
        let ns = Namespaces {
            run_id,
            raw: format!("bench-raw-{run_id}"),
            keysmith: format!("bench-keysmith-{run_id}"),
            latency: format!("bench-latency-{run_id}"),
        };
        for name in [&ns.raw, &ns.keysmith, &ns.latency] {
            create_namespace(client, name).await?;
        }
        Ok(ns)
    }
}

/// Phase 1: the raw baseline, with an apiserver profile in its middle if asked.
async fn raw_phase(client: &Client, args: &Args, ns: &str) -> Result<Raw, BoxError> {
    let (n, c) = (args.count, args.client_concurrency);
    let objects = names("raw", n);
    create_resources(client, ns, &objects, c).await?;
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
    let raw = raw_writes(client, ns, &objects, c, false).await?;
    let cpu = CpuSeconds::sample(None).since(cpu_before);
    eprintln!(
        "raw baseline: {:.2}s for {} writes; CPU s: {cpu}",
        raw.as_secs_f64(),
        2 * n
    );
    finish_profile(profile, "raw").await?;
    Ok(Raw {
        seconds: raw.as_secs_f64(),
        cpu,
    })
}

/// Waits for a profile `profile_apiserver` started, saying if the phase
/// ended before its window did.
async fn finish_profile(profile: Option<JoinHandle<()>>, phase: &str) -> Result<(), BoxError> {
    if let Some(profile) = profile {
        if !profile.is_finished() {
            eprintln!("apiserver profile: the {phase} phase ended before its window did");
        }
        profile.await?;
    }
    Ok(())
}

/// `--decompose`: two more raw phases, each in a namespace of its own once
/// the previous one is gone; returns the last namespace (not yet deleted).
async fn decomposed_raw_phases(
    client: &Client,
    args: &Args,
    ns: &Namespaces,
) -> Result<String, BoxError> {
    let (n, c) = (args.count, args.client_concurrency);
    let mut previous = ns.raw.clone();
    for (step, watched) in [("apply", false), ("watched", true)] {
        let seconds = delete_namespaces(client, &[&previous]).await?;
        eprintln!("{previous} deleted in {seconds:.1}s");
        let name = format!("bench-{step}-{}", ns.run_id);
        create_namespace(client, &name).await?;
        previous = name.clone();
        let objects = names(step, n);
        create_resources(client, &name, &objects, c).await?;
        let watches = if watched {
            Some(OperatorWatches::start(client, &name).await?)
        } else {
            None
        };
        let cpu_before = CpuSeconds::sample(None);
        let took = raw_writes(client, &name, &objects, c, true).await?;
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
    Ok(previous)
}

/// Phase 2: keysmith from a cold start on pre-created resources, then the event
/// tail; returns the operator still running.
async fn cold_start(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &str,
) -> Result<(Cold, Operator), BoxError> {
    let n = args.count;
    create_resources(client, ns, &names("obj", n), args.client_concurrency).await?;
    let before = mutating_requests(client).await?;
    let (ready, operator) = until_all_ready(client, args, binary, ns).await?;
    let (issued_events, event_delay, event_cpu) = event_tail(client, ns, n, &operator).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = mutating_requests(client).await?;
    let writes = delta(
        &after,
        &before,
        &["secrets", "gatewayapps", "signaturekeys"],
    );
    let events = delta(&after, &before, &["events"]);
    let issuing_rss_mib = operator.memory_mib("VmRSS:");
    eprintln!(
        "keysmith: {:.2}s to all Ready; {writes} writes (+{events} events)",
        ready.seconds
    );
    print_request_detail(&after, &before);
    let cold = Cold {
        ready,
        writes,
        events,
        issued_events,
        event_delay,
        event_cpu,
        issuing_rss_mib,
    };
    Ok((cold, operator))
}

/// Starts the operator and times it until a watch (listed before the clock
/// starts) has seen every resource Ready.
async fn until_all_ready(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &str,
) -> Result<(AllReady, Operator), BoxError> {
    let n = args.count;
    let cpu_before = CpuSeconds::sample(None);
    let ready_watch = ReadyWatch::start(client, ns).await?;
    let started = Instant::now();
    let operator = Operator::start(binary, ns, args.operator_concurrency)?;
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
    let cpu = CpuSeconds::sample(Some(operator.pid())).since(cpu_before);
    eprintln!("keysmith phase CPU s: {cpu}");
    finish_profile(profile, "keysmith").await?;
    let mut start_to_ready: Vec<f64> = ready
        .values()
        .map(|t| (*t - started).as_secs_f64() * 1000.0)
        .collect();
    start_to_ready.sort_by(|a, b| a.total_cmp(b));
    let ready = AllReady {
        seconds,
        cpu,
        start_to_ready,
    };
    Ok((ready, operator))
}

/// Events wait behind the credential writes (SPEC §8): all of them are due
/// within 60 s of the burst's end. (How many, seconds after all Ready, CPU.)
async fn event_tail(
    client: &Client,
    ns: &str,
    n: usize,
    operator: &Operator,
) -> Result<(usize, f64, String), BoxError> {
    let cpu_before = CpuSeconds::sample(Some(operator.pid()));
    let ready_at = Instant::now();
    let issued = wait_events(client, ns, n, Duration::from_secs(120 + n as u64 / 50)).await?;
    let delay = ready_at.elapsed().as_secs_f64();
    let cpu = CpuSeconds::sample(Some(operator.pid())).since(cpu_before);
    eprintln!("events: {issued} Issued events {delay:.1}s after all Ready; CPU s: {cpu}");
    Ok((issued, delay, cpu))
}

/// Every request by `resource/subresource VERB` between two samples.
fn print_request_detail(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) {
    for (key, value) in after {
        let change = value - before.get(key).copied().unwrap_or(0.0);
        if key.contains(' ') && change > 0.0 {
            eprintln!("  {key}: {change}");
        }
    }
}

/// Phase 3, idle: a quiet period with an operator restart (full re-list) in it;
/// then memory once the restarted operator has re-listed and re-checked
/// everything and is idle, its peak beside it.
async fn idle_with_restart(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &str,
    operator: Operator,
) -> Result<Idle, BoxError> {
    let idle_before = mutating_requests(client).await?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds / 2)).await;
    operator.stop();
    let operator = Operator::start(binary, ns, args.operator_concurrency)?;
    tokio::time::sleep(Duration::from_secs(
        args.idle_seconds - args.idle_seconds / 2,
    ))
    .await;
    let idle_after = mutating_requests(client).await?;
    let writes = delta(
        &idle_after,
        &idle_before,
        &["secrets", "gatewayapps", "signaturekeys", "events"],
    );
    eprintln!(
        "idle: {writes} writes over {}s with a restart",
        args.idle_seconds
    );
    operator.settle(Duration::from_secs(120)).await;
    let rss_mib = operator.memory_mib("VmRSS:");
    let peak_rss_mib = operator.memory_mib("VmHWM:");
    operator.stop();
    Ok(Idle {
        writes,
        rss_mib,
        peak_rss_mib,
    })
}

/// Phase 4: latency at half the measured throughput (`keysmith_seconds` for N).
async fn latency_phase(
    client: &Client,
    args: &Args,
    binary: &Path,
    ns: &str,
    keysmith_seconds: f64,
) -> Result<Latency, BoxError> {
    let count = if args.latency_count == 0 {
        args.count.min(200)
    } else {
        args.latency_count
    };
    let rate = (args.count as f64 / keysmith_seconds) / 2.0;
    let operator = Operator::start(binary, ns, args.operator_concurrency)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let objects = names("lat", count);
    let watch = ReadyWatch::start(client, ns).await?;
    let watcher_task =
        tokio::spawn(async move { watch.wait(count, Duration::from_secs(600)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created_at = create_at_rate(client, ns, objects, rate, args.client_concurrency).await?;
    let ready = watcher_task.await??;
    let mut latencies: Vec<f64> = ready
        .iter()
        .filter_map(|(k, t)| created_at.get(k).map(|c| (*t - *c).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    operator.stop();
    Ok(Latency {
        count,
        rate,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    })
}

/// Creates `objects` at `rate` a second (at most `concurrency` at once);
/// the instant each was sent, by `app/NAME` or `key/NAME`.
async fn create_at_rate(
    client: &Client,
    ns: &str,
    objects: Vec<(bool, String)>,
    rate: f64,
    concurrency: usize,
) -> Result<HashMap<String, Instant>, BoxError> {
    let mut created_at: HashMap<String, Instant> = HashMap::new();
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    let creators = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut handles = Vec::new();
    for (is_app, name) in objects {
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
            create_one(&apps, &keys, is_app, &name).await
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(created_at)
}

/// One figure: its label, and its value right-aligned.
fn row(label: &str, value: String) {
    println!("  {label:<44} {value:>12}");
}

/// The report's first half: the raw baseline against the cold start.
fn report_cold_start(args: &Args, raw: &Raw, cold: &Cold) {
    let n = args.count;
    let ready = &cold.ready;
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
    row(
        "raw baseline (2 writes per resource)",
        format!("{:.2} s", raw.seconds),
    );
    row(
        "keysmith, start to all Ready",
        format!("{:.2} s", ready.seconds),
    );
    println!("  CPU seconds, raw phase:      {}", raw.cpu);
    println!("  CPU seconds, keysmith phase: {}", ready.cpu);
    row(
        "throughput ratio (raw / keysmith)",
        format!("{:.3}", raw.seconds / ready.seconds),
    );
    let times = &ready.start_to_ready;
    row(
        "start→Ready first / p50 / p99 (cold start)",
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            times.first().copied().unwrap_or(f64::NAN),
            percentile(times, 50.0),
            percentile(times, 99.0)
        ),
    );
}

/// The report's second half: writes, events, idle, latency, memory.
fn report_after(args: &Args, cold: &Cold, idle: &Idle, latency: &Latency) {
    let n = args.count as f64;
    row(
        "writes per resource (Secrets + status)",
        format!("{:.2}", cold.writes / n),
    );
    row("events per resource", format!("{:.2}", cold.events / n));
    row(
        "Issued events, all published after all Ready",
        format!("{} in {:.1} s", cold.issued_events, cold.event_delay),
    );
    println!("  CPU seconds, event tail:     {}", cold.event_cpu);
    row(
        "idle writes (quiet period with a restart)",
        format!("{}", idle.writes),
    );
    row(
        &format!(
            "create→Ready p50 at {:.0}/s ({} objects)",
            latency.rate, latency.count
        ),
        format!("{:.0} ms", latency.p50),
    );
    row("create→Ready p99", format!("{:.0} ms", latency.p99));
    row(
        "operator RSS, idle after the restart",
        format!("{:.1} MiB", idle.rss_mib),
    );
    row(
        "operator RSS, right after issuing all",
        format!("{:.1} MiB", cold.issuing_rss_mib),
    );
    row(
        "operator RSS, peak after the restart",
        format!("{:.1} MiB", idle.peak_rss_mib),
    );
    if args.unrelated_secrets > 0 {
        println!("  ({} unrelated Secrets present)", args.unrelated_secrets);
    }
}

/// `--raw-again-last`: once the keysmith and latency namespaces are gone,
/// the raw baseline once more on N new resources, and the ratio against
/// it. The namespaces are deleted (and waited for) unless `--keep`.
async fn raw_again_or_clean_up(
    client: &Client,
    args: &Args,
    ns: &Namespaces,
    keysmith_seconds: f64,
) -> Result<(), BoxError> {
    if !args.raw_again_last {
        if !args.keep {
            let seconds = delete_namespaces(client, &[&ns.keysmith, &ns.latency]).await?;
            eprintln!("namespaces deleted in {seconds:.1}s");
        }
        return Ok(());
    }
    let deleted_in = delete_namespaces(client, &[&ns.keysmith, &ns.latency]).await?;
    eprintln!("namespaces deleted in {deleted_in:.1}s, before the raw phase again");
    let name = format!("bench-raw-last-{}", ns.run_id);
    create_namespace(client, &name).await?;
    let (n, c) = (args.count, args.client_concurrency);
    let objects = names("last", n);
    create_resources(client, &name, &objects, c).await?;
    let cpu_before = CpuSeconds::sample(None);
    let raw_last = raw_writes(client, &name, &objects, c, false).await?;
    let cpu = CpuSeconds::sample(None).since(cpu_before);
    let raw_last = raw_last.as_secs_f64();
    eprintln!("raw baseline again, last: {raw_last:.2}s; CPU s: {cpu}");
    println!("  raw baseline again, measured last              {raw_last:>8.2} s   CPU s: {cpu}");
    println!(
        "  throughput ratio against it                     {:>8.3}",
        raw_last / keysmith_seconds
    );
    if !args.keep {
        let deleted_in = delete_namespaces(client, &[&name]).await?;
        eprintln!("namespace deleted in {deleted_in:.1}s");
    }
    Ok(())
}

/// The last line: the figures as one JSON object.
fn summary(
    args: &Args,
    raw: &Raw,
    cold: &Cold,
    idle: &Idle,
    latency: &Latency,
) -> serde_json::Value {
    let seconds = cold.ready.seconds;
    json!({
        "count": args.count,
        "seconds": round(seconds),
        "raw_seconds": round(raw.seconds),
        "throughput_ratio": round(raw.seconds / seconds),
        "writes_per_resource": round(cold.writes / args.count as f64),
        "idle_writes": idle.writes,
        "p50_ms": round(latency.p50),
        "p99_ms": round(latency.p99),
        "rss_mib": round(idle.rss_mib),
        "events": cold.issued_events,
        "event_delay_s": round(cold.event_delay),
    })
}
