//! The layering of `src/` (docs/architecture.md) holds: each top-level
//! module uses only the modules listed before it, and only `kinds` (and
//! the wiring in `controller::run` and `check_crds`, and `cli`) names a
//! kind's Rust type. The engine is free of Kubernetes types and reads no
//! clock.

use std::path::Path;

/// Lowest first, as `src/lib.rs` lists them.
const LAYERS: [&str; 9] = [
    "api",
    "rules",
    "admission",
    "engine",
    "kinds",
    "providers",
    "controller",
    "runtime",
    "cli",
];

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

/// The top-level module a file belongs to (`src/engine/guards.rs` → engine).
fn layer_of(path: &str) -> Option<&'static str> {
    let rest = path.split("src/").nth(1)?;
    let top = rest.split(['/', '.']).next()?;
    LAYERS.iter().copied().find(|l| *l == top)
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut problems = Vec::new();
    for (path, text) in &files {
        let Some(layer) = layer_of(path) else {
            continue;
        };
        let rank = LAYERS.iter().position(|l| *l == layer).unwrap();
        for (line_no, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue; // a doc may point anywhere; code may not
            }
            for (i, _) in line.match_indices("crate::") {
                let used = line[i + "crate::".len()..]
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or_default();
                if let Some(used_rank) = LAYERS.iter().position(|l| *l == used)
                    && used_rank > rank
                {
                    problems.push(format!(
                        "{path}:{}: {layer} uses {used}, a layer above it",
                        line_no + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn behaviour_is_never_chosen_by_comparing_kind_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    for (path, text) in &files {
        for pattern in [
            "kind(&()) ==",
            "== \"GatewayApp\"",
            "== \"SignatureKey\"",
            "dyn Any",
        ] {
            assert!(
                !text.contains(pattern),
                "{path} compares kind names or downcasts (`{pattern}`); use the CredentialKind trait"
            );
        }
    }
}

/// What `src/engine/` may use of `crate::api`: the plain vocabulary, none
/// of which holds a Kubernetes type — `names` (label and annotation names,
/// as constants), these enums, a resource's `Attributes` (plain values the
/// engine only compares), and the gateway layouts' rows
/// (`api/gateway_layout.rs`: plain data the engine reads a layout's facts
/// from). Anything else of the API (a status type with a `Time`, a spec
/// with a `LabelSelector`) is translated by `kinds` into an engine-owned
/// type, as `RolloutTargetStatus` is into `engine::rollout::TargetStatus`.
const ENGINE_MAY_USE_OF_API: [&str; 12] = [
    "names",
    "Attributes",
    "Reason",
    "RotationReason",
    "WorkloadKind",
    "SecretType",
    "GatewayLayout",
    "LayoutSpec",
    "LayoutShape",
    "CredentialEntries",
    "CredentialList",
    "PreviousPlacement",
];

/// The first path segment of each item a `crate::api::` path names: one
/// (`crate::api::Reason::X`), or each of a group (`crate::api::{A, b::C}`).
fn api_items(after: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = after.strip_prefix('{') else {
        return vec![ident(after)];
    };
    let (mut depth, mut items, mut start) = (0, Vec::new(), 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.retain(|item| !item.is_empty());
    items
}

/// Whether `text` has `path` as a path of its own (not the tail of a longer name).
fn uses_path(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The engine is kube-free (docs/architecture.md, the layers):
/// no `kube::` and no `k8s_openapi::` but `k8s_openapi::jiff` — the `jiff`
/// time crate as k8s-openapi re-exports it, a plain timestamp with no
/// Kubernetes meaning (the same version the API's `Time` wraps, so kinds
/// translate without conversion) — only the API's plain vocabulary
/// ([`ENGINE_MAY_USE_OF_API`]), and no clock: time comes in as an argument.
#[test]
fn the_engine_uses_no_kubernetes_type_and_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(!files.is_empty());
    let mut problems = Vec::new();
    for (path, text) in &files {
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ");
        for (i, _) in code.match_indices("k8s_openapi::") {
            if !code[i..].starts_with("k8s_openapi::jiff") {
                problems.push(format!(
                    "{path}: uses {}",
                    &code[i..(i + 40).min(code.len())]
                ));
            }
        }
        for forbidden in [
            "kube::",
            "Timestamp::now(",
            "SystemTime::now(",
            "Instant::now(",
        ] {
            if uses_path(&code, forbidden) {
                problems.push(format!("{path}: uses {forbidden}"));
            }
        }
        for (i, _) in code.match_indices("crate::api::") {
            for item in api_items(&code[i + "crate::api::".len()..]) {
                if !ENGINE_MAY_USE_OF_API.contains(&item.as_str()) {
                    problems.push(format!(
                        "{path}: uses crate::api::{item}; translate it in kinds/ into an engine type, \
                         or add it to ENGINE_MAY_USE_OF_API if it holds no Kubernetes type"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn api_paths_are_read_item_by_item() {
    assert_eq!(api_items("Reason::GatewayConflict"), ["Reason"]);
    assert_eq!(
        api_items("{Reason, names::{annotations, labels}, WorkloadKind};"),
        ["Reason", "names", "WorkloadKind"]
    );
    assert_eq!(
        api_items("{ GatewayLayout,\n SecretType, };"),
        ["GatewayLayout", "SecretType"]
    );
    assert!(uses_path("use kube::Api;", "kube::"));
    assert!(!uses_path("my_kube::Api", "kube::"));
}
