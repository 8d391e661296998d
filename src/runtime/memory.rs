//! Keeping the process small: glibc keeps memory that was freed (after the
//! initial list, after a burst of reconciles) inside the heap, and its RSS
//! stays at the high-water mark. keysmith hands it back to the kernel.
//! (The static musl image has neither arenas nor `malloc_trim`; there these
//! are no-ops.)

use std::time::Duration;

/// How often to look, and how much free memory inside the heap is worth
/// handing back. Trimming walks the free lists: about a millisecond for the
/// heap of 20k cached resources.
const TRIM_EVERY: Duration = Duration::from_secs(2);
const TRIM_ABOVE_BYTES: usize = 4 << 20;

/// glibc gives each thread that allocates its own malloc arena, and each keeps
/// freed memory; with tens of thousands of cached objects that cost about
/// 7 MiB of RSS at 10k + 10k resources (BENCHMARKS.md). keysmith waits on the
/// apiserver, not on malloc, so one arena is enough. `MALLOC_ARENA_MAX` in the
/// environment still wins. Call before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Free bytes held inside the heap (not yet returned to the kernel).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_in_heap() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.fordblks
}

/// Returns freed heap pages to the kernel whenever more than
/// `TRIM_ABOVE_BYTES` lie free; runs until the runtime stops.
pub async fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        if free_in_heap() > TRIM_ABOVE_BYTES {
            // SAFETY: malloc_trim is thread-safe; it only releases free pages.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}
