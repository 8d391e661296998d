//! What the secure-metrics tests share: a serving certificate, ServiceAccount
//! tokens from the TokenRequest API, RBAC for /metrics, and an HTTPS client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// `tls.crt` and `tls.key` for localhost in `dir` (as a `kubernetes.io/tls`
/// Secret mounts them); returns the directory and the certificate to trust.
pub fn serving_cert(dir: &Path) -> (PathBuf, CertificateDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), certified.signing_key.serialize_pem()).unwrap();
    (dir.to_path_buf(), certified.cert.der().clone())
}

/// Creates ServiceAccount `name` and returns a token for it, minted by the TokenRequest API.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// Binds ServiceAccount `namespace/account` to ClusterRole `role`, which is
/// created (allowing `get` on /metrics) unless it exists; `bind: false` removes both.
pub async fn bind_metrics_reader(
    client: &Client,
    namespace: &str,
    account: &str,
    role: &str,
    bind: bool,
) {
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let binding_name = format!("{namespace}-{account}-metrics");
    if !bind {
        let _ = bindings.delete(&binding_name, &Default::default()).await;
        let _ = roles.delete(role, &Default::default()).await;
        return;
    }
    if roles.get_opt(role).await.unwrap().is_none() {
        let reader: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": role},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
        }))
        .unwrap();
        roles.create(&PostParams::default(), &reader).await.unwrap();
    }
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": binding_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// GET /metrics over HTTPS, trusting only `root` for `localhost`: (status
/// code, body), or None when no TLS connection or no HTTP answer came.
pub async fn https_get(
    port: u16,
    root: &CertificateDer<'static>,
    authorization: Option<&str>,
) -> Option<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).ok()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let mut tls = connector.connect(name, tcp).await.ok()?;
    let header = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: localhost\r\n{header}\r\n");
    tls.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    // A server that closes without close_notify still gave its answer.
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}
