//! Bounded input (SPEC §10): the limits on the lists, maps and strings of the
//! spec that the format rules do not already bound, as one table. Each
//! [`Bound`] is rendered into the CRD schema (`maxItems`, `maxProperties`,
//! `maxLength`, `enum`, `pattern`, or CEL) by `crate::admission::schema`, and
//! checked here, on the spec's JSON, by `keysmith validate`.
//!
//! keysmith caches every resource whole, so these limits are what one tenant
//! can make it hold per resource; they also keep the output Secret's metadata
//! far inside the 256 KiB Kubernetes allows (docs/behaviour.md, "Bounded
//! input", gives the figures).

use serde_json::Value;

use super::Violation;
use crate::rules;
use Step::{Field, Items, Values};

/// Entries of `secret.labels` and `secret.annotations` (also bounds the CEL
/// cost of checking their keys).
pub const MAX_SECRET_METADATA_ENTRIES: usize = 64;
/// Characters of one value of `secret.annotations`.
pub const MAX_ANNOTATION_VALUE_LEN: usize = 4096;
/// Characters of all keys and values of `secret.annotations` together: even
/// at four UTF-8 bytes a character, 64 KiB, a quarter of what Kubernetes
/// allows a Secret's annotations (keysmith adds its own beside them).
pub const MAX_ANNOTATIONS_TOTAL_LEN: usize = 16384;
/// `rollout.targets` entries.
pub const MAX_ROLLOUT_TARGETS: usize = 32;
/// `rollout.selector.matchLabels` entries.
pub const MAX_SELECTOR_LABELS: usize = 16;
/// `rollout.selector.matchExpressions` entries.
pub const MAX_SELECTOR_EXPRESSIONS: usize = 16;
/// `values` of one selector expression.
pub const MAX_SELECTOR_VALUES: usize = 16;
/// The operators of a label selector expression, as Kubernetes defines them.
pub const SELECTOR_OPERATORS: &[&str] = &super::SelectorOperator::NAMES;

/// One step from a schema node (or a JSON value) to its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A named property.
    Field(&'static str),
    /// Every item of a list.
    Items,
    /// Every value of a map.
    Values,
}

/// What the value at a path must satisfy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A list of at most this many items (`maxItems`).
    Items(usize),
    /// A map of at most this many entries (`maxProperties`).
    Entries(usize),
    /// A string of at most this many characters (`maxLength`).
    Length(usize),
    /// A map whose keys and values have at most this many characters together (CEL).
    TotalLength(usize),
    /// A string that is one of these (`enum`).
    OneOf(&'static [&'static str]),
    /// A label value (`maxLength` and `pattern`).
    LabelValue,
    /// A label key: a qualified name (`maxLength` and CEL).
    QualifiedName,
}

/// A limit on every value at a path below `spec`.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub path: &'static [Step],
    pub limit: Limit,
}

const LABELS: &[Step] = &[Field("secret"), Field("labels")];
const ANNOTATIONS: &[Step] = &[Field("secret"), Field("annotations")];
const ANNOTATION_VALUES: &[Step] = &[Field("secret"), Field("annotations"), Values];
const TARGETS: &[Step] = &[Field("rollout"), Field("targets")];
const TARGET_NAMES: &[Step] = &[Field("rollout"), Field("targets"), Items, Field("name")];
const MATCH_LABELS: &[Step] = &[Field("rollout"), Field("selector"), Field("matchLabels")];
const EXPRESSIONS: &[Step] = &[
    Field("rollout"),
    Field("selector"),
    Field("matchExpressions"),
];
const EXPRESSION_KEYS: &[Step] = &[
    Field("rollout"),
    Field("selector"),
    Field("matchExpressions"),
    Items,
    Field("key"),
];
const EXPRESSION_OPERATORS: &[Step] = &[
    Field("rollout"),
    Field("selector"),
    Field("matchExpressions"),
    Items,
    Field("operator"),
];
const EXPRESSION_VALUES: &[Step] = &[
    Field("rollout"),
    Field("selector"),
    Field("matchExpressions"),
    Items,
    Field("values"),
];
const EXPRESSION_VALUE: &[Step] = &[
    Field("rollout"),
    Field("selector"),
    Field("matchExpressions"),
    Items,
    Field("values"),
    Items,
];

/// The bounds of both kinds (every list and map of either spec is shared).
pub fn common_bounds() -> Vec<Bound> {
    let bound = |path, limit| Bound { path, limit };
    vec![
        bound(LABELS, Limit::Entries(MAX_SECRET_METADATA_ENTRIES)),
        bound(ANNOTATIONS, Limit::Entries(MAX_SECRET_METADATA_ENTRIES)),
        bound(ANNOTATION_VALUES, Limit::Length(MAX_ANNOTATION_VALUE_LEN)),
        bound(ANNOTATIONS, Limit::TotalLength(MAX_ANNOTATIONS_TOTAL_LEN)),
        bound(TARGETS, Limit::Items(MAX_ROLLOUT_TARGETS)),
        bound(TARGET_NAMES, Limit::Length(rules::SECRET_NAME_MAX_LEN)),
        bound(MATCH_LABELS, Limit::Entries(MAX_SELECTOR_LABELS)),
        bound(EXPRESSIONS, Limit::Items(MAX_SELECTOR_EXPRESSIONS)),
        bound(EXPRESSION_KEYS, Limit::QualifiedName),
        bound(EXPRESSION_OPERATORS, Limit::OneOf(SELECTOR_OPERATORS)),
        bound(EXPRESSION_VALUES, Limit::Items(MAX_SELECTOR_VALUES)),
        bound(EXPRESSION_VALUE, Limit::LabelValue),
    ]
}

/// `spec.connectionRef.name` (GatewayApp): a Kubernetes object name.
pub fn connection_ref_bounds() -> Vec<Bound> {
    const NAME: &[Step] = &[Field("connectionRef"), Field("name")];
    vec![Bound {
        path: NAME,
        limit: Limit::Length(rules::SECRET_NAME_MAX_LEN),
    }]
}

/// Characters of a connection's endpoint URL.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Characters of a provider id (region, project, instance) or a data key name.
pub const MAX_PROVIDER_ID_LEN: usize = 128;
/// Characters of a connection's `caBundle` (a few PEM certificates).
pub const MAX_CA_BUNDLE_LEN: usize = 65536;
/// Characters of a duration (`10s`, `10m`).
pub const MAX_DURATION_LEN: usize = 32;

/// The bounds of both connection kinds (the cluster kind's selector too;
/// a path the namespaced kind lacks is skipped when rendering).
pub fn connection_bounds() -> Vec<Bound> {
    const ENDPOINT: &[Step] = &[Field("endpoint")];
    const REGION: &[Step] = &[Field("region")];
    const PROJECT: &[Step] = &[Field("projectId")];
    const INSTANCE: &[Step] = &[Field("instanceId")];
    const CREDENTIALS: &[Step] = &[Field("credentialsRef"), Field("name")];
    const ID_KEY: &[Step] = &[Field("credentialsRef"), Field("accessKeyIdKey")];
    const SECRET_KEY: &[Step] = &[Field("credentialsRef"), Field("accessKeySecretKey")];
    const CA: &[Step] = &[Field("caBundle")];
    const TIMEOUT: &[Step] = &[Field("limits"), Field("timeout")];
    const DRIFT: &[Step] = &[Field("driftCheckInterval")];
    const NS_LABELS: &[Step] = &[Field("namespaceSelector"), Field("matchLabels")];
    const NS_LABEL_VALUES: &[Step] = &[Field("namespaceSelector"), Field("matchLabels"), Values];
    const NS_EXPRESSIONS: &[Step] = &[Field("namespaceSelector"), Field("matchExpressions")];
    const NS_KEYS: &[Step] = &[
        Field("namespaceSelector"),
        Field("matchExpressions"),
        Items,
        Field("key"),
    ];
    const NS_OPERATORS: &[Step] = &[
        Field("namespaceSelector"),
        Field("matchExpressions"),
        Items,
        Field("operator"),
    ];
    const NS_VALUES: &[Step] = &[
        Field("namespaceSelector"),
        Field("matchExpressions"),
        Items,
        Field("values"),
    ];
    const NS_VALUE: &[Step] = &[
        Field("namespaceSelector"),
        Field("matchExpressions"),
        Items,
        Field("values"),
        Items,
    ];
    let bound = |path, limit| Bound { path, limit };
    vec![
        bound(ENDPOINT, Limit::Length(MAX_ENDPOINT_LEN)),
        bound(REGION, Limit::Length(MAX_PROVIDER_ID_LEN)),
        bound(PROJECT, Limit::Length(MAX_PROVIDER_ID_LEN)),
        bound(INSTANCE, Limit::Length(MAX_PROVIDER_ID_LEN)),
        bound(CREDENTIALS, Limit::Length(rules::SECRET_NAME_MAX_LEN)),
        bound(ID_KEY, Limit::Length(MAX_PROVIDER_ID_LEN)),
        bound(SECRET_KEY, Limit::Length(MAX_PROVIDER_ID_LEN)),
        bound(CA, Limit::Length(MAX_CA_BUNDLE_LEN)),
        bound(TIMEOUT, Limit::Length(MAX_DURATION_LEN)),
        bound(DRIFT, Limit::Length(MAX_DURATION_LEN)),
        bound(NS_LABELS, Limit::Entries(MAX_SELECTOR_LABELS)),
        bound(NS_LABEL_VALUES, Limit::LabelValue),
        bound(NS_EXPRESSIONS, Limit::Items(MAX_SELECTOR_EXPRESSIONS)),
        bound(NS_KEYS, Limit::QualifiedName),
        bound(NS_OPERATORS, Limit::OneOf(SELECTOR_OPERATORS)),
        bound(NS_VALUES, Limit::Items(MAX_SELECTOR_VALUES)),
        bound(NS_VALUE, Limit::LabelValue),
    ]
}

impl Bound {
    /// The path for people: `spec.rollout.targets[*].name`.
    pub fn field(&self) -> String {
        self.path
            .iter()
            .fold("spec".to_string(), |out, step| match step {
                Field(name) => format!("{out}.{name}"),
                Items => format!("{out}[*]"),
                Values => format!("{out}.*"),
            })
    }

    /// Every value at the path in `spec` (the spec's JSON) that breaks the limit.
    pub fn check(&self, spec: &Value, out: &mut Vec<Violation>) {
        for (field, value) in values_at(spec, "spec".to_string(), self.path) {
            if let Err(rule) = self.limit.check(value) {
                out.push(Violation { field, rule });
            }
        }
    }
}

/// The values at `path` below `node`, each with its field as the apiserver
/// names it (`spec.rollout.targets[0].name`, `spec.secret.annotations.key`).
fn values_at<'a>(node: &'a Value, field: String, path: &[Step]) -> Vec<(String, &'a Value)> {
    let Some((step, rest)) = path.split_first() else {
        return vec![(field, node)];
    };
    match (step, node) {
        (Field(name), Value::Object(map)) => match map.get(*name) {
            Some(child) if !child.is_null() => values_at(child, format!("{field}.{name}"), rest),
            _ => Vec::new(),
        },
        (Items, Value::Array(items)) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| values_at(item, format!("{field}[{i}]"), rest))
            .collect(),
        (Values, Value::Object(map)) => map
            .iter()
            .flat_map(|(key, value)| values_at(value, format!("{field}.{key}"), rest))
            .collect(),
        _ => Vec::new(),
    }
}

impl Limit {
    /// `Err(rule)` when `value` breaks the limit; other types are the
    /// schema's business (typed decoding reports them first).
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let text = value.as_str();
        let holds = match self {
            Limit::Items(max) => value.as_array().is_none_or(|items| items.len() <= *max),
            Limit::Entries(max) => value.as_object().is_none_or(|map| map.len() <= *max),
            Limit::Length(max) => text.is_none_or(|text| text.chars().count() <= *max),
            Limit::TotalLength(max) => value
                .as_object()
                .is_none_or(|map| total_length(map) <= *max),
            Limit::OneOf(allowed) => text.is_none_or(|text| allowed.contains(&text)),
            Limit::LabelValue => text.is_none_or(rules::is_label_value),
            Limit::QualifiedName => text.is_none_or(rules::is_qualified_name),
        };
        if holds { Ok(()) } else { Err(self.rule()) }
    }

    /// The rule in plain words (the CEL message, too).
    pub fn rule(&self) -> String {
        match self {
            Limit::Items(max) => format!("must have at most {max} items"),
            Limit::Entries(max) => format!("must have at most {max} entries"),
            Limit::Length(max) => format!("is too long: must be at most {max} characters"),
            Limit::TotalLength(max) => {
                format!("its keys and values together must have at most {max} characters")
            }
            Limit::OneOf(allowed) => format!("must be one of {}", allowed.join(", ")),
            Limit::LabelValue => rules::LABEL_VALUE_RULE.to_string(),
            Limit::QualifiedName => rules::QUALIFIED_NAME_RULE.to_string(),
        }
    }

    /// The CEL the schema carries for limits that a schema keyword cannot say.
    pub fn cel(&self) -> Option<String> {
        match self {
            Limit::TotalLength(max) => Some(format!(
                "self.size() == 0 || self.map(k, k.size() + self[k].size()).sum() <= {max}"
            )),
            Limit::QualifiedName => Some(qualified_name_cel("self")),
            Limit::Items(_)
            | Limit::Entries(_)
            | Limit::Length(_)
            | Limit::OneOf(_)
            | Limit::LabelValue => None,
        }
    }
}

/// CEL: `value` is a qualified name (a label or annotation key).
pub fn qualified_name_cel(value: &str) -> String {
    format!(
        "{value}.matches({}) && (!{value}.contains('/') || {value}.matches({}))",
        rules::cel_quote(rules::QUALIFIED_NAME_PATTERN),
        rules::cel_quote(rules::QUALIFIED_NAME_PREFIX_PATTERN)
    )
}

fn total_length(map: &serde_json::Map<String, Value>) -> usize {
    map.iter()
        .map(|(key, value)| key.chars().count() + value.as_str().map_or(0, |v| v.chars().count()))
        .sum()
}
