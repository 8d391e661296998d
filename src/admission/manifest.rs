//! Reading manifests offline: multi-document YAML in, violations out
//! (the engine of `keysmith validate`).

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::admission::{Violation, check_gateway_app, check_signature_key};
use crate::api::{GROUP, GatewayApp, Kind, SignatureKey, VERSION};

/// A problem in one object of a manifest file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `GatewayApp/orders-client`, or `GatewayApp/<document 3>` without a name.
    pub object: String,
    pub violation: Violation,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.violation)
    }
}

/// The file is not YAML at all; no object in it was checked.
#[derive(Debug, thiserror::Error)]
#[error("cannot parse YAML: {0}")]
pub struct ParseError(String);

/// Parses every YAML document in `text` (empty documents are skipped).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| ParseError(e.to_string()))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// Checks every GatewayApp and SignatureKey in `text` (also inside `kind: List`);
/// other kinds are ignored.
pub fn check_text(text: &str) -> Result<Vec<Finding>, ParseError> {
    let mut findings = Vec::new();
    for (index, document) in parse_documents(text)?.into_iter().enumerate() {
        check_document(&document, index + 1, &mut findings);
    }
    Ok(findings)
}

fn check_document(document: &Value, number: usize, findings: &mut Vec<Finding>) {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.ends_with("List")
        && let Some(items) = document.get("items").and_then(Value::as_array)
    {
        for item in items {
            check_document(item, number, findings);
        }
        return;
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ours = Kind::ALL.into_iter().find(|k| k.as_str() == kind);
    let Some(typed_kind) = ours.filter(|_| group == GROUP) else {
        return;
    };
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("<document {number}>"));
    let object = format!("{kind}/{name}");
    let mut push = |field: &str, rule: String| {
        findings.push(Finding {
            object: object.clone(),
            violation: Violation {
                field: field.to_string(),
                rule,
            },
        })
    };
    if version != VERSION {
        push("apiVersion", format!("must be {GROUP}/{VERSION}"));
        return;
    }
    if document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none()
        && document.pointer("/metadata/generateName").is_none()
    {
        push("metadata.name", "is required".to_string());
    }
    match check_as(typed_kind, document) {
        Ok(violations) => {
            for violation in violations {
                push(&violation.field, violation.rule);
            }
        }
        Err(violation) => push(&violation.field, violation.rule),
    }
}

/// The kind's admission rules on the document.
fn check_as(kind: Kind, document: &Value) -> Result<Vec<Violation>, Violation> {
    match kind {
        Kind::GatewayApp => typed::<GatewayApp>(document).map(|app| check_gateway_app(&app)),
        Kind::SignatureKey => typed::<SignatureKey>(document).map(|key| check_signature_key(&key)),
    }
}

/// Deserialises into the wire type; a type error or an unknown field (which
/// the apiserver's strict field validation rejects) becomes a violation.
fn typed<T>(document: &Value) -> Result<T, Violation>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let object: T = serde_path_to_error::deserialize(document).map_err(|error| Violation {
        field: error.path().to_string(),
        rule: type_rule(error.inner().to_string()),
    })?;
    let round_trip = serde_json::to_value(&object).unwrap_or(Value::Null);
    if let Some(path) = unknown_field(document, &round_trip, "") {
        return Err(Violation {
            field: path,
            rule: "is not a known field".to_string(),
        });
    }
    Ok(object)
}

/// serde's messages can quote the offending value; keep only the expectation.
fn type_rule(message: String) -> String {
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("must be {expected}"),
        None => message,
    }
}

/// The first path present in `input` but lost by the round trip through the
/// wire type (nulls are fine: they mean "unset").
fn unknown_field(input: &Value, round_trip: &Value, path: &str) -> Option<String> {
    match (input, round_trip) {
        (Value::Object(input), Value::Object(kept)) => input.iter().find_map(|(key, value)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match kept.get(key) {
                None if value.is_null() => None,
                None => Some(child),
                // Free-form maps (labels, annotations) round-trip whole.
                Some(kept) => unknown_field(value, kept, &child),
            }
        }),
        (Value::Array(input), Value::Array(kept)) => input
            .iter()
            .zip(kept)
            .enumerate()
            .find_map(|(i, (a, b))| unknown_field(a, b, &format!("{path}[{i}]"))),
        _ => None,
    }
}
