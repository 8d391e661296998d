//! The admission rules of both kinds, written once and used twice: rendered
//! into the CRD schema (`crate::admission::schema`) and evaluated here by the offline
//! validator (`keysmith validate`).
//!
//! Two sorts of rule:
//! - [`FieldRule`]: one string field against one format (schema `pattern`,
//!   `minLength`, `maxLength`);
//! - [`CrossRule`]: rules that read several fields or `metadata.name` (CEL
//!   `x-kubernetes-validations`), each carrying its CEL text beside the Rust
//!   predicate that means the same. `tests/` prove they agree, on random specs
//!   with a client-side CEL engine and on fixtures with the real apiserver;
//! - [`MapRule`]: the keys (and label values) of maps keysmith copies into
//!   object metadata;
//! - [`Bound`]: the size limits on every list, map and nested string
//!   (`crate::admission::bounds`, SPEC §10 "Bounded input").

use std::fmt;

use crate::api::names::data_keys::{self, PREVIOUS_SUFFIX};
use crate::api::{CommonSpec, SecretType};
use crate::rules::{self, FormatRule};

pub mod bounds;
mod gateway_app;
pub mod manifest;
pub mod schema;
mod signature_key;

pub use bounds::{Bound, Limit, Step};
pub use gateway_app::{check_gateway_app, gateway_app_rules};
pub use signature_key::{check_signature_key, signature_key_rules};

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

/// `(spec, metadata.name) -> rule holds`.
pub type Predicate<S> = Box<dyn Fn(&S, &str) -> bool + Send + Sync>;

/// A rule over several fields: CEL for the apiserver, a predicate for us.
pub struct CrossRule<S> {
    /// The field to blame, from the object root.
    pub field: &'static str,
    pub scope: Scope,
    /// The CEL `fieldPath`, relative to the scope.
    pub field_path: &'static str,
    pub cel: String,
    pub message: String,
    /// Holds for `(spec, metadata.name)` exactly when `cel` does.
    pub holds: Predicate<S>,
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

/// The Secret's labels and annotations and the rollout selector's labels,
/// for both kinds.
pub(crate) fn common_map_rules<S: CommonSpec>() -> Vec<MapRule<S>> {
    vec![
        MapRule {
            path: &["secret", "labels"],
            label_values: true,
            get: |s: &S| s.secret_labels(),
        },
        MapRule {
            path: &["secret", "annotations"],
            label_values: false,
            get: |s: &S| s.secret_annotations(),
        },
        MapRule {
            path: &["rollout", "selector", "matchLabels"],
            label_values: true,
            get: |s: &S| {
                s.rollout()
                    .and_then(|r| r.selector.as_ref())
                    .and_then(|selector| selector.match_labels.as_ref())
            },
        },
    ]
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
                    field: rule.field.to_string(),
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

pub(crate) fn duration_at_least_one_minute<S: CommonSpec + 'static>() -> CrossRule<S> {
    CrossRule {
        field: "spec.rotation.interval",
        scope: Scope::Spec(&["rotation"]),
        field_path: ".interval",
        cel: format!(
            "!has(self.interval) || !self.interval.matches({}) || duration(self.interval) >= duration('1m')",
            rules::cel_quote(rules::DURATION_PATTERN)
        ),
        message: "must be at least 1m".to_string(),
        holds: Box::new(move |spec: &S, _| {
            match spec.interval().and_then(rules::parse_duration) {
                Some(interval) => interval >= rules::MIN_ROTATION_INTERVAL,
                None => true, // the format rule reports it
            }
        }),
    }
}

pub(crate) fn derived_name_rule<S: 'static>(
    field: &'static str,
    spec_field: &'static str,
    rule: &'static FormatRule,
    get: fn(&S) -> Option<&str>,
) -> CrossRule<S> {
    let derived = "self.metadata.name.replace('-', '_').replace('.', '_')";
    CrossRule {
        field,
        scope: Scope::Root,
        field_path: match spec_field {
            "appName" => ".spec.appName",
            _ => ".spec.keyName",
        },
        cel: format!("has(self.spec.{spec_field}) || ({})", rule.cel(derived)),
        message: format!(
            "is not set, so it defaults to metadata.name with '-' and '.' replaced by '_', which breaks the {} rule ({}): set {field} or rename the resource",
            rule.name,
            rule.describe()
        ),
        holds: Box::new(move |spec, name| {
            get(spec).is_some() || rule.is_valid(&rules::derived_name(name))
        }),
    }
}

/// `generator.length` within `[min_generated_len, max_len]` of the secret's rule.
pub(crate) fn generator_length_rule<S: 'static>(
    field: &'static str,
    scope: Scope,
    field_path: &'static str,
    guard_cel: &str,
    rule: &'static FormatRule,
    applies: impl Fn(&S) -> bool + Send + Sync + 'static,
    get: fn(&S) -> (Option<u32>, bool),
) -> CrossRule<S> {
    let plain = rules::min_generated_len(rule, false);
    let symbols = rules::min_generated_len(rule, true);
    let (cel_length, cel_symbols) = match scope {
        Scope::Spec([]) => (
            "self.generator.length",
            "has(self.generator.symbols) && self.generator.symbols",
        ),
        _ => ("self.length", "has(self.symbols) && self.symbols"),
    };
    let has_length = match scope {
        Scope::Spec([]) => "has(self.generator) && has(self.generator.length)",
        _ => "has(self.length)",
    };
    let (range_cel, message) = if plain == rule.max_len && symbols == rule.max_len {
        (
            format!("{cel_length} == {}", rule.max_len),
            format!(
                "must be {} for a {}: its rule fixes the length",
                rule.max_len, rule.name
            ),
        )
    } else {
        (
            format!(
                "{cel_length} >= ({cel_symbols} ? {symbols} : {plain}) && {cel_length} <= {}",
                rule.max_len
            ),
            format!(
                "must be {plain}–{max} ({symbols}–{max} with symbols): a generated {} needs at least 128 bits of entropy and must fit its rule ({})",
                rule.name,
                rule.describe(),
                max = rule.max_len
            ),
        )
    };
    let guard = if guard_cel.is_empty() {
        String::new()
    } else {
        format!("!({guard_cel}) || ")
    };
    let max = rule.max_len;
    CrossRule {
        field,
        scope,
        field_path,
        cel: format!("{guard}!({has_length}) || ({range_cel})"),
        message,
        holds: Box::new(move |spec, _| {
            if !applies(spec) {
                return true;
            }
            match get(spec) {
                (Some(length), with_symbols) => {
                    let min = if with_symbols { symbols } else { plain };
                    (length as usize) >= min && (length as usize) <= max
                }
                (None, _) => true,
            }
        }),
    }
}

/// The field rules both kinds share; `source_*` name their `…SecretFrom` field.
pub(crate) fn common_field_rules<S: CommonSpec>(
    source_name: &'static [&'static str],
    source_key: &'static [&'static str],
) -> Vec<FieldRule<S>> {
    vec![
        FieldRule {
            path: source_name,
            format: Format::SecretName,
            get: |s: &S| s.secret_from().map(|f| f.secret_key_ref.name.as_str()),
        },
        FieldRule {
            path: source_key,
            format: Format::Rule(&rules::SECRET_DATA_KEY),
            get: |s: &S| s.secret_from().map(|f| f.secret_key_ref.key.as_str()),
        },
        FieldRule {
            path: &["rotation", "interval"],
            format: Format::Duration,
            get: |s: &S| s.interval(),
        },
        FieldRule {
            path: &["rotation", "keepPrevious"],
            format: Format::Duration,
            get: |s: &S| s.keep_previous(),
        },
        FieldRule {
            path: &["resetRequest"],
            format: Format::MaxLen(RESET_REQUEST_MAX_LEN),
            get: |s: &S| s.reset_request(),
        },
        FieldRule {
            path: &["secret", "name"],
            format: Format::SecretName,
            get: |s: &S| s.secret_name(),
        },
        FieldRule {
            path: &["rollout", "minInterval"],
            format: Format::Duration,
            get: |s: &S| s.rollout().and_then(|r| r.min_interval.as_deref()),
        },
    ]
}

/// With `secret.type: kubernetes.io/basic-auth` the key goes to `username`
/// and the secret to `password` (Kubernetes' rule for that type): the two
/// data keys may not be renamed to anything else.
pub(crate) fn basic_auth_keys_rule<S: CommonSpec + 'static>(
    key_field: &'static str,
    secret_field: &'static str,
    get: fn(&S) -> (Option<&str>, Option<&str>),
) -> CrossRule<S> {
    let (username, password) = (data_keys::USERNAME, data_keys::PASSWORD);
    let basic_auth = SecretType::BasicAuth.as_str();
    CrossRule {
        field: "spec.secret.keys",
        scope: Scope::Spec(&["secret"]),
        field_path: ".keys",
        cel: format!(
            "!has(self.type) || self.type != '{basic_auth}' || !has(self.keys) || ((!has(self.keys.{key_field}) || self.keys.{key_field} == '{username}') && (!has(self.keys.{secret_field}) || self.keys.{secret_field} == '{password}'))"
        ),
        message: format!(
            "with secret.type {basic_auth} the key is written to {username} and the secret to {password}, as Kubernetes requires: keys.{key_field} and keys.{secret_field} may name only those"
        ),
        holds: Box::new(move |spec: &S, _| {
            let (key, secret) = get(spec);
            spec.secret_type() != SecretType::BasicAuth
                || (key.is_none_or(|k| k == username) && secret.is_none_or(|k| k == password))
        }),
    }
}

/// A Secret's type cannot change (the apiserver refuses the write): a new
/// effective `secret.type` (default Opaque) needs a new effective
/// `secret.name` (default `metadata.name`). A transition rule at the root,
/// so it also sees `spec.secret` appear or go; only the apiserver checks it
/// (offline there is no earlier version to compare).
pub const SECRET_TYPE_IMMUTABLE_CEL: &str = "(has(self.spec.secret) && has(self.spec.secret.type) ? self.spec.secret.type : 'Opaque') == (has(oldSelf.spec.secret) && has(oldSelf.spec.secret.type) ? oldSelf.spec.secret.type : 'Opaque') || (has(self.spec.secret) && has(self.spec.secret.name) ? self.spec.secret.name : self.metadata.name) != (has(oldSelf.spec.secret) && has(oldSelf.spec.secret.name) ? oldSelf.spec.secret.name : oldSelf.metadata.name)";
pub const SECRET_TYPE_IMMUTABLE_RULE: &str = "cannot change while the Secret keeps its name (a Secret's type is immutable): set a new secret.name with it";

/// `rollout.targets[].name` are object names (DNS subdomains).
pub(crate) fn rollout_target_names_rule<S: CommonSpec + 'static>() -> CrossRule<S> {
    CrossRule {
        field: "spec.rollout.targets",
        scope: Scope::Spec(&["rollout"]),
        field_path: ".targets",
        cel: format!(
            "!has(self.targets) || self.targets.all(t, t.name.matches({}))",
            rules::cel_quote(rules::SECRET_NAME_PATTERN)
        ),
        message: "every target name must be an object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit".to_string(),
        holds: Box::new(|spec: &S, _| {
            spec.rollout()
                .and_then(|r| r.targets.as_ref())
                .is_none_or(|targets| targets.iter().all(|t| rules::is_dns_subdomain(&t.name)))
        }),
    }
}

/// A selector expression with In or NotIn needs values; one with Exists or
/// DoesNotExist takes none (Kubernetes' rule: a list call with anything else
/// is refused, so no valid resource may hold it). Unknown operators are the
/// operator bound's to report.
pub(crate) fn selector_values_rule<S: CommonSpec + 'static>() -> CrossRule<S> {
    CrossRule {
        field: "spec.rollout.selector.matchExpressions",
        scope: Scope::Spec(&["rollout", "selector"]),
        field_path: ".matchExpressions",
        cel: "!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn'] ? (has(e.values) && size(e.values) > 0) : (!(e.operator in ['Exists', 'DoesNotExist']) || !has(e.values) || size(e.values) == 0))".to_string(),
        message: "every In or NotIn expression needs values, and every Exists or DoesNotExist expression takes none".to_string(),
        holds: Box::new(|spec: &S, _| {
            let expressions = spec
                .rollout()
                .and_then(|r| r.selector.as_ref())
                .and_then(|selector| selector.match_expressions.as_ref());
            expressions.is_none_or(|expressions| {
                expressions.iter().all(|e| {
                    let count = e.values.as_ref().map_or(0, Vec::len);
                    match e.operator.as_str() {
                        "In" | "NotIn" => count > 0,
                        "Exists" | "DoesNotExist" => count == 0,
                        _ => true,
                    }
                })
            })
        }),
    }
}

/// resetRequest is an opaque token; bounded so CEL cost and etcd stay sane.
pub const RESET_REQUEST_MAX_LEN: usize = 253;

pub(crate) fn distinct(names: &[&String]) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    names.iter().all(|n| seen.insert(n.as_str()))
}

/// CEL that the effective key names (each field or its default), the
/// secret's `_previous` name, and any fixed names are pairwise distinct.
/// `named[1]` is the secret key (it gets the `_previous` twin).
pub(crate) fn distinct_keys_cel(named: &[(&str, &str)]) -> String {
    distinct_keys_cel_with_fixed(named, &[])
}

/// CEL on `spec.secret`: the effective data key names all differ. The key's
/// and the secret's defaults follow `secret.type` (`named[0]` is the key
/// field, `named[1]` the secret field).
pub(crate) fn distinct_keys_cel_with_fixed(named: &[(&str, &str)], fixed: &[&str]) -> String {
    let basic = format!(
        "(has(self.type) && self.type == '{}')",
        SecretType::BasicAuth.as_str()
    );
    let typed_defaults = [data_keys::USERNAME, data_keys::PASSWORD];
    let mut names: Vec<String> = named
        .iter()
        .enumerate()
        .map(|(i, (field, default))| {
            let default = match typed_defaults.get(i) {
                Some(typed) => format!("({basic} ? '{typed}' : '{default}')"),
                None => format!("'{default}'"),
            };
            format!("(has(self.keys) && has(self.keys.{field}) ? self.keys.{field} : {default})")
        })
        .collect();
    names.push(format!("{} + '{PREVIOUS_SUFFIX}'", names[1]));
    names.extend(fixed.iter().map(|f| format!("'{f}'")));
    let mut pairs = Vec::new();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            let both_fixed = i > named.len() && j > named.len();
            let secret_and_its_previous = i == 1 && j == named.len();
            if both_fixed || secret_and_its_previous {
                continue;
            }
            pairs.push(format!("{} != {}", names[i], names[j]));
        }
    }
    pairs.join(" && ")
}

#[cfg(test)]
mod tests;
