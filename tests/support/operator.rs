//! The built `keysmith run` binary as a child process, scoped to one test's
//! namespace, logging at debug level to a file the test can read.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::control_plane::ControlPlane;

pub struct Operator {
    /// The `keysmith` executable: this build's, or another (an earlier release).
    binary: PathBuf,
    pub metrics_port: u16,
    pub health_port: u16,
    extra_args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    namespace: String,
    kubeconfig: PathBuf,
    starts: usize,
}

impl Operator {
    /// Starts `keysmith run --namespace <namespace>`.
    pub fn start(cp: &ControlPlane, namespace: &str) -> Operator {
        Self::start_with(cp, namespace, "", &[])
    }

    /// Starts it with extra arguments; `tag` tells several operators of one namespace apart.
    pub fn start_with(
        cp: &ControlPlane,
        namespace: &str,
        tag: &str,
        extra_args: &[&str],
    ) -> Operator {
        let mut operator = Self::prepared(cp, namespace, tag, extra_args);
        operator.restart();
        operator
    }

    fn prepared(cp: &ControlPlane, namespace: &str, tag: &str, extra_args: &[&str]) -> Operator {
        let log = cp.dir.join(format!("operator-{namespace}{tag}.log"));
        Operator {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_keysmith")),
            metrics_port: free_port(),
            health_port: free_port(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            child: None,
            log,
            namespace: namespace.into(),
            kubeconfig: cp.kubeconfig.clone(),
            starts: 0,
        }
    }

    /// Starts `keysmith run` over every namespace (a test binary of its own:
    /// it reconciles whatever its control plane holds).
    pub fn start_cluster_wide(cp: &ControlPlane) -> Operator {
        Self::start_with(cp, "", "cluster-wide", &[])
    }

    /// Starts `binary` (an earlier release, say) instead of this build.
    pub fn start_binary(cp: &ControlPlane, namespace: &str, binary: &std::path::Path) -> Operator {
        let mut operator = Self::prepared(cp, namespace, "", &[]);
        operator.binary = binary.to_path_buf();
        operator.restart();
        operator
    }

    /// Stops it, and starts `binary` in its place (an upgrade or a downgrade).
    pub fn switch_to(&mut self, binary: &std::path::Path) {
        self.stop();
        self.binary = binary.to_path_buf();
        self.restart();
    }

    /// This build's `keysmith`.
    pub fn this_build() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_keysmith"))
    }

    /// Starts it again (after `stop` or `kill`), appending to the same log.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log");
        let mut command = Command::new(&self.binary);
        command.args(["run", "--log-format", "json"]);
        if !self.namespace.is_empty() {
            command.args(["--namespace", &self.namespace]);
        }
        command
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{}", self.metrics_port),
            ])
            .args(["--health-addr", &format!("127.0.0.1:{}", self.health_port)])
            .args(&self.extra_args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        // SAFETY: prctl only; the operator dies with the test binary.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("start keysmith run"));
        self.starts += 1;
    }

    /// SIGTERM, and wait for a graceful exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on our own child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL: the operator dies wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// GET a path on one of its HTTP ports: (status code, body).
    pub fn http_get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
