use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    keysmith::cli::main(keysmith::cli::Cli::parse())
}

/// glibc gives each thread that allocates its own malloc arena, and each keeps
/// freed memory; with tens of thousands of cached objects that cost about
/// 10 MiB of RSS at 10k + 10k resources (BENCHMARKS.md). keysmith waits on the
/// apiserver, not on malloc, so one arena is enough. `MALLOC_ARENA_MAX` in the
/// environment still wins. (The static musl image has no arenas.)
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
