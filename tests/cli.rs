//! End-to-end tests of the `keysmith` binary's offline commands, driven the
//! way users and CI pipelines run them.

mod support;

use support::fixtures;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn keysmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .output()
        .expect("run keysmith")
}

fn keysmith_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keysmith");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_no_panic(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "keysmith panicked: {stderr}");
}

#[test]
fn crds_command_matches_the_committed_crds() {
    let printed = stdout(&keysmith(&["crds"]));
    let dir = fixtures::repo_root().join("crds");
    let mut committed = String::new();
    for name in [
        "gatewayapps.keysmith.dev.yaml",
        "signaturekeys.keysmith.dev.yaml",
        "gatewayconnections.keysmith.dev.yaml",
        "clustergatewayconnections.keysmith.dev.yaml",
    ] {
        committed.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    assert!(
        printed == committed,
        "crds/ is stale: regenerate it with scripts/render-deploy and commit the result"
    );
}

#[test]
fn crds_carry_no_schema_defaults() {
    fn find_default(node: &serde_json::Value, path: &str, found: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    if key == "default" {
                        found.push(path.to_string());
                    }
                    if key == "properties" {
                        // Field names here, not keywords: a field called "default" is fine.
                        if let Some(fields) = child.as_object() {
                            for (name, schema) in fields {
                                find_default(schema, &format!("{path}.{name}"), found);
                            }
                        }
                    } else {
                        find_default(child, &format!("{path}/{key}"), found);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|i| find_default(i, path, found))
            }
            _ => {}
        }
    }
    let text = stdout(&keysmith(&["crds"]));
    let documents = keysmith::admission::manifest::parse_documents(&text).unwrap();
    assert_eq!(documents.len(), 4);
    let mut found = Vec::new();
    for crd in &documents {
        find_default(crd, "", &mut found);
    }
    assert!(found.is_empty(), "schema defaults at {found:?}");
}

#[test]
fn crds_have_names_columns_and_status_subresource() {
    let text = stdout(&keysmith(&["crds"]));
    let documents = keysmith::admission::manifest::parse_documents(&text).unwrap();
    let names: Vec<&str> = documents
        .iter()
        .map(|d| d["spec"]["names"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "GatewayApp",
            "SignatureKey",
            "GatewayConnection",
            "ClusterGatewayConnection"
        ]
    );
    for crd in &documents {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        let scope = match kind {
            "ClusterGatewayConnection" => "Cluster",
            _ => "Namespaced",
        };
        assert_eq!(crd["spec"]["group"], "keysmith.dev");
        assert_eq!(crd["spec"]["scope"], scope);
        assert_eq!(crd["spec"]["names"]["categories"][0], "keysmith");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let rotating = !kind.ends_with("Connection");
        assert!(
            columns.contains(&"Ready")
                && (columns.contains(&"Next Rotation") || !rotating)
                && (columns.contains(&"Provider") || rotating)
                && columns.contains(&"Age"),
            "{kind}: {columns:?}"
        );
    }
    assert_eq!(
        documents[0]["spec"]["names"]["shortNames"],
        serde_json::json!(["gwapp", "gwapps"])
    );
    assert_eq!(
        documents[1]["spec"]["names"]["shortNames"],
        serde_json::json!(["sigkey", "sigkeys"])
    );
    assert_eq!(
        documents[2]["spec"]["names"]["shortNames"],
        serde_json::json!(["gwconn"])
    );
    assert_eq!(
        documents[3]["spec"]["names"]["shortNames"],
        serde_json::json!(["cgwconn"])
    );
}

#[test]
fn every_field_has_a_description() {
    fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(fields) = node.get("properties").and_then(|p| p.as_object()) {
            for (name, schema) in fields {
                let here = format!("{path}.{name}");
                if schema.get("description").is_none()
                    && !["apiVersion", "kind", "metadata"].contains(&name.as_str())
                {
                    missing.push(here.clone());
                }
                walk(schema, &here, missing);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, path, missing);
        }
    }
    let text = stdout(&keysmith(&["crds"]));
    let mut missing = Vec::new();
    for crd in keysmith::admission::manifest::parse_documents(&text).unwrap() {
        walk(
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            crd["spec"]["names"]["kind"].as_str().unwrap(),
            &mut missing,
        );
    }
    // Condition's fields come from k8s-openapi and are described there.
    assert!(
        missing.is_empty(),
        "fields without a description (kubectl explain shows nothing): {missing:#?}"
    );
}

/// `tests/fixtures/valid/app-gateway-layouts.yaml` says it holds every
/// gateway layout, and the README and docs/gateways.md list them: a new
/// layout is added there too.
#[test]
fn the_layouts_fixture_holds_every_layout() {
    let path = fixtures::repo_root().join("tests/fixtures/valid/app-gateway-layouts.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("layout: "))
        .map(|v| v.trim_matches('"'))
        .collect();
    found.sort();
    let mut all: Vec<&str> = keysmith::api::GatewayLayout::ALL
        .iter()
        .map(|l| l.as_str())
        .collect();
    all.sort();
    assert_eq!(
        found, all,
        "app-gateway-layouts.yaml: one GatewayApp per layout"
    );
    for doc in ["README.md", "docs/gateways.md"] {
        let text = std::fs::read_to_string(fixtures::repo_root().join(doc)).unwrap();
        for layout in &all {
            let named = text.contains(&format!("`{layout}`"));
            assert!(named, "{doc} does not name the layout {layout}");
        }
    }
}

#[test]
fn valid_fixtures_and_examples_pass() {
    for fixture in fixtures::valid().into_iter().chain(fixtures::examples()) {
        let output = keysmith(&["validate", fixture.path.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}: {}",
            fixture.path.display(),
            stdout(&output)
        );
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn each_invalid_fixture_is_reported_for_its_field() {
    let invalid = fixtures::invalid();
    assert!(invalid.len() >= 50);
    for fixture in invalid {
        let path = fixture.path.to_str().unwrap();
        let output = keysmith(&["validate", path]);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(1), "{path}");
        let text = stdout(&output);
        let field = fixture.expect_field.unwrap();
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{path}: "))
                    && line.contains(&format!(": {field}: "))),
            "{path}: expected a line naming {field}, got:\n{text}"
        );
    }
}

#[test]
fn output_lines_are_file_kind_name_field_rule() {
    let output = keysmith_stdin(
        &["validate", "-"],
        "apiVersion: keysmith.dev/v1alpha1\nkind: GatewayApp\nmetadata: {name: shop-app}\nspec: {appKey: short}\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "-: GatewayApp/shop-app: spec.appKey: is too short: must be 8–64 characters, starting with a letter or digit, only letters, digits and _ -\n"
    );
}

#[test]
fn other_kinds_are_ignored_and_lists_are_opened() {
    let text = "\
apiVersion: v1
kind: Secret
metadata: {name: whatever}
stringData: {appKey: '!!!'}
---
apiVersion: v1
kind: List
items:
- apiVersion: keysmith.dev/v1alpha1
  kind: SignatureKey
  metadata: {name: listed}
  spec: {signType: aes}
---
";
    let output = keysmith_stdin(&["validate", "-"], text);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("-: SignatureKey/listed: spec.signAlgorithm: "),
        "{out}"
    );
}

#[test]
fn several_files_and_documents_are_all_checked() {
    let valid = fixtures::valid();
    let invalid = fixtures::invalid();
    let args: Vec<&str> = [
        "validate",
        valid[0].path.to_str().unwrap(),
        invalid[0].path.to_str().unwrap(),
        invalid[1].path.to_str().unwrap(),
    ]
    .to_vec();
    let output = keysmith(&args);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).lines().count(), 2);
}

#[test]
fn broken_yaml_is_a_clear_error_not_a_panic() {
    for text in [
        "spec: [unclosed",
        "a: b\n  c: d\n",
        "\t- tab",
        "key: \"unterminated\n",
    ] {
        let output = keysmith_stdin(&["validate", "-"], text);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(1), "{text:?}");
        assert!(
            stdout(&output).starts_with("-: cannot parse YAML: "),
            "{text:?}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn wrong_types_name_the_field_without_echoing_the_value() {
    let output = keysmith_stdin(
        &["validate", "-"],
        "apiVersion: keysmith.dev/v1alpha1\nkind: GatewayApp\nmetadata: {name: typed}\nspec: {generator: {length: Zq7distinctive}}\n",
    );
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.starts_with("-: GatewayApp/typed: spec.generator.length: must be "),
        "{out}"
    );
    assert!(!out.contains("Zq7distinctive"), "{out}");
}

#[test]
fn a_missing_file_is_reported() {
    let output = keysmith(&["validate", "/nonexistent/keysmith.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).starts_with("/nonexistent/keysmith.yaml: cannot read: "));
}
