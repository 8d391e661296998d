//! The admission corpus: `tests/fixtures/{valid,invalid}/*.yaml`. Each invalid
//! file breaks one rule and names the field it must be rejected for in a
//! `# expect: <field>` line.

// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub struct Fixture {
    pub path: PathBuf,
    pub text: String,
    /// For invalid fixtures: the field the rejection must name.
    pub expect_field: Option<String>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(dir: &str) -> Vec<Fixture> {
    yaml_files(&repo_root().join(dir))
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let expect_field = text
                .lines()
                .find_map(|line| line.strip_prefix("# expect: "))
                .map(|field| field.trim().to_string());
            Fixture {
                path,
                text,
                expect_field,
            }
        })
        .collect()
}

pub fn valid() -> Vec<Fixture> {
    load("tests/fixtures/valid")
}

pub fn invalid() -> Vec<Fixture> {
    let fixtures = load("tests/fixtures/invalid");
    for fixture in &fixtures {
        assert!(
            fixture.expect_field.is_some(),
            "{} has no '# expect: <field>' line",
            fixture.path.display()
        );
    }
    fixtures
}

/// `examples/` and `examples/gateways/` (whose files also hold the
/// gateways' own objects: only keysmith's kinds are checked).
pub fn examples() -> Vec<Fixture> {
    let mut all = load("examples");
    all.extend(load("examples/gateways"));
    all
}
