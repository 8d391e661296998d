//! The Helm chart from the outside: running `helm` (and `kubectl`) from the
//! repository root, rendering the chart, and acting as the chart's
//! ServiceAccount. Shared by tests/helm.rs and tests/fence.rs.

use std::path::PathBuf;
use std::process::{Command, Output};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use super::{control_plane, fixtures};

/// helm from KUBEBUILDER_ASSETS (scripts/provision --helm puts it there), else PATH.
pub fn helm() -> PathBuf {
    if let Ok(assets) = std::env::var("KUBEBUILDER_ASSETS") {
        let candidate = PathBuf::from(assets).join("helm");
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from("helm")
}

/// Runs `program` with `args` in the repository root, with `kubeconfig` if given.
pub fn run(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    kubeconfig: Option<&PathBuf>,
) -> Output {
    let mut command = Command::new(&program);
    command.args(args).current_dir(fixtures::repo_root());
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} (scripts/provision --helm installs helm): {e}",
            program.as_ref()
        )
    })
}

/// Its stdout and stderr, as text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `helm template keysmith charts/keysmith --namespace keysmith-system <args>`: the manifests.
pub fn render(args: &[&str]) -> String {
    let mut all = vec![
        "template",
        "keysmith",
        "charts/keysmith",
        "--namespace",
        "keysmith-system",
    ];
    all.extend_from_slice(args);
    let output = run(helm(), &all, None);
    assert!(
        output.status.success(),
        "helm template {args:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A kubeconfig for a ServiceAccount, with a token minted by the TokenRequest API.
pub async fn service_account_kubeconfig(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    path: &PathBuf,
) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("a token")
        .token
        .expect("a token");
    let admin = std::fs::read_to_string(&control_plane::control_plane().kubeconfig).unwrap();
    let field = |name: &str| {
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap()
            .to_string()
    };
    let (server, ca) = (field("server: "), field("certificate-authority-data: "));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: sa\ncurrent-context: c\n"
    );
    std::fs::write(path, kubeconfig).unwrap();
}
