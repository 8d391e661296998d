//! Admission on the real apiserver: the CRD schema and CEL rules reject every
//! invalid fixture naming its field, accept every valid fixture and example,
//! and `keysmith validate` agrees with the apiserver on the whole corpus.

mod support;

use support::{control_plane, fixtures};

use fixtures::Fixture;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

/// What the apiserver said to a server-side dry-run apply with strict field
/// validation (what `kubectl apply --server-side --dry-run=server` does).
enum Verdict {
    Accepted,
    Rejected { code: u16, message: String },
}

async fn dry_run_apply(client: &Client, namespace: &str, document: &serde_json::Value) -> Verdict {
    let kind = document["kind"].as_str().unwrap_or_default();
    let gvk = GroupVersionKind::gvk("keysmith.dev", "v1alpha1", kind);
    let plural = match kind {
        "GatewayApp" => "gatewayapps",
        "SignatureKey" => "signaturekeys",
        other => panic!("not a keysmith kind: {other}"),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    let object: DynamicObject = serde_json::from_value(document.clone()).unwrap();
    let name = object.metadata.name.clone().unwrap();
    let params = PatchParams::apply("keysmith-admission-test")
        .dry_run()
        .validation_strict();
    match api.patch(&name, &params, &Patch::Apply(&object)).await {
        Ok(_) => Verdict::Accepted,
        Err(kube::Error::Api(status)) => Verdict::Rejected {
            code: status.code,
            message: status.message,
        },
        Err(other) => panic!("dry-run apply of {kind}/{name} failed outside admission: {other}"),
    }
}

fn keysmith_documents(fixture: &Fixture) -> Vec<serde_json::Value> {
    keysmith::admission::manifest::parse_documents(&fixture.text)
        .unwrap()
        .into_iter()
        .filter(|d| {
            d["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("keysmith.dev/"))
        })
        .collect()
}

fn offline_problems(fixture: &Fixture) -> Vec<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .arg("validate")
        .arg(&fixture.path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn invalid_fixtures_are_rejected_naming_the_field() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-invalid").await;
    let mut failures = Vec::new();
    for fixture in fixtures::invalid() {
        let field = fixture.expect_field.clone().unwrap();
        for document in keysmith_documents(&fixture) {
            match dry_run_apply(&client, &ns, &document).await {
                Verdict::Accepted => failures.push(format!("{}: accepted", fixture.path.display())),
                Verdict::Rejected { code, message } => {
                    // 422: schema/CEL; 400: strict decoding; server-side apply
                    // reports an undeclared field as a 500 naming it.
                    let admission_code = code == 422
                        || code == 400
                        || (code == 500 && message.contains("field not declared in schema"));
                    if !admission_code || !message.contains(&field) {
                        failures.push(format!(
                            "{}: {code} without naming {field}: {message}",
                            fixture.path.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn valid_fixtures_and_examples_are_accepted() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-valid").await;
    let mut failures = Vec::new();
    let corpus: Vec<Fixture> = fixtures::valid()
        .into_iter()
        .chain(fixtures::examples())
        .collect();
    assert!(corpus.len() >= 20);
    for fixture in corpus {
        for document in keysmith_documents(&fixture) {
            if let Verdict::Rejected { message, .. } = dry_run_apply(&client, &ns, &document).await
            {
                failures.push(format!("{}: {message}", fixture.path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One walk over the whole corpus: the offline validator and the apiserver
/// reach the same verdict on every document, and name the same field.
#[tokio::test]
async fn keysmith_validate_agrees_with_the_apiserver() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-agree").await;
    let corpus: Vec<Fixture> = fixtures::valid()
        .into_iter()
        .chain(fixtures::invalid())
        .chain(fixtures::examples())
        .collect();
    let mut disagreements = Vec::new();
    for fixture in &corpus {
        let offline = offline_problems(fixture);
        let mut server = Vec::new();
        for document in keysmith_documents(fixture) {
            if let Verdict::Rejected { message, .. } = dry_run_apply(&client, &ns, &document).await
            {
                server.push(message);
            }
        }
        if offline.is_empty() != server.is_empty() {
            disagreements.push(format!(
                "{}: keysmith validate {:?}, apiserver {:?}",
                fixture.path.display(),
                offline,
                server
            ));
            continue;
        }
        // Every field the validator names, the apiserver names too.
        for line in &offline {
            let field = line.split(": ").nth(2).unwrap_or_default();
            if !server.iter().any(|m| m.contains(field)) {
                disagreements.push(format!(
                    "{}: apiserver did not name {field}: {server:?}",
                    fixture.path.display()
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[tokio::test]
async fn apiserver_messages_read_as_plain_words() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-words").await;
    let document = serde_json::json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": "words"},
        "spec": {"signType": "aes"}
    });
    match dry_run_apply(&client, &ns, &document).await {
        Verdict::Rejected { code, message } => {
            assert_eq!(code, 422);
            assert!(
                message.contains("spec.signAlgorithm")
                    && message.contains("is required when signType is aes"),
                "{message}"
            );
        }
        Verdict::Accepted => panic!("aes without signAlgorithm was accepted"),
    }
}

/// A Secret's type is immutable, so `spec.secret.type` may change only with
/// the effective Secret name (a transition rule: only an update shows it).
#[tokio::test]
async fn the_secret_type_changes_only_with_the_secret_name() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-type").await;
    let gvk = GroupVersionKind::gvk("keysmith.dev", "v1alpha1", "GatewayApp");
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::from_gvk_with_plural(&gvk, "gatewayapps"),
    );
    let apply = |spec: serde_json::Value| {
        let api = api.clone();
        async move {
            let document = serde_json::json!({
                "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                "metadata": {"name": "typed"}, "spec": spec
            });
            let object: DynamicObject = serde_json::from_value(document).unwrap();
            let params = PatchParams::apply("keysmith-admission-test").force();
            match api.patch("typed", &params, &Patch::Apply(&object)).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) => Err(status.message),
                Err(other) => panic!("apply failed outside admission: {other}"),
            }
        }
    };
    let refused = |result: Result<(), String>, what: &str| match result {
        Err(message) => assert!(
            message.contains("spec.secret.type") && message.contains("immutable"),
            "{what}: {message}"
        ),
        Ok(()) => panic!("{what} was accepted"),
    };
    apply(serde_json::json!({})).await.expect("created");
    refused(
        apply(serde_json::json!({"secret": {"type": "kubernetes.io/basic-auth"}})).await,
        "adding spec.secret with a new type",
    );
    refused(
        apply(serde_json::json!({"secret": {"name": "typed", "type": "kubernetes.io/basic-auth"}}))
            .await,
        "a new type under the same (now explicit) name",
    );
    apply(serde_json::json!({"secret": {"type": "Opaque"}}))
        .await
        .expect("the same type, spelled out");
    apply(
        serde_json::json!({"secret": {"name": "typed-basic", "type": "kubernetes.io/basic-auth"}}),
    )
    .await
    .expect("a new type with a new name");
    refused(
        apply(serde_json::json!({"secret": {"name": "typed-basic"}})).await,
        "dropping the type, same name",
    );
}
