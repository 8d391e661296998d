//! The wire types of keysmith's two custom resources (the public contract),
//! and in [`names`] every name keysmith uses on the cluster. The lowest layer:
//! it depends on nothing else in the crate.
//!
//! Doc comments here become the CRD descriptions that `kubectl explain` shows.

mod attributes;
mod connection;
mod data_keys;
mod gateway_app;
mod gateway_layout;
pub mod names;
mod shared;
mod signature_key;

pub use attributes::Attributes;
pub use connection::*;
pub use data_keys::{AppDataKeys, SignDataKeys};
pub use gateway_app::*;
pub use gateway_layout::*;
pub use names::{ConditionType, FIELD_MANAGER, Kind, Reason};
pub use shared::*;
pub use signature_key::*;

/// The API group of both kinds.
pub const GROUP: &str = "keysmith.dev";
/// The (only) served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get keysmith` lists both kinds.
pub const CATEGORY: &str = "keysmith";

/// Every string a JSON schema offers for a value (its `enum` and `const`
/// entries): what the tests compare each enum's `ALL` with.
#[cfg(test)]
pub(crate) fn offered(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("const", serde_json::Value::String(text)) => out.push(text.clone()),
                    ("enum", serde_json::Value::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str()).map(String::from))
                    }
                    _ => offered(child, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| offered(i, out)),
        _ => {}
    }
}
