//! The rules both kinds share, built from the framework
//! (`crate::admission::framework`) and the format rules (`crate::rules`).

use super::framework::{CrossRule, FieldRule, Format, MapRule, Scope, cel_has, cel_ref};
use crate::api::names::data_keys::{self, PREVIOUS_SUFFIX};
use crate::api::{CommonSpec, SecretType};
use crate::rules::{self, FormatRule};

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

pub(crate) fn duration_at_least_one_minute<S: CommonSpec + 'static>() -> CrossRule<S> {
    CrossRule {
        scope: Scope::Spec(&["rotation"]),
        path: &["interval"],
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

/// A name field (`path` from the object root, `["spec", "appName"]`) that
/// defaults to `metadata.name` with '-' and '.' replaced by '_': then that
/// must satisfy the field's rule.
pub(crate) fn derived_name_rule<S: 'static>(
    path: &'static [&'static str],
    rule: &'static FormatRule,
    get: fn(&S) -> Option<&str>,
) -> CrossRule<S> {
    let derived = "self.metadata.name.replace('-', '_').replace('.', '_')";
    let field = path.join(".");
    CrossRule {
        scope: Scope::Root,
        path,
        cel: format!("has({}) || ({})", cel_ref(path), rule.cel(derived)),
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

/// `generator.length` (at `path` below `scope`) within
/// `[min_generated_len, max_len]` of the secret's rule, where `guard` (CEL)
/// and `applies` (Rust) say the rule is the secret's.
pub(crate) fn generator_length_rule<S: CommonSpec + 'static>(
    scope: Scope,
    path: &'static [&'static str],
    guard: Option<&str>,
    rule: &'static FormatRule,
    applies: impl Fn(&S) -> bool + Send + Sync + 'static,
) -> CrossRule<S> {
    let (plain, symbols) = (
        rules::min_generated_len(rule, false),
        rules::min_generated_len(rule, true),
    );
    let (range_cel, message) = generator_range(path, rule);
    let guard = guard.map(|cel| format!("!({cel}) || ")).unwrap_or_default();
    let max = rule.max_len;
    CrossRule {
        scope,
        path,
        cel: format!("{guard}!({}) || ({range_cel})", cel_has(path)),
        message,
        holds: Box::new(move |spec, _| {
            let Some(generator) = spec.generator().filter(|_| applies(spec)) else {
                return true;
            };
            let min = if generator.symbols.unwrap_or(false) {
                symbols
            } else {
                plain
            };
            generator
                .length
                .is_none_or(|length| (length as usize) >= min && (length as usize) <= max)
        }),
    }
}

/// The CEL and message of [`generator_length_rule`]: the length (at `path`,
/// beside `symbols`) fits the rule and carries 128 bits.
fn generator_range(path: &[&str], rule: &FormatRule) -> (String, String) {
    let plain = rules::min_generated_len(rule, false);
    let symbols = rules::min_generated_len(rule, true);
    let length = cel_ref(path);
    let generator = cel_ref(&path[..path.len().saturating_sub(1)]);
    if plain == rule.max_len && symbols == rule.max_len {
        return (
            format!("{length} == {}", rule.max_len),
            format!(
                "must be {} for a {}: its rule fixes the length",
                rule.max_len, rule.name
            ),
        );
    }
    (
        format!(
            "{length} >= (has({generator}.symbols) && {generator}.symbols ? {symbols} : {plain}) && {length} <= {}",
            rule.max_len
        ),
        format!(
            "must be {plain}–{max} ({symbols}–{max} with symbols): a generated {} needs at least 128 bits of entropy and must fit its rule ({})",
            rule.name,
            rule.describe(),
            max = rule.max_len
        ),
    )
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
        scope: Scope::Spec(&["secret"]),
        path: &["keys"],
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
        scope: Scope::Spec(&["rollout"]),
        path: &["targets"],
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

/// The operators of a label selector expression, as Kubernetes defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl SelectorOperator {
    pub const ALL: [SelectorOperator; 4] = [
        SelectorOperator::In,
        SelectorOperator::NotIn,
        SelectorOperator::Exists,
        SelectorOperator::DoesNotExist,
    ];

    /// Every spelling, in the order of [`Self::ALL`] (the schema's `enum`).
    pub const NAMES: [&'static str; 4] = {
        let mut names = [""; 4];
        let mut i = 0;
        while i < names.len() {
            names[i] = Self::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        }
    }

    pub fn parse(text: &str) -> Option<SelectorOperator> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// An expression with this operator needs values (else it takes none).
    pub const fn takes_values(self) -> bool {
        match self {
            SelectorOperator::In | SelectorOperator::NotIn => true,
            SelectorOperator::Exists | SelectorOperator::DoesNotExist => false,
        }
    }

    /// The operators that take values (or not), as `("'In', 'NotIn'", "In or NotIn")`.
    fn listed(takes_values: bool) -> (String, String) {
        let names: Vec<&str> = Self::ALL
            .into_iter()
            .filter(|op| op.takes_values() == takes_values)
            .map(Self::as_str)
            .collect();
        let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
        (quoted.join(", "), names.join(" or "))
    }
}

/// A selector expression with In or NotIn needs values; one with Exists or
/// DoesNotExist takes none (Kubernetes' rule: a list call with anything else
/// is refused, so no valid resource may hold it). Unknown operators are the
/// operator bound's to report.
pub(crate) fn selector_values_rule<S: CommonSpec + 'static>() -> CrossRule<S> {
    let (with_cel, with) = SelectorOperator::listed(true);
    let (without_cel, without) = SelectorOperator::listed(false);
    CrossRule {
        scope: Scope::Spec(&["rollout", "selector"]),
        path: &["matchExpressions"],
        cel: format!(
            "!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in [{with_cel}] ? (has(e.values) && size(e.values) > 0) : (!(e.operator in [{without_cel}]) || !has(e.values) || size(e.values) == 0))"
        ),
        message: format!(
            "every {with} expression needs values, and every {without} expression takes none"
        ),
        holds: Box::new(|spec: &S, _| {
            let expressions = spec
                .rollout()
                .and_then(|r| r.selector.as_ref())
                .and_then(|selector| selector.match_expressions.as_ref());
            expressions.is_none_or(|expressions| {
                expressions.iter().all(|e| {
                    let count = e.values.as_ref().map_or(0, Vec::len);
                    SelectorOperator::parse(&e.operator)
                        .is_none_or(|op| op.takes_values() == (count > 0))
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
