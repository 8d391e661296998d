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

/// One bound of SPEC §10 "Bounded input": a spec at the limit (accepted) and
/// one just past it (rejected for `field`).
struct BoundCase {
    /// The bound's path as `Bound::field()` spells it.
    bound: &'static str,
    at: serde_json::Value,
    past: serde_json::Value,
    field: &'static str,
}

fn annotations(entries: usize, value_len: usize) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = (0..entries)
        .map(|i| (format!("a{i:02}"), serde_json::json!("v".repeat(value_len))))
        .collect();
    serde_json::json!({"secret": {"annotations": map}})
}

fn labels(entries: usize) -> serde_json::Map<String, serde_json::Value> {
    (0..entries)
        .map(|i| (format!("k{i:02}"), serde_json::json!("v")))
        .collect()
}

fn targets(count: usize, name: impl Fn(usize) -> String) -> serde_json::Value {
    let targets: Vec<_> = (0..count)
        .map(|i| serde_json::json!({"kind": "Deployment", "name": name(i)}))
        .collect();
    serde_json::json!({"rollout": {"targets": targets}})
}

fn expressions(expressions: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"rollout": {"selector": {"matchExpressions": expressions}}})
}

fn exists(count: usize) -> serde_json::Value {
    expressions(serde_json::json!(vec![
        serde_json::json!({"key": "app", "operator": "Exists"});
        count
    ]))
}

fn with_values(values: Vec<String>) -> serde_json::Value {
    expressions(serde_json::json!([{"key": "app", "operator": "In", "values": values}]))
}

/// A DNS subdomain of exactly `len` characters (a '.' every 64th keeps
/// each label within 63).
fn subdomain(len: usize) -> String {
    let mut name = "a".repeat(len);
    for dot in (63..len.saturating_sub(1)).step_by(64) {
        name.replace_range(dot..=dot, ".");
    }
    name
}

fn bound_cases() -> Vec<BoundCase> {
    use keysmith::admission::bounds::*;
    use serde_json::json;
    let (value, total) = (MAX_ANNOTATION_VALUE_LEN, MAX_ANNOTATIONS_TOTAL_LEN);
    let long_key = format!("{}/{}", subdomain(253), "k".repeat(63));
    vec![
        BoundCase {
            bound: "spec.secret.labels",
            at: json!({"secret": {"labels": labels(MAX_SECRET_METADATA_ENTRIES)}}),
            past: json!({"secret": {"labels": labels(MAX_SECRET_METADATA_ENTRIES + 1)}}),
            field: "spec.secret.labels",
        },
        BoundCase {
            bound: "spec.secret.annotations",
            at: annotations(MAX_SECRET_METADATA_ENTRIES, 1),
            past: annotations(MAX_SECRET_METADATA_ENTRIES + 1, 1),
            field: "spec.secret.annotations",
        },
        BoundCase {
            bound: "spec.secret.annotations.*",
            at: annotations(1, value),
            past: annotations(1, value + 1),
            field: "spec.secret.annotations.a00",
        },
        // Keys of three characters: four values of 4093 fill the total exactly.
        BoundCase {
            bound: "spec.secret.annotations",
            at: annotations(4, total / 4 - 3),
            past: annotations(4, total / 4 - 2),
            field: "spec.secret.annotations",
        },
        BoundCase {
            bound: "spec.rollout.targets",
            at: targets(MAX_ROLLOUT_TARGETS, |i| format!("web-{i}")),
            past: targets(MAX_ROLLOUT_TARGETS + 1, |i| format!("web-{i}")),
            field: "spec.rollout.targets",
        },
        BoundCase {
            bound: "spec.rollout.targets[*].name",
            at: targets(1, |_| subdomain(253)),
            past: targets(1, |_| subdomain(254)),
            field: "spec.rollout.targets[0].name",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchLabels",
            at: json!({"rollout": {"selector": {"matchLabels": labels(MAX_SELECTOR_LABELS)}}}),
            past: json!({"rollout": {"selector": {"matchLabels": labels(MAX_SELECTOR_LABELS + 1)}}}),
            field: "spec.rollout.selector.matchLabels",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchExpressions",
            at: exists(MAX_SELECTOR_EXPRESSIONS),
            past: exists(MAX_SELECTOR_EXPRESSIONS + 1),
            field: "spec.rollout.selector.matchExpressions",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchExpressions[*].key",
            at: expressions(json!([{"key": long_key, "operator": "Exists"}])),
            past: expressions(json!([{"key": format!("a{long_key}"), "operator": "Exists"}])),
            field: "spec.rollout.selector.matchExpressions[0].key",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchExpressions[*].operator",
            at: expressions(json!([
                {"key": "a", "operator": "In", "values": ["x"]},
                {"key": "b", "operator": "NotIn", "values": ["x"]},
                {"key": "c", "operator": "Exists"},
                {"key": "d", "operator": "DoesNotExist"},
            ])),
            past: expressions(json!([{"key": "a", "operator": "Equals", "values": ["x"]}])),
            field: "spec.rollout.selector.matchExpressions[0].operator",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchExpressions[*].values",
            at: with_values((0..MAX_SELECTOR_VALUES).map(|i| format!("v{i}")).collect()),
            past: with_values((0..=MAX_SELECTOR_VALUES).map(|i| format!("v{i}")).collect()),
            field: "spec.rollout.selector.matchExpressions[0].values",
        },
        BoundCase {
            bound: "spec.rollout.selector.matchExpressions[*].values[*]",
            at: with_values(vec!["v".repeat(63)]),
            past: with_values(vec!["v".repeat(64)]),
            field: "spec.rollout.selector.matchExpressions[0].values[0]",
        },
    ]
}

fn object(kind: &str, spec: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "bounded"}, "spec": spec
    })
}

/// The fields `keysmith validate` (the library behind it) reports.
fn offline_fields(document: &serde_json::Value) -> Vec<String> {
    keysmith::admission::manifest::check_text(&document.to_string())
        .unwrap()
        .into_iter()
        .map(|finding| finding.violation.field)
        .collect()
}

/// Every bound, for both kinds: the apiserver and `keysmith validate` accept
/// the spec at the limit and reject the one past it, naming the field.
#[tokio::test]
async fn every_bound_holds_on_the_apiserver_and_offline() {
    if control_plane::skipped() {
        return;
    }
    let cases = bound_cases();
    let mut listed: Vec<String> = keysmith::admission::bounds::common_bounds()
        .iter()
        .map(|b| b.field())
        .collect();
    listed.sort();
    listed.dedup();
    let mut covered: Vec<String> = cases.iter().map(|c| c.bound.to_string()).collect();
    covered.sort();
    covered.dedup();
    assert_eq!(covered, listed, "a case for every bound");

    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-bounds").await;
    let mut failures = Vec::new();
    for case in &cases {
        for kind in ["GatewayApp", "SignatureKey"] {
            let at = object(kind, &case.at);
            if let Verdict::Rejected { message, .. } = dry_run_apply(&client, &ns, &at).await {
                failures.push(format!("{kind} {} at the limit: {message}", case.bound));
            }
            let offline = offline_fields(&at);
            if !offline.is_empty() {
                failures.push(format!(
                    "{kind} {} at the limit, offline: {offline:?}",
                    case.bound
                ));
            }
            let past = object(kind, &case.past);
            match dry_run_apply(&client, &ns, &past).await {
                Verdict::Rejected { code: 422, message } if message.contains(case.field) => {}
                Verdict::Rejected { code, message } => failures.push(format!(
                    "{kind} {} past the limit: {code} without {}: {message}",
                    case.bound, case.field
                )),
                Verdict::Accepted => {
                    failures.push(format!("{kind} {} past the limit: accepted", case.bound))
                }
            }
            let offline = offline_fields(&past);
            if !offline.iter().any(|f| f == case.field) {
                failures.push(format!(
                    "{kind} {} past the limit, offline: {offline:?}",
                    case.bound
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The input of issue 20: 60 annotations of 20 KiB, 1.2 MB a resource,
/// which keysmith once cached whole. A real create is refused at admission,
/// nothing is stored, and `keysmith validate` says the same.
#[tokio::test]
async fn the_memory_exhaustion_input_is_refused_at_admission() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-exhaust").await;
    for (kind, plural) in [
        ("GatewayApp", "gatewayapps"),
        ("SignatureKey", "signaturekeys"),
    ] {
        let document = object(kind, &annotations(60, 20 * 1024));
        assert!(document.to_string().len() > 1_200_000);
        let gvk = GroupVersionKind::gvk("keysmith.dev", "v1alpha1", kind);
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        );
        let object: DynamicObject = serde_json::from_value(document.clone()).unwrap();
        match api.create(&Default::default(), &object).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{kind}: {}", status.message);
                assert!(
                    status.message.contains("spec.secret.annotations"),
                    "{kind}: {}",
                    status.message
                );
            }
            Ok(_) => panic!("{kind}: 1.2 MB of annotations was stored"),
            Err(other) => panic!("{kind}: create failed outside admission: {other}"),
        }
        assert!(api.get_opt("bounded").await.unwrap().is_none());
        let offline = offline_fields(&document);
        assert!(
            offline.iter().any(|f| f == "spec.secret.annotations"),
            "{kind}: {offline:?}"
        );
    }
}

/// The largest spec the bounds allow: every list, map and string at its
/// limit. The apiserver and `keysmith validate` accept it, and it stays
/// small: what one resource can make keysmith cache (docs/behaviour.md).
#[tokio::test]
async fn the_largest_valid_spec_is_accepted_and_small() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "admission-largest").await;
    for kind in ["GatewayApp", "SignatureKey"] {
        let document = object(kind, &largest_spec(kind));
        let size = document["spec"].to_string().len();
        assert!(
            size < 96 * 1024,
            "{kind}: the largest spec has {size} bytes"
        );
        assert_eq!(offline_fields(&document), Vec::<String>::new(), "{kind}");
        if let Verdict::Rejected { message, .. } = dry_run_apply(&client, &ns, &document).await {
            panic!("{kind}: the largest valid spec was refused: {message}");
        }
    }
}

fn largest_spec(kind: &str) -> serde_json::Value {
    use keysmith::admission::bounds::*;
    use serde_json::json;
    let qualified = |i: usize| format!("{}/{}{i:02}", subdomain(253), "k".repeat(61));
    let label_map = |count: usize| -> serde_json::Map<String, serde_json::Value> {
        (0..count)
            .map(|i| (qualified(i), json!("v".repeat(63))))
            .collect()
    };
    let values: Vec<String> = (0..MAX_SELECTOR_VALUES)
        .map(|i| format!("{i:02}{}", "v".repeat(61)))
        .collect();
    let expressions: Vec<_> = (0..MAX_SELECTOR_EXPRESSIONS)
        .map(|i| json!({"key": qualified(i), "operator": "NotIn", "values": values}))
        .collect();
    let names: Vec<_> = (0..MAX_ROLLOUT_TARGETS)
        .map(|i| json!({"kind": "StatefulSet", "name": format!("{i:02}{}", &subdomain(253)[2..])}))
        .collect();
    let mut spec = annotations(4, MAX_ANNOTATIONS_TOTAL_LEN / 4 - 3);
    spec["secret"]["name"] = json!(subdomain(253));
    spec["secret"]["labels"] = json!(label_map(MAX_SECRET_METADATA_ENTRIES));
    spec["resetRequest"] = json!("r".repeat(253));
    spec["rollout"] = json!({
        "targets": names, "minInterval": "1h",
        "selector": {"matchLabels": label_map(MAX_SELECTOR_LABELS), "matchExpressions": expressions},
    });
    if kind == "GatewayApp" {
        spec["remark"] = json!("r".repeat(255));
    }
    spec
}
