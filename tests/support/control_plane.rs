//! A real control plane (etcd + kube-apiserver) for the integration tests:
//! one per test binary, started on first use by `scripts/control-plane serve`,
//! with keysmith's CRDs installed from the Rust types. Each test works in a
//! namespace of its own.
//!
//! The processes die with the test binary, also on panic or SIGKILL: the
//! supervisor is spawned with PR_SET_PDEATHSIG from a thread that lives as
//! long as the process, and it passes the same signal on to etcd and the
//! apiserver.
//!
//! If the control plane cannot start, every test that asks for it fails with
//! the reason. `KEYSMITH_SKIP_CONTROL_PLANE=1` (never set by CI) skips them on
//! machines that cannot run one.

// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::fixtures::repo_root;

pub const SKIP_VAR: &str = "KEYSMITH_SKIP_CONTROL_PLANE";

pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// The `scripts/control-plane serve` supervisor.
    pub supervisor: u32,
}

impl ControlPlane {
    /// Restarts kube-apiserver in place (same port, same data) and waits until it answers.
    pub async fn restart_apiserver(&self) {
        self.signal_and_wait(libc::SIGUSR1, "apiserver").await;
    }

    /// Restarts etcd in place and waits until the apiserver answers again.
    pub async fn restart_etcd(&self) {
        self.signal_and_wait(libc::SIGUSR2, "etcd").await;
    }

    async fn signal_and_wait(&self, signal: libc::c_int, which: &str) {
        let marker = self.dir.join(format!("restarted-{which}"));
        let _ = std::fs::remove_file(&marker);
        // SAFETY: kill(2) on the supervisor this binary started.
        unsafe {
            libc::kill(self.supervisor as libc::pid_t, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "{which} was not restarted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let client = client_for(&self.kubeconfig).await.expect("client");
        loop {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            if namespaces.list(&Default::default()).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the apiserver did not come back after restarting {which}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// True (after saying so) when the developer opted out of the control plane.
pub fn skipped() -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("{SKIP_VAR}=1: skipping a test that needs the control plane");
        true
    } else {
        false
    }
}

/// The control plane of this test binary; panics (fails the test) with the
/// reason if it cannot be started.
pub fn control_plane() -> &'static ControlPlane {
    match CONTROL_PLANE.get_or_init(start) {
        Ok(cp) => cp,
        Err(reason) => panic!("the test control plane could not be started: {reason}"),
    }
}

/// Starts the control plane, trying up to three times: two control planes
/// starting at once can still race for a port between choosing and binding it.
fn start() -> Result<ControlPlane, String> {
    let mut failures = Vec::new();
    for attempt in 1..=3 {
        match start_once(attempt) {
            Ok(cp) => {
                for failure in &failures {
                    eprintln!("control plane: an earlier attempt failed: {failure}");
                }
                return Ok(cp);
            }
            Err(reason) => {
                // A start that hung is not retried: that would only triple the wait.
                let hung = reason.starts_with("not ready");
                failures.push(reason);
                if hung {
                    break;
                }
            }
        }
    }
    Err(failures.join("\n--- next attempt ---\n"))
}

fn start_once(attempt: u32) -> Result<ControlPlane, String> {
    let dir = test_dir(attempt)?;
    let pid = spawn_supervisor(&dir)?;
    wait_ready(&dir, pid)?;
    let cp = ControlPlane {
        kubeconfig: dir.join("kubeconfig"),
        dir,
        supervisor: pid,
    };
    install_crds(&cp)?;
    Ok(cp)
}

/// A fresh directory for this test binary's control plane (this attempt).
fn test_dir(attempt: u32) -> Result<PathBuf, String> {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests".into());
    let dir = std::env::temp_dir().join(format!(
        "keysmith-{binary}-{}-{attempt}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `scripts/control-plane serve DIR`, logging to `DIR/serve.log`, ended by
/// SIGTERM when this process ends.
fn supervisor_command(dir: &Path) -> Command {
    let mut command = Command::new(repo_root().join("scripts/control-plane"));
    command
        .arg("serve")
        .arg(dir)
        // KEYSMITH_KEEP_TEST_DIRS=1 keeps logs and data for a post-mortem.
        .env(
            "KEYSMITH_CONTROL_PLANE_EPHEMERAL",
            if std::env::var("KEYSMITH_KEEP_TEST_DIRS").as_deref() == Ok("1") {
                "0"
            } else {
                "1"
            },
        )
        .stdin(Stdio::null());
    if let Ok(log) = std::fs::File::create(dir.join("serve.log")) {
        let err = log.try_clone();
        command.stdout(log);
        if let Ok(err) = err {
            command.stderr(err);
        }
    }
    // SAFETY: prctl is async-signal-safe and touches no Rust state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Starts the supervisor; its pid. Its parent must outlive every test, so
/// it is spawned from a thread that never ends (PR_SET_PDEATHSIG fires when
/// the *thread* exits).
fn spawn_supervisor(dir: &Path) -> Result<u32, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut command = supervisor_command(dir);
    std::thread::Builder::new()
        .name("control-plane-parent".into())
        .spawn(move || {
            match command.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id()));
                    let _ = child.wait(); // reaps it, so a dead supervisor is seen as dead
                }
                Err(error) => {
                    let _ = tx.send(Err(error.to_string()));
                }
            }
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run scripts/control-plane: {e}"))
}

/// Waits for `DIR/ready`; fails with the logs if the supervisor exits first.
fn wait_ready(dir: &Path, pid: u32) -> Result<(), String> {
    // Building kube-apiserver on a cold machine takes minutes; allow for it.
    let deadline = Instant::now() + Duration::from_secs(900);
    let ready = dir.join("ready");
    while !ready.exists() {
        if !process_alive(pid) {
            return Err(format!(
                "scripts/control-plane exited (logs in {}):\n{}",
                dir.display(),
                logs(dir)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after 15 minutes:\n{}", logs(dir)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// The end of the supervisor's, etcd's and kube-apiserver's logs.
fn logs(dir: &Path) -> String {
    ["serve.log", "etcd.log", "kube-apiserver.log"]
        .iter()
        .map(|name| format!("== {name}\n{}", tail(&dir.join(name), 15)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Installs the CRDs from the Rust types (crds/ is checked equal to them) and
/// waits until both are Established.
fn install_crds(cp: &ControlPlane) -> Result<(), String> {
    let kubeconfig = cp.kubeconfig.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let client = client_for(&kubeconfig).await?;
            apply_crds(&client, keysmith::admission::schema::crds()).await
        })
    })
    .join()
    .map_err(|_| "CRD installer panicked".to_string())?
}

/// Applies `crds` (server-side, forced, as a user upgrading would) and
/// waits until each is Established.
pub async fn apply_crds(
    client: &Client,
    crds: Vec<CustomResourceDefinition>,
) -> Result<(), String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("keysmith-tests").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| format!("installing CRD {name}: {e}"))?;
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .map_err(|_| format!("CRD {name} not Established after 30s"))?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub async fn client_for(kubeconfig: &Path) -> Result<Client, String> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

/// A client for this test's runtime (clients cannot be shared across the
/// per-test runtimes of `#[tokio::test]`).
pub async fn client() -> Client {
    let cp = control_plane();
    client_for(&cp.kubeconfig)
        .await
        .unwrap_or_else(|e| panic!("client for the test control plane: {e}"))
}

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// Creates a fresh namespace for one test.
pub async fn namespace(client: &Client, hint: &str) -> String {
    let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
    let hint: String = hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let name = format!("{}-{n}", hint.to_ascii_lowercase().trim_matches('-'));
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}
