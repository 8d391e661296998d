//! The conformance servers (SPEC §11.3) as child processes on loopback, and
//! the virtual environment holding the providers' official SDKs
//! (`scripts/provision --sdks`). Both fail the test, never skip it, when they
//! cannot start.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The access key every test server accepts.
pub const ACCESS_KEY_ID: &str = "KEYSMITHTESTACCESSKEY01";
pub const ACCESS_KEY_SECRET: &str = "keysmith-test-access-key-secret-0123456789";
/// Huawei coordinates the server is started with.
pub const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";
pub const INSTANCE_ID: &str = "eddc4d25480b4cd6b512f270a1b8b341";
pub const REGION: &str = "cn-hangzhou";

/// A running `keysmith-conformance`; killed on drop.
pub struct ConformanceServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub provider: &'static str,
}

impl ConformanceServer {
    /// Starts the server for `provider` (`huawei` or `alibaba`).
    pub fn start(provider: &'static str) -> ConformanceServer {
        Self::spawn(provider, None)
    }

    /// The same over HTTPS with a self-signed certificate; its PEM is in
    /// `<dir>/tls.crt` (a connection's caBundle).
    pub fn start_tls(provider: &'static str, dir: &Path) -> ConformanceServer {
        Self::spawn(provider, Some(dir))
    }

    fn spawn(provider: &'static str, tls_dir: Option<&Path>) -> ConformanceServer {
        let binary = env!("CARGO_BIN_EXE_keysmith-conformance");
        let mut command = Command::new(binary);
        if let Some(dir) = tls_dir {
            command.arg("--tls-dir").arg(dir);
        }
        let mut child = command
            .args(["--provider", provider, "--listen", "127.0.0.1:0"])
            .args(["--project-id", PROJECT_ID, "--instance-id", INSTANCE_ID])
            .args(["--region", REGION])
            .env("CONFORMANCE_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("CONFORMANCE_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("the conformance server's first line");
        let endpoint = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the conformance server said {first:?}"))
            .to_string();
        ConformanceServer {
            child,
            endpoint,
            provider,
        }
    }

    /// The server process's id (its CPU time, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A control route (`/_conformance/...`): POST with a JSON body, or GET.
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let uri: hyper::Uri = format!("{}{path}", self.endpoint).parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()))
    }

    /// The calls the server has answered since it started or was zeroed:
    /// `{"calls": {operation: n}, "writes": n, ...}`.
    pub async fn stats(&self) -> serde_json::Value {
        self.control("GET", "/_conformance/stats", None).await
    }

    /// Starts counting afresh.
    pub async fn zero_stats(&self) {
        self.control("DELETE", "/_conformance/stats", None).await;
    }
}

/// How often `operation` was called, in `stats`.
pub fn calls(stats: &serde_json::Value, operation: &str) -> u64 {
    stats["calls"][operation].as_u64().unwrap_or(0)
}

/// The write calls in `stats`.
pub fn writes(stats: &serde_json::Value) -> u64 {
    stats["writes"].as_u64().unwrap_or(0)
}

/// All calls in `stats` that are not writes, summed (for a report).
pub fn reads(stats: &serde_json::Value) -> u64 {
    let all: u64 = stats["calls"]
        .as_object()
        .map(|m| m.values().filter_map(serde_json::Value::as_u64).sum())
        .unwrap_or(0);
    all - writes(stats)
}

impl Drop for ConformanceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of the virtual environment with the official SDKs.
pub fn sdk_python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/provision");
            let output = Command::new(&script)
                .arg("--sdks")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !output.status.success() {
                return Err(format!(
                    "scripts/provision --sdks failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let python = Path::new(&dir).join("sdk-venv/bin/python3");
            if python.is_file() {
                Ok(python)
            } else {
                Err(format!(
                    "scripts/provision --sdks left no {}",
                    python.display()
                ))
            }
        })
        .as_deref()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `tests/sdk/<script>` with the SDKs' Python and `args`; returns its
/// stdout, and fails the test with its stderr if it fails.
pub fn run_sdk_script(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let output = Command::new(sdk_python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
