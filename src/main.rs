use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keysmith::memory::limit_malloc_arenas();
    keysmith::cli::main(keysmith::cli::Cli::parse())
}
