use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keysmith::cli::main(keysmith::cli::Cli::parse())
}
