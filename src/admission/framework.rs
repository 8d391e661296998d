//! The rule framework: the sorts of rule a kind's admission is made of,
//! and how they are checked offline. `crate::admission::schema` renders the
//! same rules into the CRD.
//!
//! - [`FieldRule`]: one string field against one [`Format`] (schema
//!   `pattern`, `minLength`, `maxLength`);
//! - [`CrossRule`]: rules that read several fields or `metadata.name` (CEL
//!   `x-kubernetes-validations`), each carrying its CEL text beside the Rust
//!   predicate that means the same. Tests prove they agree, on random specs
//!   with a client-side CEL engine and on fixtures with the real apiserver;
//! - [`MapRule`]: the keys (and label values) of maps keysmith copies into
//!   object metadata;
//! - [`Bound`]: the size limits on every list, map and nested string
//!   (`crate::admission::bounds`, SPEC §10 "Bounded input").

use std::fmt;

use super::bounds::{self, Bound};
use crate::rules::{self, FormatRule};

/// One problem with one field. Never contains the field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field, as a path from the object root: `spec.appKey`.
    pub field: String,
    /// The rule it breaks, in plain words.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// What a single string field must satisfy.
#[derive(Clone, Copy, Debug)]
pub enum Format {
    /// A row of the rules table.
    Rule(&'static FormatRule),
    /// A Kubernetes object name (DNS-1123 subdomain).
    SecretName,
    /// A Secret name that leaves room for a suffix keysmith adds to make a
    /// second name (`-previous`).
    SecretNameWithRoom(usize),
    /// A Go duration in [`rules::DURATION_PATTERN`] syntax.
    Duration,
    /// Free text with only a length bound.
    MaxLen(usize),
}

/// Longest duration string the schema accepts (keeps CEL cost bounded).
pub const DURATION_MAX_LEN: usize = 32;

impl Format {
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self {
            Format::Rule(rule) => rule.check(value).map_err(|breach| rule.explain(breach)),
            Format::SecretName => {
                if rules::is_dns_subdomain(value) {
                    Ok(())
                } else {
                    Err(SECRET_NAME_RULE.to_string())
                }
            }
            Format::SecretNameWithRoom(room) => {
                let max = rules::SECRET_NAME_MAX_LEN - room;
                if rules::is_dns_subdomain(value) && value.len() <= max {
                    Ok(())
                } else {
                    Err(format!(
                        "{SECRET_NAME_RULE}, and at most {max} characters here (keysmith appends up to {room})"
                    ))
                }
            }
            Format::Duration => {
                if value.chars().count() <= DURATION_MAX_LEN
                    && rules::parse_duration(value).is_some()
                {
                    Ok(())
                } else {
                    Err(DURATION_RULE.to_string())
                }
            }
            Format::MaxLen(max) => {
                if value.chars().count() <= *max {
                    Ok(())
                } else {
                    Err(format!("is too long: must be at most {max} characters"))
                }
            }
        }
    }

    /// `(minLength, maxLength, pattern)` for the schema.
    pub fn schema_bounds(&self) -> (Option<usize>, usize, Option<String>) {
        match self {
            Format::Rule(rule) => {
                let pattern = rule.pattern();
                (
                    (rule.min_len > 0).then_some(rule.min_len),
                    rule.max_len,
                    (!pattern.is_empty()).then_some(pattern),
                )
            }
            Format::SecretName => (
                None,
                rules::SECRET_NAME_MAX_LEN,
                Some(rules::SECRET_NAME_PATTERN.to_string()),
            ),
            Format::SecretNameWithRoom(room) => (
                None,
                rules::SECRET_NAME_MAX_LEN - room,
                Some(rules::SECRET_NAME_PATTERN.to_string()),
            ),
            Format::Duration => (
                None,
                DURATION_MAX_LEN,
                Some(rules::DURATION_PATTERN.to_string()),
            ),
            Format::MaxLen(max) => (None, *max, None),
        }
    }
}

pub const SECRET_NAME_RULE: &str = "must be a valid Secret name: at most 253 characters, lower-case letters, digits, '-' and '.', starting and ending with a letter or digit";
pub const DURATION_RULE: &str = "must be a Go duration such as 720h, 1h30m or 90s (units ns, us, ms, s, m, h), at most 32 characters";

/// A format rule on one optional string field of a spec.
pub struct FieldRule<S> {
    /// Path below `spec`, e.g. `["rotation", "interval"]`.
    pub path: &'static [&'static str],
    pub format: Format,
    pub get: fn(&S) -> Option<&str>,
}

impl<S> FieldRule<S> {
    pub fn field(&self) -> String {
        format!("spec.{}", self.path.join("."))
    }
}

/// Where a CEL rule is attached in the schema, and so what `self` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole object (`self.metadata.name`, `self.spec`).
    Root,
    /// An object below `spec` (empty: `spec` itself).
    Spec(&'static [&'static str]),
}

impl Scope {
    /// The path from the object root to where the rule is attached.
    fn path(self) -> Vec<&'static str> {
        match self {
            Scope::Root => Vec::new(),
            Scope::Spec(below) => std::iter::once("spec")
                .chain(below.iter().copied())
                .collect(),
        }
    }
}

/// `(spec, metadata.name) -> rule holds`.
pub type Predicate<S> = Box<dyn Fn(&S, &str) -> bool + Send + Sync>;

/// A rule over several fields: CEL for the apiserver, a predicate for us.
pub struct CrossRule<S> {
    pub scope: Scope,
    /// The field to blame, below the scope: `["interval"]` in
    /// `Scope::Spec(&["rotation"])`.
    pub path: &'static [&'static str],
    pub cel: String,
    pub message: String,
    /// Holds for `(spec, metadata.name)` exactly when `cel` does.
    pub holds: Predicate<S>,
}

impl<S> CrossRule<S> {
    /// The field to blame, from the object root: `spec.rotation.interval`.
    pub fn field(&self) -> String {
        let mut path = self.scope.path();
        path.extend(self.path);
        path.join(".")
    }

    /// The CEL `fieldPath`, relative to the scope: `.interval`.
    pub fn field_path(&self) -> String {
        self.path.iter().map(|step| format!(".{step}")).collect()
    }
}

/// CEL for the value at `path` below `self`: `self.generator.length`.
pub fn cel_ref(path: &[&str]) -> String {
    std::iter::once("self")
        .chain(path.iter().copied())
        .collect::<Vec<_>>()
        .join(".")
}

/// CEL that every step of `path` below `self` is set:
/// `has(self.generator) && has(self.generator.length)`.
pub fn cel_has(path: &[&str]) -> String {
    (1..=path.len())
        .map(|n| format!("has({})", cel_ref(&path[..n])))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// All the rules of one kind.
pub struct KindRules<S> {
    pub fields: Vec<FieldRule<S>>,
    pub cross: Vec<CrossRule<S>>,
    pub maps: Vec<MapRule<S>>,
    pub bounds: Vec<Bound>,
}

/// A map keysmith copies into object metadata or a label selector: the same
/// rules the apiserver applies there, so no valid resource fails at write
/// time. Every key a qualified name (CEL on the map); with `label_values`,
/// every value a label value (the schema's `additionalProperties`). Its
/// number of entries is a [`Bound`], which also keeps the key CEL's cost low.
pub struct MapRule<S> {
    /// Path below `spec`, e.g. `["secret", "labels"]`.
    pub path: &'static [&'static str],
    pub label_values: bool,
    pub get: fn(&S) -> Option<&crate::api::StringMap>,
}

impl<S> MapRule<S> {
    pub fn field(&self) -> String {
        format!("spec.{}", self.path.join("."))
    }

    /// The CEL on the map: every key a qualified name.
    pub fn keys_cel(&self) -> String {
        format!("self.all(k, {})", bounds::qualified_name_cel("k"))
    }

    pub fn keys_message(&self) -> String {
        format!("every key {}", rules::QUALIFIED_NAME_RULE)
    }

    fn check(&self, spec: &S, out: &mut Vec<Violation>) {
        let Some(map) = (self.get)(spec) else {
            return;
        };
        if !map.keys().all(|k| rules::is_qualified_name(k)) {
            out.push(Violation {
                field: self.field(),
                rule: self.keys_message(),
            });
        }
        for (key, value) in map {
            if self.label_values && !rules::is_label_value(value) {
                out.push(Violation {
                    field: format!("{}.{key}", self.field()),
                    rule: rules::LABEL_VALUE_RULE.to_string(),
                });
            }
        }
    }
}

impl<S: serde::Serialize> KindRules<S> {
    pub fn check(&self, spec: &S, name: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        for rule in &self.fields {
            if let Some(value) = (rule.get)(spec)
                && let Err(text) = rule.format.check(value)
            {
                out.push(Violation {
                    field: rule.field(),
                    rule: text,
                });
            }
        }
        for rule in &self.cross {
            if !(rule.holds)(spec, name) {
                out.push(Violation {
                    field: rule.field(),
                    rule: rule.message.clone(),
                });
            }
        }
        for rule in &self.maps {
            rule.check(spec, &mut out);
        }
        // The bounds read the JSON, as the apiserver does; serialising our own
        // types cannot fail (a Null would only skip the bounds, loudly in tests).
        let json = serde_json::to_value(spec).unwrap_or_default();
        for bound in &self.bounds {
            bound.check(&json, &mut out);
        }
        out
    }
}
