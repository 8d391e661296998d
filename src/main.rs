use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keysmith::runtime::memory::limit_malloc_arenas();
    keysmith::cli::main(keysmith::cli::Cli::parse())
}
