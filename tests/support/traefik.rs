//! A real Traefik gateway (the official v3 binary that `scripts/provision
//! --helm` fetches) reading its routes and credentials from the test control
//! plane, for end-to-end tests that send HTTP requests through a route
//! protected by Traefik's `basicAuth` middleware.
//!
//! Traefik's `kubernetesCRD` provider watches one test namespace and talks to
//! the apiserver with the admin token over TLS, trusting exactly its serving
//! certificate. Routes have no real backend (EndpointSlices cannot point at
//! loopback): they end at Traefik's built-in `noop@internal` service, which
//! answers every request with [`NOOP_STATUS`].
//!
//! What Traefik does with the objects, measured with 3.7.15:
//! - a Secret change reaches the running gateway in about 0.1–0.2 s, so tests
//!   poll ([`Traefik::wait_until_status`]) instead of sleeping;
//! - a `basicAuth` middleware whose Secret is missing or unreadable (an Opaque
//!   Secret must hold exactly one data key) is dropped, and so is every route
//!   using it: such a path answers 404, not 401;
//! - `kubernetes.io/basic-auth` Secrets (`username`, `password`) are hashed by
//!   Traefik; other Secrets hold htpasswd lines ([`htpasswd_sha`]).
//!
//! The process dies with the test thread that started it (PR_SET_PDEATHSIG)
//! and is killed when the [`Traefik`] is dropped. If it cannot start, the test
//! fails with the reason and the end of Traefik's log; it is never skipped
//! (only `KEYSMITH_SKIP_CONTROL_PLANE=1` skips, before anything starts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::Kubeconfig;
use serde_json::json;

use super::control_plane::{self, ControlPlane};
use super::free_port;

/// What Traefik's `noop@internal` service answers: 418 I'm a teapot.
pub const NOOP_STATUS: u16 = 418;
/// The only entrypoint, on `127.0.0.1:<Traefik::port>`.
pub const ENTRYPOINT: &str = "web";
pub const GROUP: &str = "traefik.io";
pub const VERSION: &str = "v1alpha1";

/// Every kind the `kubernetesCRD` provider watches (pkg/provider/kubernetes/crd/
/// client.go, `WatchAll`): it waits for all their informers to sync before it
/// serves any route, so one missing kind stalls it silently.
pub const KINDS: [&str; 10] = [
    "IngressRoute",
    "IngressRouteTCP",
    "IngressRouteUDP",
    "Middleware",
    "MiddlewareTCP",
    "ServersTransport",
    "ServersTransportTCP",
    "TLSOption",
    "TLSStore",
    "TraefikService",
];

const FIELD_MANAGER: &str = "keysmith-tests";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `traefik.io/v1alpha1` resource of `kind` (plural: lowercase + "s").
pub fn resource(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk(GROUP, VERSION, kind);
    ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()))
}

pub fn api(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource(kind))
}

/// A minimal definition of one of Traefik's CRDs: the names, and an open
/// schema (Traefik checks what it reads itself).
fn crd(kind: &str) -> CustomResourceDefinition {
    let plural = format!("{}s", kind.to_ascii_lowercase());
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
            },
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            }],
        },
    }))
    .expect("a CustomResourceDefinition")
}

static CRDS_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Registers Traefik's CRDs ([`KINDS`]) and waits until they are Established.
/// Idempotent (server-side apply); after one success in this test binary it
/// returns at once.
pub async fn install_crds(client: &Client) {
    if CRDS_INSTALLED.load(Ordering::SeqCst) {
        return;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for kind in KINDS {
        let crd = crd(kind);
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("installing Traefik's CRD {name}: {e}"));
    }
    for kind in KINDS {
        let name = format!("{}s.{GROUP}", kind.to_ascii_lowercase());
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .unwrap_or_else(|_| panic!("Traefik's CRD {name} not Established after 30s"))
            .unwrap_or_else(|e| panic!("waiting for Traefik's CRD {name}: {e}"));
    }
    CRDS_INSTALLED.store(true, Ordering::SeqCst);
}

/// Applies, in `namespace`, a `Middleware` named `name` doing basic auth
/// against the Secret `secret`, and an `IngressRoute` named `name` sending
/// `PathPrefix(path_prefix)` on [`ENTRYPOINT`] through it to `noop@internal`.
/// Applying again with other arguments updates both.
pub async fn apply_basic_auth_route(
    client: &Client,
    namespace: &str,
    name: &str,
    path_prefix: &str,
    secret: &str,
) {
    let middleware = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "Middleware",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"basicAuth": {"secret": secret}},
    });
    // `noop@internal` is a cross-provider reference: allowed as long as the
    // provider's `crossProviderNamespaces` is unset, whatever `allowCrossNamespace` says.
    let route = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "IngressRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "entryPoints": [ENTRYPOINT],
            "routes": [{
                "kind": "Rule",
                "match": format!("PathPrefix(`{path_prefix}`)"),
                "middlewares": [{"name": name}],
                "services": [{"kind": "TraefikService", "name": "noop@internal"}],
            }],
        },
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (kind, object) in [("Middleware", middleware), ("IngressRoute", route)] {
        api(client, namespace, kind)
            .patch(name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {namespace}/{name}: {e}"));
    }
}

/// A running Traefik watching one namespace.
pub struct Traefik {
    /// The entrypoint's port on 127.0.0.1.
    pub port: u16,
    pub namespace: String,
    /// Holds `traefik.yaml`, `traefik.log` (stdout and stderr, debug level)
    /// and `access.log`; inside the control plane's directory, so
    /// `KEYSMITH_KEEP_TEST_DIRS=1` keeps it.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Traefik {
    /// Installs Traefik's CRDs, starts Traefik on this test binary's control
    /// plane for `namespace`, and waits until its entrypoint answers (routes
    /// come a little later: see [`Traefik::wait_until_status`]). Fails the
    /// test, with the reason and Traefik's log, if it cannot.
    ///
    /// Call it from the test's own task: Traefik gets SIGKILL when the thread
    /// that spawned it ends.
    pub async fn start(client: &Client, namespace: &str) -> Traefik {
        install_crds(client).await;
        let cp = control_plane::control_plane();
        let binary = binary().unwrap_or_else(|e| panic!("Traefik is not available: {e}"));
        let dir = cp.dir.join(format!("traefik-{namespace}"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut failures = Vec::new();
        // A port chosen free can be taken before Traefik binds it; only that is retried.
        for _ in 0..3 {
            let mut traefik = Traefik {
                port: free_port(),
                namespace: namespace.to_string(),
                dir: dir.clone(),
                child: None,
            };
            match traefik.spawn(cp, binary).await {
                Ok(()) => return traefik,
                Err(reason) => {
                    let log = traefik.log_tail(30);
                    traefik.kill();
                    let port_taken = log.contains("address already in use");
                    failures.push(format!(
                        "{reason}\n== end of {}\n{log}",
                        traefik.log().display()
                    ));
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!(
            "Traefik could not be started:\n{}",
            failures.join("\n--- next attempt ---\n")
        );
    }

    async fn spawn(&mut self, cp: &ControlPlane, binary: &Path) -> Result<(), String> {
        let config = self.dir.join("traefik.yaml");
        std::fs::write(
            &config,
            static_config(cp, &self.namespace, self.port, &self.dir)?,
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| format!("cannot open {}: {e}", self.log().display()))?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--configFile={}", config.display()))
            // These would take precedence over the endpoint and token of the static configuration.
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // SAFETY: prctl only; Traefik dies with the thread that started it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("Traefik exited at start ({status})"));
            }
            if self.get("/", None).is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Traefik did not serve 127.0.0.1:{} within {}s",
                    self.port,
                    START_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("traefik.log")
    }

    /// The last `lines` lines of Traefik's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// GET `path` on the entrypoint, with basic-auth `credentials` if given:
    /// the HTTP status, or None if there was no HTTP answer.
    pub fn get(&self, path: &str, credentials: Option<(&str, &str)>) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some((user, password)) = credentials {
            let token = base64(format!("{user}:{password}").as_bytes());
            request.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        // "HTTP/1.1 418 I'm a teapot"
        let status_line = String::from_utf8_lossy(&response);
        status_line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Polls [`Traefik::get`] every 100 ms until it answers `expected`; fails
    /// the test after `timeout` with the last answer and Traefik's log.
    /// Returns how long it took.
    pub async fn wait_until_status(
        &self,
        path: &str,
        credentials: Option<(&str, &str)>,
        expected: u16,
        timeout: Duration,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let status = self.get(path, credentials);
            if status == Some(expected) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let user = credentials.map(|(user, _)| user).unwrap_or("(none)");
                panic!(
                    "GET {path} as {user}: expected {expected} within {}s, last answer {status:?}\n\
                     == end of {}\n{}",
                    timeout.as_secs_f32(),
                    self.log().display(),
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Traefik's static configuration: one loopback entrypoint, and the
/// `kubernetesCRD` provider on the test apiserver, restricted to `namespace`,
/// reloading without delay.
fn static_config(
    cp: &ControlPlane,
    namespace: &str,
    port: u16,
    dir: &Path,
) -> Result<String, String> {
    let kubeconfig = Kubeconfig::read_from(&cp.kubeconfig).map_err(|e| e.to_string())?;
    let endpoint = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or("the kubeconfig names no server")?;
    // Inline, not the file: the file ends in a newline, which would end up in the header.
    let token = std::fs::read_to_string(cp.dir.join("token"))
        .map_err(|e| format!("reading the admin token: {e}"))?;
    let ca = cp.dir.join("pki/apiserver.crt");
    // JSON strings are valid YAML scalars, which saves quoting by hand.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    Ok(format!(
        r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: DEBUG
  noColor: true
accessLog:
  filePath: {access_log}
entryPoints:
  {ENTRYPOINT}:
    address: "127.0.0.1:{port}"
providers:
  # The default, 2s, would delay every reload.
  providersThrottleDuration: 50ms
  kubernetesCRD:
    endpoint: {endpoint}
    token: {token}
    certAuthFilePath: {ca}
    namespaces: [{namespace}]
    throttleDuration: 0s
    # No Node informer: nothing cluster-wide is needed.
    disableClusterScopeResources: true
    # Names as documented (<namespace>-<name>@kubernetescrd); also silences a warning.
    safeNaming: false
"#,
        access_log = q(&dir.join("access.log").display().to_string()),
        endpoint = q(&endpoint),
        token = q(token.trim()),
        ca = q(&ca.display().to_string()),
        namespace = q(namespace),
    ))
}

/// The pinned Traefik binary, from `scripts/provision --helm` (which honours
/// KUBEBUILDER_ASSETS, checks the version, and fetches it when missing).
fn binary() -> Result<&'static Path, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/provision");
            let output = Command::new(&script)
                .arg("--helm")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !output.status.success() {
                return Err(format!(
                    "scripts/provision --helm failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let binary = Path::new(&dir).join("traefik");
            if binary.is_file() {
                Ok(binary)
            } else {
                Err(format!(
                    "scripts/provision --helm left no {}",
                    binary.display()
                ))
            }
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// One htpasswd line in Traefik's `{SHA}` format: `user:{SHA}base64(sha1(password))`.
pub fn htpasswd_sha(user: &str, password: &str) -> String {
    format!("{user}:{{SHA}}{}", base64(&sha1(password.as_bytes())))
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SHA-1 (FIPS 180-4), for htpasswd lines only: no new dependency for one hash.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
