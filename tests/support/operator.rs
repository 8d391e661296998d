//! The built `keysmith run` binary as a child process, scoped to one test's
//! namespace, logging at debug level to a file the test can read.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use super::control_plane::ControlPlane;
use super::free_port;
use super::launch::{self, Launch};

pub struct Operator {
    /// What `restart` starts: this build's `keysmith`, or another (an earlier release).
    launch: Launch,
    pub metrics_port: u16,
    pub health_port: u16,
    child: Option<Child>,
    log: PathBuf,
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

    /// Debug logs to a file of the control plane's directory, both ports on loopback.
    fn prepared(cp: &ControlPlane, namespace: &str, tag: &str, extra_args: &[&str]) -> Operator {
        let log = cp.dir.join(format!("operator-{namespace}{tag}.log"));
        let (metrics_port, health_port) = (free_port(), free_port());
        let launch = Launch {
            metrics_addr: format!("127.0.0.1:{metrics_port}"),
            health_addr: format!("127.0.0.1:{health_port}"),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            kubeconfig: Some(cp.kubeconfig.clone()),
            log_level: "debug".into(),
            log: Some(log.clone()),
            ..Launch::new(&launch::this_build(), namespace)
        };
        Operator {
            launch,
            metrics_port,
            health_port,
            child: None,
            log,
            starts: 0,
        }
    }

    /// Starts `keysmith run` over every namespace (a test binary of its own:
    /// it reconciles whatever its control plane holds).
    pub fn start_cluster_wide(cp: &ControlPlane) -> Operator {
        Self::start_with(cp, "", "cluster-wide", &[])
    }

    /// Starts `binary` (an earlier release, say) instead of this build.
    pub fn start_binary(cp: &ControlPlane, namespace: &str, binary: &Path) -> Operator {
        let mut operator = Self::prepared(cp, namespace, "", &[]);
        operator.launch.binary = binary.to_path_buf();
        operator.restart();
        operator
    }

    /// Stops it, and starts `binary` in its place (an upgrade or a downgrade).
    pub fn switch_to(&mut self, binary: &Path) {
        self.stop();
        self.launch.binary = binary.to_path_buf();
        self.restart();
    }

    /// This build's `keysmith`.
    pub fn this_build() -> PathBuf {
        launch::this_build()
    }

    /// Starts it again (after `stop` or `kill`), appending to the same log.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(self.launch.spawn().expect("start keysmith run"));
        self.starts += 1;
    }

    /// SIGTERM, and wait for a graceful exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            launch::terminate(&mut child, Duration::from_secs(10));
        }
    }

    /// SIGKILL: the operator dies wherever it is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            launch::kill(&mut child);
        }
    }

    /// SIGSTOP: the operator reads nothing and writes nothing until
    /// `resume`; its connections stay open (what the apiserver sends them
    /// waits in the kernel).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.pid().expect("the operator runs");
        // SAFETY: kill(2) on the child this harness started and still holds.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal} to the operator");
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

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
