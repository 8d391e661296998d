//! `keysmith-conformance`: a conformance server for one cloud gateway's
//! management API (SPEC §11.3) — the subset keysmith uses, with the same
//! paths, bodies, error shapes and request signing as the real API, an
//! in-memory store, and switches for faults and latency.
//!
//! It is test equipment: the providers' official SDKs prove it faithful
//! (tests/conformance_*.rs), then keysmith's integration tests and benchmark
//! run against it. It serves loopback only.
//!
//!   keysmith-conformance --provider huawei --access-key-id AK --access-key-secret SK
//!
//! prints `listening on http://127.0.0.1:PORT` as its first line. The control
//! routes under `/_conformance/` (unsigned, loopback) are described in
//! `control.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Parser, ValueEnum};

mod alibaba;
mod control;
mod huawei;

pub use control::{Control, Fault, FaultKind};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProviderArg {
    Huawei,
    Alibaba,
}

#[derive(Parser, Debug)]
#[command(about = "A conformance server for a cloud gateway's management API (test equipment)")]
struct Args {
    #[arg(long, value_enum)]
    provider: ProviderArg,
    /// Loopback address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The one access key the server accepts.
    #[arg(long, env = "CONFORMANCE_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "CONFORMANCE_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: String,
    /// Huawei: the project id in every path.
    #[arg(long, default_value = "0123456789abcdef0123456789abcdef")]
    project_id: String,
    /// Huawei: the one APIG instance.
    #[arg(long, default_value = "eddc4d25480b4cd6b512f270a1b8b341")]
    instance_id: String,
    /// Alibaba: the region the endpoint serves.
    #[arg(long, default_value = "cn-hangzhou")]
    region: String,
}

/// What every provider's handlers share.
pub struct Shared {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub project_id: String,
    pub instance_id: String,
    pub region: String,
    pub control: Control,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!("keysmith-conformance serves loopback only");
        std::process::exit(2);
    }
    let shared = Arc::new(Shared {
        access_key_id: args.access_key_id,
        access_key_secret: args.access_key_secret,
        project_id: args.project_id,
        instance_id: args.instance_id,
        region: args.region,
        control: Control::default(),
    });
    let provider_routes = match args.provider {
        ProviderArg::Huawei => huawei::router(shared.clone()),
        ProviderArg::Alibaba => alibaba::router(shared.clone()),
    };
    let app = control::router(shared.clone()).merge(provider_routes);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
