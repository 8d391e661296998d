//! What the benchmark reads about the machine: the apiserver's request
//! counters and CPU profile, each process's CPU seconds, percentiles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Starts a `seconds`-long CPU profile of kube-apiserver after `delay`,
/// written to `dir/name.pprof` (nothing without `dir`).
pub fn profile_apiserver(
    dir: Option<&PathBuf>,
    name: &'static str,
    delay: Duration,
    seconds: u64,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = dir?.join(format!("{name}.pprof"));
    let kubectl = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(|assets| PathBuf::from(assets).join("kubectl"))
        .filter(|kubectl| kubectl.exists())
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    Some(tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let url = format!("/debug/pprof/profile?seconds={seconds}");
        let output = tokio::task::spawn_blocking(move || {
            Command::new(kubectl).args(["get", "--raw", &url]).output()
        })
        .await;
        match output {
            Ok(Ok(output)) if output.status.success() => match std::fs::write(&path, output.stdout)
            {
                Ok(()) => eprintln!("apiserver profile: {}", path.display()),
                Err(error) => eprintln!("apiserver profile {}: {error}", path.display()),
            },
            Ok(Ok(output)) => eprintln!(
                "apiserver profile failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
            Ok(Err(error)) => eprintln!("apiserver profile failed: {error}"),
            Err(error) => eprintln!("apiserver profile failed: {error}"),
        }
    }))
}

/// The apiserver's request counters (`tests/support/apiserver.rs`): writes
/// by resource, every request by `resource/subresource VERB`.
pub use crate::apiserver::requests as mutating_requests;

pub fn delta(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
    resources: &[&str],
) -> f64 {
    resources
        .iter()
        .map(|r| after.get(*r).copied().unwrap_or(0.0) - before.get(*r).copied().unwrap_or(0.0))
        .sum()
}

/// CPU seconds (user + system) used so far by the processes that share the
/// machine in a run: where a phase's time goes.
#[derive(Clone, Copy, Default)]
pub struct CpuSeconds {
    apiserver: f64,
    etcd: f64,
    /// kube-controller-manager (its garbage collector watches every write).
    controller_manager: f64,
    operator: f64,
    bench: f64,
}

impl CpuSeconds {
    pub fn sample(operator: Option<u32>) -> CpuSeconds {
        let mut sample = CpuSeconds {
            bench: process_cpu("self"),
            operator: operator.map_or(0.0, |pid| process_cpu(&pid.to_string())),
            ..CpuSeconds::default()
        };
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().to_string();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            match std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .as_deref()
                .map(str::trim)
            {
                Ok("kube-apiserver") => sample.apiserver += process_cpu(&pid),
                Ok("etcd") => sample.etcd += process_cpu(&pid),
                // comm is cut at 15 bytes
                Ok("kube-controller") => sample.controller_manager += process_cpu(&pid),
                _ => {}
            }
        }
        sample
    }

    pub fn since(self, earlier: CpuSeconds) -> String {
        format!(
            "apiserver {:.1}, etcd {:.1}, controller-manager {:.1}, keysmith {:.1}, bench client {:.1}",
            self.apiserver - earlier.apiserver,
            self.etcd - earlier.etcd,
            self.controller_manager - earlier.controller_manager,
            self.operator - earlier.operator,
            self.bench - earlier.bench
        )
    }
}

/// utime + stime of /proc/PID/stat, in seconds.
pub fn process_cpu(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn mem_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(f64::NAN)
}
