//! The `keysmith` command line.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admission::manifest;
use crate::admission::schema;
use crate::controller::record_key::RecordKeySecret;

pub mod reset;

#[derive(Debug, Parser)]
#[command(
    name = "keysmith",
    version,
    about = "API-gateway credentials, issued and rotated into Kubernetes Secrets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (kubeconfig or in-cluster config, as kubectl finds it).
    Run(RunArgs),
    /// Ask for one reset of GatewayApps/SignatureKeys (sets the keysmith.dev/reset-request annotation).
    Reset {
        /// KIND/NAME (gwapp/NAME, sigkey/NAME, ...); with --all, optional kinds.
        targets: Vec<String>,
        /// Namespace (default: the kubeconfig's).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Every GatewayApp and SignatureKey (or of the kinds named) in the namespace.
        #[arg(long)]
        all: bool,
    },
    /// Print both CRDs as YAML (identical to crds/*.yaml).
    Crds {
        /// Instead of printing, write one `<crd name>.yaml` file per CRD into this directory.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<std::path::PathBuf>,
    },
    /// Check GatewayApp and SignatureKey manifests offline with the admission rules.
    ///
    /// Prints `file: Kind/name: field: rule` per problem and exits 1 if there is any.
    /// Other kinds in the files are ignored. `-` reads standard input.
    Validate {
        /// Manifest files (multi-document YAML); `-` for standard input.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "KEYSMITH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where to serve Prometheus /metrics ("off" to disable).
    #[arg(long, env = "KEYSMITH_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Serve /metrics over HTTPS, only to callers whose bearer token passes a
    /// TokenReview and who may `get` the non-resource URL /metrics (SubjectAccessReview).
    #[arg(long, env = "KEYSMITH_METRICS_SECURE")]
    pub metrics_secure: bool,
    /// With --metrics-secure: a directory holding tls.crt and tls.key, read again
    /// when they change (default: a self-signed certificate made in memory at start).
    #[arg(long, env = "KEYSMITH_METRICS_CERT_DIR", value_name = "DIR")]
    pub metrics_cert_dir: Option<std::path::PathBuf>,
    /// Where to serve /healthz and /readyz ("off" to disable; may equal --metrics-addr
    /// unless --metrics-secure).
    #[arg(long, env = "KEYSMITH_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: String,
    /// Run as one of several replicas: only the holder of a Lease reconciles.
    #[arg(long, env = "KEYSMITH_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "KEYSMITH_LEADER_ELECTION_LEASE_NAME",
        default_value = "keysmith"
    )]
    pub leader_election_lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else the kubeconfig's).
    #[arg(long, env = "KEYSMITH_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// A lease not renewed for this long (seconds) is taken over by a standby.
    #[arg(
        long,
        env = "KEYSMITH_LEADER_ELECTION_LEASE_DURATION",
        default_value_t = 15
    )]
    pub leader_election_lease_duration: u64,
    /// The leader renews this many seconds before its lease would expire.
    #[arg(
        long,
        env = "KEYSMITH_LEADER_ELECTION_RENEW_GRACE",
        default_value_t = 5
    )]
    pub leader_election_renew_grace: u64,
    /// This replica's identity in the election (default: POD_NAME or host name, plus the process id).
    #[arg(long, env = "KEYSMITH_LEADER_ELECTION_IDENTITY")]
    pub leader_election_identity: Option<String>,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "KEYSMITH_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Reconciles at once, per kind (0 = no limit).
    #[arg(long, env = "KEYSMITH_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// The Secret holding the key of keysmith's seals, NAMESPACE/NAME or NAME
    /// (created when missing; NAME alone: in the pod's namespace, outside a
    /// cluster in "default").
    #[arg(
        long,
        env = "KEYSMITH_RECORD_KEY_SECRET",
        default_value = "keysmith-record-key"
    )]
    pub record_key_secret: String,
    /// Do not serve ClusterGatewayConnections (a namespaced install has no
    /// right to read cluster-scoped objects; the chart sets it there).
    #[arg(long)]
    pub no_cluster_connections: bool,
}

fn parse_addr(flag: &str, value: &str) -> Result<Option<std::net::SocketAddr>, String> {
    if value == "off" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("--{flag}: '{value}' is not an address like 0.0.0.0:8080 (or 'off')"))
}

/// The namespace this pod runs in, when in a cluster.
fn pod_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE").ok().or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .ok()
            .map(|s| s.trim().to_string())
    })
}

/// NAMESPACE/NAME, or NAME in the pod's namespace (outside a cluster: "default").
fn record_key_secret(flag: &str) -> RecordKeySecret {
    let (namespace, name) = match flag.split_once('/') {
        Some((namespace, name)) => (namespace.to_string(), name.to_string()),
        None => (
            pod_namespace().unwrap_or_else(|| "default".into()),
            flag.to_string(),
        ),
    };
    RecordKeySecret { namespace, name }
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "keysmith".into());
    format!("{host}-{}", std::process::id())
}

fn run_config(args: RunArgs) -> Result<crate::runtime::RunConfig, String> {
    let leader = if args.leader_election {
        Some(crate::runtime::leader::LeaderOptions {
            lease_name: args.leader_election_lease_name,
            lease_namespace: args
                .leader_election_namespace
                .or_else(pod_namespace)
                .unwrap_or_else(|| "default".into()),
            identity: args
                .leader_election_identity
                .unwrap_or_else(default_identity),
            lease_duration: std::time::Duration::from_secs(args.leader_election_lease_duration),
            renew_grace: std::time::Duration::from_secs(args.leader_election_renew_grace),
        })
    } else {
        None
    };
    if args.leader_election_renew_grace >= args.leader_election_lease_duration {
        return Err(
            "--leader-election-renew-grace must be shorter than --leader-election-lease-duration"
                .into(),
        );
    }
    let metrics_addr = parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = parse_addr("health-addr", &args.health_addr)?;
    Ok(crate::runtime::RunConfig {
        controller: crate::controller::Options {
            record_key_secret: Some(record_key_secret(&args.record_key_secret)),
            namespace: args.namespace,
            concurrency: args.concurrency,
            record_key: None,
            cluster_connections: !args.no_cluster_connections,
        },
        metrics_secure: secure_metrics(
            args.metrics_secure,
            args.metrics_cert_dir,
            metrics_addr,
            health_addr,
        )?,
        metrics_addr,
        health_addr,
        leader,
    })
}

fn secure_metrics(
    secure: bool,
    cert_dir: Option<std::path::PathBuf>,
    metrics_addr: Option<std::net::SocketAddr>,
    health_addr: Option<std::net::SocketAddr>,
) -> Result<Option<crate::runtime::SecureMetrics>, String> {
    if !secure {
        return match cert_dir {
            Some(_) => Err("--metrics-cert-dir needs --metrics-secure".into()),
            None => Ok(None),
        };
    }
    // The probes stay plain HTTP, so they cannot share the HTTPS port.
    if metrics_addr.is_some() && metrics_addr == health_addr {
        return Err("--metrics-secure needs --metrics-addr and --health-addr to differ".into());
    }
    Ok(Some(crate::runtime::SecureMetrics { cert_dir }))
}

pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Reset {
            targets,
            namespace,
            all,
        } => reset(&targets, namespace, all),
        Command::Crds { output_dir: None } => {
            print!("{}", schema::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Crds {
            output_dir: Some(dir),
        } => write_crds(&dir),
        Command::Validate { files } => validate(&files),
    }
}

fn validate(files: &[String]) -> ExitCode {
    let mut problems = 0usize;
    for file in files {
        let text = match read_input(file) {
            Ok(text) => text,
            Err(error) => {
                println!("{file}: cannot read: {error}");
                problems += 1;
                continue;
            }
        };
        match manifest::check_text(&text) {
            Ok(findings) => {
                for finding in &findings {
                    println!("{file}: {finding}");
                }
                problems += findings.len();
            }
            Err(error) => {
                println!("{file}: {error}");
                problems += 1;
            }
        }
    }
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{problems} problem(s) found");
        ExitCode::FAILURE
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(args: RunArgs) -> ExitCode {
    init_logging(args.log_format);
    let config = match run_config(args) {
        Ok(config) => config,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::runtime::run(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "keysmith run failed");
            ExitCode::FAILURE
        }
    }
}

fn reset(targets: &[String], namespace: Option<String>, all: bool) -> ExitCode {
    let targets = match reset::parse_targets(targets, all) {
        Ok(targets) => targets,
        Err(message) => {
            eprintln!("keysmith reset: {message}");
            return ExitCode::from(2);
        }
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("keysmith reset: cannot start the async runtime");
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(client) => client,
            Err(error) => {
                eprintln!("keysmith reset: no Kubernetes configuration: {error}");
                return ExitCode::FAILURE;
            }
        };
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        match reset::reset(client, &namespace, &targets).await {
            Ok(done) => {
                for object in done {
                    println!("{object} reset requested");
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("keysmith reset: {message}");
                ExitCode::FAILURE
            }
        }
    })
}

fn write_crds(dir: &std::path::Path) -> ExitCode {
    for crd in schema::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let path = dir.join(format!("{name}.yaml"));
        if let Err(error) = std::fs::write(&path, schema::crd_yaml(&crd)) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

fn read_input(file: &str) -> std::io::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<std::net::SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn secure_metrics_need_their_own_port_and_the_flag() {
        let (metrics, health) = (addr("0.0.0.0:8080"), addr("0.0.0.0:8081"));
        assert!(
            secure_metrics(false, None, metrics, health)
                .unwrap()
                .is_none()
        );
        let dir = std::path::PathBuf::from("/certs");
        let secure = secure_metrics(true, Some(dir.clone()), metrics, health).unwrap();
        assert_eq!(secure.unwrap().cert_dir, Some(dir.clone()));
        assert!(secure_metrics(true, None, metrics, metrics).is_err());
        assert!(secure_metrics(false, Some(dir), metrics, health).is_err());
        assert!(secure_metrics(true, None, None, None).unwrap().is_some());
    }
}
