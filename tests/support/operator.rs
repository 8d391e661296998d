//! The built `keysmith run` binary as a child process, scoped to one test's
//! namespace, logging at debug level to a file the test can read.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::control_plane::ControlPlane;

pub struct Operator {
    child: Option<Child>,
    log: PathBuf,
    namespace: String,
    kubeconfig: PathBuf,
    starts: usize,
}

impl Operator {
    /// Starts `keysmith run --namespace <namespace>`.
    pub fn start(cp: &ControlPlane, namespace: &str) -> Operator {
        let log = cp.dir.join(format!("operator-{namespace}.log"));
        let mut operator = Operator {
            child: None,
            log,
            namespace: namespace.into(),
            kubeconfig: cp.kubeconfig.clone(),
            starts: 0,
        };
        operator.restart();
        operator
    }

    /// Starts it again (after `stop` or `kill`), appending to the same log.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_keysmith"));
        command
            .args([
                "run",
                "--namespace",
                &self.namespace,
                "--log-format",
                "json",
            ])
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
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
