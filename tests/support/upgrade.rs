//! What both upgrade tests share: the earlier build to start from, its CRDs
//! and this build's, and how far an operator has got.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;

use super::apiserver::WRITES;
use super::operator::Operator;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The earlier `keysmith` named by `variable` (`scripts/previous-release`
/// builds it; `scripts/test` sets the variable).
pub fn earlier_build(variable: &str) -> PathBuf {
    let path = std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: it names an earlier keysmith \
             (scripts/previous-release builds it; scripts/test sets the variable)"
        )
    });
    let path = PathBuf::from(path);
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

/// Applies the CRDs `binary crds` prints, as a user upgrading would.
pub async fn install_crds_of(client: &Client, binary: &Path) {
    let output = std::process::Command::new(binary)
        .arg("crds")
        .output()
        .unwrap_or_else(|e| panic!("{} crds: {e}", binary.display()));
    assert!(output.status.success(), "{} crds failed", binary.display());
    let text = String::from_utf8(output.stdout).unwrap();
    let crds: Vec<CustomResourceDefinition> = text
        .split("\n---")
        .filter(|doc| doc.contains("kind: CustomResourceDefinition"))
        .map(|doc| serde_norway::from_str(doc).expect("a CRD"))
        .collect();
    assert!(crds.len() >= 2, "{} printed no CRDs", binary.display());
    install_crds(client, crds).await;
}

/// Applies `crds`, waits until each is Established, and a moment more
/// until the apiserver serves the new schema.
pub async fn install_crds(client: &Client, crds: Vec<CustomResourceDefinition>) {
    super::control_plane::apply_crds(client, crds)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// The operator's `keysmith_reconciles_total`, summed over kinds.
pub fn reconciles(operator: &Operator) -> u64 {
    let Some((200, body)) = operator.http_get(operator.metrics_port, "/metrics") else {
        return 0;
    };
    body.lines()
        .filter(|l| l.starts_with("keysmith_reconciles_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until the operator has reconciled at least `count` times, and then
/// until its count has stood still for 5 s (a resource may be reconciled
/// twice before another's first pass; a connection is not counted at all).
pub async fn wait_reconciles(operator: &Operator, count: u64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut last = (0, tokio::time::Instant::now());
    loop {
        let now = tokio::time::Instant::now();
        let seen = reconciles(operator);
        if seen != last.0 {
            last = (seen, now);
        } else if seen >= count && now - last.1 >= Duration::from_secs(5) {
            return;
        }
        assert!(
            now < deadline,
            "this build did not reconcile every resource and settle ({seen} passes):\n{}",
            super::wait::tail(&operator.logs())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The write requests the apiserver has served on `resources`, by
/// `resource/subresource VERB`: a write that changed nothing moves no
/// resourceVersion, but it is counted here.
pub async fn writes_to(client: &Client, resources: &[&str]) -> BTreeMap<String, f64> {
    let all = super::apiserver::requests(client).await.unwrap();
    let counted = |key: &str| {
        let Some((path, verb)) = key.split_once(' ') else {
            return false;
        };
        let resource = path.split('/').next().unwrap_or_default();
        path.contains('/') && resources.contains(&resource) && WRITES.contains(&verb)
    };
    all.into_iter().filter(|(key, _)| counted(key)).collect()
}

/// What grew from `before` to `after`.
pub fn grown(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect()
}
