//! keysmith-bench: throughput, writes, idle writes, latency and memory of
//! `keysmith run` against the control plane in KUBECONFIG (SPEC section 8).
//!
//!   cargo bench --bench keysmith-bench -- --count 1000
//!
//! (`cargo bench` builds it and the release `keysmith` binary it drives.)
//!
//! `main` parses the arguments and runs one benchmark: `throughput.rs` (what
//! each timing includes is said there) or, with `--gateway`, the cloud
//! gateway sync (SPEC §11.4, `gateway.rs`). They share `objects.rs` (what
//! is created and deleted), `raw.rs` (the raw baseline), `watch.rs` (seeing
//! resources Ready), `measure.rs` (apiserver requests, CPU, percentiles)
//! and `operator.rs` (`keysmith run`, started by the tests' own launcher,
//! tests/support/launch.rs; the conformance server is the tests' too).
//!
//! The last line printed is one JSON object with the figures.

mod gateway;
mod measure;
mod objects;
mod operator;
mod raw;
mod throughput;
mod watch;

/// Starting and stopping `keysmith run`, as the tests do.
#[path = "../../tests/support/launch.rs"]
mod launch;

/// The apiserver's request counters, as the tests read them.
#[path = "../../tests/support/apiserver.rs"]
mod apiserver;

/// The conformance server, as the tests start it.
#[allow(dead_code)] // the tests' SDK helpers
#[path = "../../tests/support/conformance.rs"]
mod conformance;

use std::path::PathBuf;

use clap::Parser;
use kube::Client;

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
    /// and the raw baseline; see benches/keysmith-bench/gateway.rs.
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

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let client = Client::try_default().await?;
    let binary = args.keysmith.clone().unwrap_or_else(launch::this_build);
    if args.gateway {
        gateway::run(&client, &args, &binary).await
    } else {
        throughput::run(&client, &args, &binary).await
    }
}
