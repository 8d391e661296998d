//! The `keysmith` command line.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::manifest;
use crate::schema;

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
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "KEYSMITH_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Reconciles at once, per kind (0 = no limit).
    #[arg(long, env = "KEYSMITH_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
}

pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run(args),
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "no Kubernetes configuration found (KUBECONFIG, ~/.kube/config or in-cluster)");
                return ExitCode::FAILURE;
            }
        };
        if let Err(missing) = crate::controller::check_crds(&client).await {
            tracing::error!("{missing}");
            return ExitCode::FAILURE;
        }
        let options = crate::controller::Options {
            namespace: args.namespace,
            concurrency: args.concurrency,
        };
        crate::controller::run(client, options).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
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
