//! Starting `keysmith run` as a child process that dies with its parent,
//! and stopping it: what the tests' `Operator` and the benchmark share
//! (benches/keysmith-bench/ includes this file by path, so it uses nothing
//! else of `support`).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How to start one `keysmith run`.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The `keysmith` executable: this build's, or another (an earlier release).
    pub binary: PathBuf,
    /// `--namespace` (empty: every namespace).
    pub namespace: String,
    /// `--metrics-addr` and `--health-addr` (`off`: not served).
    pub metrics_addr: String,
    pub health_addr: String,
    /// Further arguments, after those above.
    pub extra_args: Vec<String>,
    /// `KUBECONFIG` (None: this process's).
    pub kubeconfig: Option<PathBuf>,
    /// `RUST_LOG`.
    pub log_level: String,
    /// The file stdout and stderr are appended to (None: stdout is
    /// discarded and stderr is this process's).
    pub log: Option<PathBuf>,
}

impl Launch {
    /// `binary run --namespace <namespace>`, serving nothing, warnings on
    /// this process's stderr.
    pub fn new(binary: &Path, namespace: &str) -> Launch {
        Launch {
            binary: binary.to_path_buf(),
            namespace: namespace.into(),
            metrics_addr: "off".into(),
            health_addr: "off".into(),
            extra_args: Vec::new(),
            kubeconfig: None,
            log_level: "warn".into(),
            log: None,
        }
    }

    /// Starts it; it gets SIGKILL if this process dies first.
    pub fn spawn(&self) -> std::io::Result<Child> {
        let mut command = Command::new(&self.binary);
        command.args(["run", "--log-format", "json"]);
        if !self.namespace.is_empty() {
            command.args(["--namespace", &self.namespace]);
        }
        command
            .args(["--metrics-addr", &self.metrics_addr])
            .args(["--health-addr", &self.health_addr])
            .args(&self.extra_args)
            .env("RUST_LOG", &self.log_level)
            .stdin(Stdio::null());
        if let Some(kubeconfig) = &self.kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        match &self.log {
            Some(path) => {
                let log = OpenOptions::new().create(true).append(true).open(path)?;
                command.stdout(log.try_clone()?).stderr(log);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::inherit());
            }
        }
        // SAFETY: prctl only; the operator dies with the thread that started
        // it (a test's, or the benchmark's main thread).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        command.spawn()
    }
}

/// This build's `keysmith`.
pub fn this_build() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keysmith"))
}

/// SIGTERM, up to `grace` for a graceful exit, then SIGKILL.
pub fn terminate(child: &mut Child, grace: Duration) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(step);
        waited += step;
    }
    kill(child);
}

/// SIGKILL, and reap it.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
