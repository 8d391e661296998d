//! HTTPS for `/metrics`: the serving certificate (from a directory holding
//! `tls.crt` and `tls.key`, reloaded when they change, or self-signed in
//! memory at start, as controller-runtime does), and a listener that hands
//! axum TLS streams.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
/// A client that does not finish its handshake in time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The names a self-signed certificate is valid for (scrapers of one are
/// expected to skip verification, as with controller-runtime's).
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How often the certificate directory is read again: a renewed Secret
/// (cert-manager's, say) reaches the mounted files within a minute anyway.
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a PEM {what}: {source}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub type CertifiedPair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The serving configuration: HTTP/1.1 only (as controller-runtime, which
/// turns HTTP/2 off for its metrics), TLS 1.2 and 1.3, ring as the provider
/// (the one kube's client already uses). A certificate directory is watched
/// for renewals (this spawns a task: call it inside the runtime).
pub fn server_config(cert_dir: Option<&Path>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pair = match cert_dir {
        Some(dir) => load_pair(dir)?,
        None => self_signed()?,
    };
    let current = Arc::new(CurrentCert::new(certified_key(pair, &provider)?));
    if let Some(dir) = cert_dir {
        tokio::spawn(watch_cert_dir(
            dir.to_path_buf(),
            current.clone(),
            provider.clone(),
            RELOAD_INTERVAL,
        ));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certified_key(
    (chain, key): CertifiedPair,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    Ok(Arc::new(CertifiedKey::from_der(chain, key, provider)?))
}

/// The certificate every handshake gets; swapped when the files change.
#[derive(Debug)]
pub struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn new(key: Arc<CertifiedKey>) -> Self {
        CurrentCert(RwLock::new(key))
    }

    fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|key| key.clone())
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut current) = self.0.write() {
            *current = key;
        }
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// Reads `tls.crt` and `tls.key` again every `interval`; a changed pair that
/// loads replaces the current one, a broken one (say, caught half-written)
/// is reported and tried again next time while the old one keeps serving.
async fn watch_cert_dir(
    dir: PathBuf,
    current: Arc<CurrentCert>,
    provider: Arc<CryptoProvider>,
    interval: Duration,
) {
    let read = || [CERT_FILE, KEY_FILE].map(|file| std::fs::read(dir.join(file)).ok());
    let mut loaded = read();
    loop {
        tokio::time::sleep(interval).await;
        let now = read();
        if now == loaded {
            continue;
        }
        match load_pair(&dir).and_then(|pair| certified_key(pair, &provider)) {
            Ok(key) => {
                current.set(key);
                loaded = now;
                tracing::info!(dir = %dir.display(), "reloaded the metrics certificate");
            }
            Err(error) => tracing::warn!(%error, "keeping the metrics certificate"),
        }
    }
}

/// `tls.crt` (the chain, leaf first) and `tls.key`, as a `kubernetes.io/tls` Secret holds them.
pub fn load_pair(dir: &Path) -> Result<CertifiedPair, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_path.clone(),
            what: "certificate",
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|source| TlsError::Pem {
        path: key_path,
        what: "private key",
        source,
    })?;
    Ok((chain, key))
}

/// A fresh self-signed certificate (ECDSA P-256), kept in memory only.
pub fn self_signed() -> Result<CertifiedPair, TlsError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    Ok((vec![certified.cert.der().clone()], key.into()))
}

/// Accepts TCP connections and completes TLS handshakes off the accept
/// path, so one slow client holds up no other.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local_addr })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::debug!(%error, "accepting a metrics connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send((stream, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended: no connection will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    #[test]
    fn a_self_signed_certificate_makes_a_configuration() {
        let config = server_config(None).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    /// A client that trusts only `root`.
    fn client_for(root: &CertificateDer<'static>) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(root.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    #[tokio::test]
    async fn axum_serves_over_the_listener_with_a_self_signed_certificate() {
        let (chain, key) = self_signed().unwrap();
        let root = chain[0].clone();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = CurrentCert::new(certified_key((chain, key), &provider).unwrap());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(current));
        let listener = TlsListener::new(tcp, Arc::new(config)).unwrap();
        let port = axum::serve::Listener::local_addr(&listener).unwrap().port();
        let routes = axum::Router::new().route("/", axum::routing::get(|| async { "over tls" }));
        let server = tokio::spawn(async move { axum::serve(listener, routes).await });

        // A stalled plain-TCP client holds up no TLS client.
        let _stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        for name in ["localhost", "127.0.0.1"] {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
            let mut tls = client_for(&root).connect(server_name, tcp).await.unwrap();
            tls.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .await
                .unwrap();
            let mut response = Vec::new();
            let _ = tls.read_to_end(&mut response).await;
            let response = String::from_utf8_lossy(&response);
            assert!(response.starts_with("HTTP/1.0 200"), "{response}");
            assert!(response.ends_with("over tls"), "{response}");
        }

        // Plain HTTP gets no HTTP answer.
        let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        plain
            .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = plain.read_to_end(&mut response).await;
        assert!(!response.starts_with(b"HTTP/"), "{response:?}");

        // A certificate the client does not trust fails the handshake.
        let (other, _) = self_signed().unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        assert!(
            client_for(&other[0])
                .connect(server_name, tcp)
                .await
                .is_err()
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_certificate_directory_is_read() {
        let dir = std::env::temp_dir().join(format!("keysmith-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["metrics".into()]).unwrap();
        std::fs::write(dir.join(CERT_FILE), certified.cert.pem()).unwrap();
        std::fs::write(dir.join(KEY_FILE), certified.signing_key.serialize_pem()).unwrap();
        let (chain, _) = load_pair(&dir).unwrap();
        assert_eq!(chain, vec![certified.cert.der().clone()]);
        assert!(server_config(Some(&dir)).is_ok());

        std::fs::write(dir.join(CERT_FILE), "not a certificate").unwrap();
        let error = load_pair(&dir).unwrap_err().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        std::fs::write(dir.join(CERT_FILE), certified.cert.pem()).unwrap();
        let error = load_pair(&dir).unwrap_err().to_string();
        assert!(
            error.contains("cannot read") && error.contains(KEY_FILE),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn write_pair(dir: &Path, name: &str) -> CertificateDer<'static> {
        let certified = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
        std::fs::write(dir.join(CERT_FILE), certified.cert.pem()).unwrap();
        std::fs::write(dir.join(KEY_FILE), certified.signing_key.serialize_pem()).unwrap();
        certified.cert.der().clone()
    }

    #[tokio::test]
    async fn a_renewed_certificate_replaces_the_served_one() {
        let dir = std::env::temp_dir().join(format!("keysmith-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let first = write_pair(&dir, "first");
        let current = Arc::new(CurrentCert::new(
            certified_key(load_pair(&dir).unwrap(), &provider).unwrap(),
        ));
        let interval = Duration::from_millis(20);
        let watch = tokio::spawn(watch_cert_dir(
            dir.clone(),
            current.clone(),
            provider.clone(),
            interval,
        ));
        let served = || current.get().unwrap().cert[0].clone();
        assert_eq!(served(), first);

        // A key that does not match the certificate is not taken.
        let second = write_pair(&dir, "second");
        let stray = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join(KEY_FILE), stray.serialize_pem()).unwrap();
        tokio::time::sleep(interval * 5).await;
        assert_eq!(served(), first);

        let second_dir = dir.join("second");
        std::fs::create_dir_all(&second_dir).unwrap();
        let renewed = write_pair(&second_dir, "renewed");
        assert_ne!(renewed, second);
        for file in [CERT_FILE, KEY_FILE] {
            std::fs::rename(second_dir.join(file), dir.join(file)).unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while served() != renewed {
            assert!(std::time::Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(interval).await;
        }
        watch.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
