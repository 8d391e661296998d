use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of the system allocator. keysmith holds tens of
/// thousands of small cached objects: jemalloc's size classes carry no
/// per-allocation header and its background thread hands freed pages back
/// to the kernel. At 10k GatewayApps + 10k SignatureKeys the idle RSS is
/// 58.8 MiB against 64.5 with glibc's malloc tuned for it (one arena,
/// `malloc_trim`); BENCHMARKS.md, "The allocator".
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the
/// environment adds to them): one arena and no per-thread caches (keysmith
/// waits on the apiserver, not on malloc), and freed pages go back to the
/// kernel within a second, from a background thread, also when idle.
#[cfg(not(target_env = "msvc"))]
const MALLOC_CONF: &[u8] =
    b"narenas:1,tcache:false,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// The symbol jemalloc reads its compiled-in options from (a C string).
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: &u8 = &MALLOC_CONF[0];

fn main() -> ExitCode {
    keysmith::cli::main(keysmith::cli::Cli::parse())
}
