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

pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
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
