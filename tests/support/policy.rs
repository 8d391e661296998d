//! A cluster policy that refuses some Secret writes for good: a real
//! ValidatingAdmissionPolicy of the apiserver, so that tests can see how
//! keysmith reports a write the apiserver will never accept.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Secrets carrying this label are refused.
pub const REFUSE_LABEL: &str = "keysmith-test/refuse";

/// A ValidatingAdmissionPolicy that refuses Secrets labelled
/// `keysmith-test/refuse`: a write the apiserver refuses for good.
pub async fn refuse_labelled_secrets(client: &Client, namespace: &str) {
    install_refusal(client).await;
    wait_refusing(client, namespace).await;
}

/// The policy and its binding, applied.
async fn install_refusal(client: &Client) {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    let params = PatchParams::apply("keysmith-test").force();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "keysmith-test-refuse"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]}]},
            "validations": [{
                "expression": "!has(object.metadata.labels) || !('keysmith-test/refuse' in object.metadata.labels)",
                "message": "Secrets labelled keysmith-test/refuse are refused by policy",
                "reason": "Invalid"
            }]
        }
    }))
    .unwrap();
    policies
        .patch("keysmith-test-refuse", &params, &Patch::Apply(&policy))
        .await
        .unwrap();
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "keysmith-test-refuse"},
        "spec": {"policyName": "keysmith-test-refuse", "validationActions": ["Deny"]}
    }))
    .unwrap();
    bindings
        .patch("keysmith-test-refuse", &params, &Patch::Apply(&binding))
        .await
        .unwrap();
}

/// The policy takes effect once the apiserver has loaded it: probes with a
/// dry run until a labelled Secret is refused.
async fn wait_refusing(client: &Client, namespace: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let probe = Secret {
            metadata: ObjectMeta {
                name: Some("policy-probe".into()),
                labels: Some(BTreeMap::from([(REFUSE_LABEL.into(), "1".into())])),
                ..Default::default()
            },
            ..Default::default()
        };
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        if secrets.create(&dry_run, &probe).await.is_err() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the policy never took effect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
