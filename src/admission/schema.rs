//! The CRDs: kube-derive's schema plus the rules of `crate::admission`,
//! rendered as `pattern`/length bounds and CEL `x-kubernetes-validations`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::admission::{
    Bound, KindRules, Limit, SECRET_TYPE_IMMUTABLE_CEL, SECRET_TYPE_IMMUTABLE_RULE, Scope, Step,
    gateway_app_rules, signature_key_rules,
};
use crate::api::{ClusterGatewayConnection, GatewayApp, GatewayConnection, SignatureKey};
use crate::rules;

/// Both CRDs, as installed.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        gateway_app_crd(),
        signature_key_crd(),
        connection_crd(GatewayConnection::crd()),
        connection_crd(ClusterGatewayConnection::crd()),
    ]
}

/// A connection kind's CRD with its bounds rendered (no format rules: a
/// connection holds coordinates, not credentials).
pub fn connection_crd(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).unwrap_or(Value::Null);
    if let Some(root) = value.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") {
        for bound in &crate::admission::bounds::connection_bounds() {
            render_bound(root, bound);
        }
        strip_defaults_and_unsigned(root);
    }
    serde_json::from_value(value).unwrap_or(crd)
}

pub fn gateway_app_crd() -> CustomResourceDefinition {
    with_rules(GatewayApp::crd(), &gateway_app_rules())
}

pub fn signature_key_crd() -> CustomResourceDefinition {
    with_rules(SignatureKey::crd(), &signature_key_rules())
}

/// The CRDs as one multi-document YAML text (what `keysmith crds` prints).
pub fn crds_yaml() -> String {
    crds().iter().map(crd_yaml).collect::<Vec<_>>().join("")
}

/// One CRD as a YAML document, starting with `---`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    // Serialising our own types cannot fail; an empty document would fail the CRD tests loudly.
    format!("---\n{}", serde_norway::to_string(crd).unwrap_or_default())
}

fn with_rules<S>(crd: CustomResourceDefinition, rules: &KindRules<S>) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).unwrap_or(Value::Null);
    if let Some(root) = value.pointer_mut("/spec/versions/0/schema/openAPIV3Schema") {
        render_rules(root, rules);
        strip_defaults_and_unsigned(root);
    }
    serde_json::from_value(value).unwrap_or(crd)
}

fn render_rules<S>(root: &mut Value, rules: &KindRules<S>) {
    for rule in &rules.fields {
        let Some(node) = node_at(root, &spec_path(rule.path)) else {
            continue;
        };
        let (min, max, pattern) = rule.format.schema_bounds();
        let object = ensure_object(node);
        if let Some(min) = min {
            object.insert("minLength".into(), json!(min));
        }
        object.insert("maxLength".into(), json!(max));
        if let Some(pattern) = pattern {
            object.insert("pattern".into(), json!(pattern));
        }
    }
    for rule in &rules.maps {
        let Some(node) = node_at(root, &spec_path(rule.path)) else {
            continue;
        };
        let object = ensure_object(node);
        if rule.label_values {
            let values = ensure_object(
                object
                    .entry("additionalProperties")
                    .or_insert_with(|| json!({"type": "string"})),
            );
            values.insert("maxLength".into(), json!(rules::LABEL_VALUE_MAX_LEN));
            values.insert("pattern".into(), json!(rules::LABEL_VALUE_PATTERN));
        }
        push_validation(object, rule.keys_cel(), rule.keys_message(), "");
    }
    for bound in &rules.bounds {
        render_bound(root, bound);
    }
    push_validation(
        ensure_object(root),
        SECRET_TYPE_IMMUTABLE_CEL.into(),
        SECRET_TYPE_IMMUTABLE_RULE.into(),
        ".spec.secret.type",
    );
    for rule in &rules.cross {
        let path = match rule.scope {
            Scope::Root => Vec::new(),
            Scope::Spec(below) => spec_path(below),
        };
        let Some(node) = node_at(root, &path) else {
            continue;
        };
        push_validation(
            ensure_object(node),
            rule.cel.clone(),
            rule.message.clone(),
            &rule.field_path(),
        );
    }
}

/// A bound as schema keywords (and CEL where no keyword says it).
fn render_bound(root: &mut Value, bound: &Bound) {
    let Some(node) = bound_node(root, bound.path) else {
        return;
    };
    let object = ensure_object(node);
    let (keyword, value) = match bound.limit {
        Limit::Items(max) => ("maxItems", json!(max)),
        Limit::Entries(max) => ("maxProperties", json!(max)),
        Limit::Length(max) => ("maxLength", json!(max)),
        Limit::TotalLength(_) => ("", Value::Null),
        Limit::OneOf(allowed) => ("enum", json!(allowed)),
        Limit::LabelValue => {
            object.insert("pattern".into(), json!(rules::LABEL_VALUE_PATTERN));
            ("maxLength", json!(rules::LABEL_VALUE_MAX_LEN))
        }
        Limit::QualifiedName => ("maxLength", json!(rules::QUALIFIED_NAME_MAX_LEN)),
    };
    if !keyword.is_empty() {
        object.insert(keyword.into(), value);
    }
    if let Some(cel) = bound.limit.cel() {
        push_validation(object, cel, bound.limit.rule(), "");
    }
}

/// The schema node a bound's path (below `spec`) leads to.
pub fn bound_node<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let spec = node_at(root, &spec_path(&[]))?;
    path.iter().try_fold(spec, |node, step| match step {
        Step::Field(name) => node.get_mut("properties")?.get_mut(*name),
        Step::Items => node.get_mut("items"),
        Step::Values => node.get_mut("additionalProperties"),
    })
}

/// Adds a CEL rule to a schema node's `x-kubernetes-validations`.
fn push_validation(node: &mut Map<String, Value>, cel: String, message: String, field_path: &str) {
    let mut entry = Map::new();
    entry.insert("rule".into(), json!(cel));
    entry.insert("message".into(), json!(message));
    if !field_path.is_empty() {
        entry.insert("fieldPath".into(), json!(field_path));
    }
    entry.insert("reason".into(), json!("FieldValueInvalid"));
    let list = node
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Value::Array(list) = list {
        list.push(Value::Object(entry));
    }
}

fn spec_path(below: &[&str]) -> Vec<String> {
    std::iter::once("spec")
        .chain(below.iter().copied())
        .map(String::from)
        .collect()
}

/// The schema node for a property path, walking `properties`.
fn node_at<'a>(root: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(root, |node, name| node.get_mut("properties")?.get_mut(name))
}

fn ensure_object(node: &mut Value) -> &mut Map<String, Value> {
    if !node.is_object() {
        *node = json!({});
    }
    match node {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// GitOps tools diff what they applied against the live object; a schema
/// default shows there as drift. So the CRDs carry none (SPEC section 1).
fn strip_defaults_and_unsigned(node: &mut Value) {
    match node {
        Value::Object(map) => {
            map.remove("default");
            // The apiserver knows no unsigned formats; minimum: 0 says the same.
            if map.get("format").and_then(Value::as_str) == Some("uint32") {
                map.insert("format".into(), json!("int32"));
            }
            for (key, child) in map.iter_mut() {
                if key == "properties" {
                    // Keys here are field names, not schema keywords.
                    if let Value::Object(fields) = child {
                        fields.values_mut().for_each(strip_defaults_and_unsigned);
                    }
                } else {
                    strip_defaults_and_unsigned(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults_and_unsigned),
        _ => {}
    }
}
