//! The HTTP transport every provider client shares: TLS with the system's
//! roots plus a connection's `caBundle` (rustls and ring, as kube's own
//! client), a token bucket for the connection's request rate, and a timeout
//! per request. Transport failures become [`GatewayError`]s that say whether
//! the gateway may have acted.
//!
//! Why these crates: hyper, hyper-util and hyper-rustls are already linked by
//! kube's client, so the gateway clients add no new HTTP or TLS stack.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Mutex;

use super::{GatewayError, Limits, Provider};

/// An answer, read whole (the management APIs answer small JSON bodies).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Told of every request a transport makes: provider, operation, a short
/// code (the HTTP status, or `timeout`, `unreachable`, `no_answer`) and how
/// long it took. Metrics hang here; labels stay bounded.
pub type Observer = Arc<dyn Fn(&'static str, &'static str, &str, Duration) + Send + Sync>;

/// One connection's HTTP client: cheap to clone, shares its rate limit.
#[derive(Clone)]
pub struct Transport {
    provider: Provider,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    bucket: Arc<Mutex<Bucket>>,
    timeout: Duration,
    observer: Option<Observer>,
}

impl Transport {
    /// A transport for `endpoint`. Plain `http://` is allowed only to a
    /// loopback host: a create or reset carries the AppSecret in its body.
    pub fn new(
        provider: Provider,
        endpoint: &str,
        ca_bundle: Option<&[u8]>,
        limits: Limits,
    ) -> Result<Self, GatewayError> {
        let unreachable = |reason: String| GatewayError::Unreachable {
            provider: provider.label(),
            operation: "connect",
            reason,
        };
        check_endpoint(endpoint).map_err(unreachable)?;
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(pem) = ca_bundle {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| unreachable(format!("caBundle is not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(unreachable("caBundle holds no certificate".into()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| unreachable(format!("caBundle: {e}")))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Transport {
            provider,
            client,
            bucket: Arc::new(Mutex::new(Bucket::new(limits))),
            timeout: limits.timeout,
            observer: None,
        })
    }

    /// Reports every request to `observer` from now on.
    pub fn observe(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// Sends one request after waiting for the rate limit; `operation` names
    /// the call in errors and metrics.
    pub async fn send(
        &self,
        operation: &'static str,
        request: http::Request<Bytes>,
    ) -> Result<Response, GatewayError> {
        self.bucket.lock().await.take().await;
        let provider = self.provider.label();
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    GatewayError::Unreachable {
                        provider,
                        operation,
                        reason: error_chain(&e),
                    }
                } else {
                    GatewayError::Uncertain {
                        provider,
                        operation,
                        reason: error_chain(&e),
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| GatewayError::Uncertain {
                    provider,
                    operation,
                    reason: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(GatewayError::Uncertain {
                provider,
                operation,
                reason: format!("no answer within {:?}", self.timeout),
            }),
        };
        if let Some(observer) = &self.observer {
            observer(provider, operation, &code_of(&result), started.elapsed());
        }
        result
    }
}

/// The metric code of a request's end: the HTTP status, or what went wrong.
fn code_of(result: &Result<Response, GatewayError>) -> String {
    match result {
        Ok(response) => response.status.to_string(),
        Err(GatewayError::Unreachable { .. }) => "unreachable".into(),
        Err(GatewayError::Uncertain { reason, .. }) if reason.starts_with("no answer within") => {
            "timeout".into()
        }
        Err(_) => "no_answer".into(),
    }
}

/// `https://host[:port][/path]`, or `http://` to a loopback host.
pub fn check_endpoint(endpoint: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("endpoint {endpoint:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(format!(
            "endpoint {endpoint:?} is plain http to a host that is not loopback; use https"
        )),
        _ => Err(format!("endpoint {endpoint:?} must be an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A token bucket: `burst` requests at once, then `requests_per_second`.
struct Bucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(limits: Limits) -> Self {
        let capacity = f64::from(limits.burst.max(1));
        Bucket {
            tokens: capacity,
            capacity,
            rate: limits.requests_per_second.max(0.01),
            last: Instant::now(),
        }
    }

    /// Waits until a token is there and takes it (callers queue on the lock).
    async fn take(&mut self) {
        self.refill();
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            self.refill();
        }
        self.tokens -= 1.0;
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_endpoint("https://apig.cn-north-4.myhuaweicloud.com").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint("http://[::1]:8080").is_ok());
        assert!(check_endpoint("http://localhost:1").is_ok());
        let refused = check_endpoint("http://apig.example.com").unwrap_err();
        assert!(refused.contains("use https"), "{refused}");
        assert!(check_endpoint("ftp://x").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_the_burst_then_the_rate() {
        let mut bucket = Bucket::new(Limits {
            requests_per_second: 2.0,
            burst: 3,
            timeout: Duration::from_secs(1),
        });
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            bucket.take().await;
        }
        assert!(start.elapsed() < Duration::from_millis(10));
        bucket.take().await;
        bucket.take().await;
        // Two more at 2/s take about a second of (paused) time.
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
}
