//! The layering of `src/` (docs/architecture.md) holds: each top-level
//! module uses only the modules listed before it, so no two modules import
//! each other, and only `kinds` (and the wiring in `controller::run` and
//! `check_crds`, and `cli`) names a kind's Rust type.

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
