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
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1,
    /// written (tls.crt, tls.key) into this directory: a client trusts it
    /// through a connection's caBundle.
    #[arg(long)]
    tls_dir: Option<std::path::PathBuf>,
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
    let address = listener.local_addr()?;
    match &args.tls_dir {
        None => {
            println!("listening on http://{address}");
            axum::serve(listener, app).await
        }
        Some(dir) => {
            let config = tls_config(dir)?;
            let listener = keysmith::runtime::tls::TlsListener::new(listener, config)?;
            println!("listening on https://{address}");
            axum::serve(listener, app).await
        }
    }
}

/// A self-signed certificate for 127.0.0.1, written as PEM into `dir`.
fn tls_config(dir: &std::path::Path) -> std::io::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    use base64::Engine as _;
    let failed = |e: keysmith::runtime::tls::TlsError| std::io::Error::other(e.to_string());
    let (chain, key) = keysmith::runtime::tls::self_signed().map_err(failed)?;
    let pem = |label: &str, der: &[u8]| {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("tls.crt"), pem("CERTIFICATE", chain[0].as_ref()))?;
    std::fs::write(dir.join("tls.key"), pem("PRIVATE KEY", key.secret_der()))?;
    keysmith::runtime::tls::server_config(Some(dir)).map_err(failed)
}
