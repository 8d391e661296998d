//! keysmith: API-gateway app credentials and signature keys, issued, validated
//! and rotated into Kubernetes Secrets.

pub mod cli;
pub mod controller;
pub mod crd;
pub mod generate;
pub mod http;
pub mod index;
pub mod kinds;
pub mod leader;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod reset;
pub mod rules;
pub mod run;
pub mod schema;
pub mod secret_keys;
pub mod secret_names;
pub mod validate;
