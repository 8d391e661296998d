//! The admission rules of both kinds, written once and used twice: rendered
//! into the CRD schema ([`schema`]) and evaluated here by the offline
//! validator (`keysmith validate`, [`manifest`]).
//!
//! - [`framework`]: the sorts of rule (field, cross-field with CEL beside
//!   its Rust predicate, map, bound) and how a kind's rules are checked;
//! - [`shared`]: the rules both kinds share, and [`bounds`] their size limits;
//! - `gateway_app.rs`, `signature_key.rs`: each kind's rules, the sign
//!   types' derived from their rows in `crate::rules`.

pub mod bounds;
pub mod framework;
mod gateway_app;
pub mod manifest;
pub mod schema;
mod shared;
mod signature_key;

pub use bounds::{Bound, Limit, Step};
pub use framework::{
    CrossRule, DURATION_MAX_LEN, DURATION_RULE, FieldRule, Format, KindRules, MapRule, Predicate,
    SECRET_NAME_RULE, Scope, Violation,
};
pub use gateway_app::{check_gateway_app, gateway_app_rules};
pub use shared::{
    RESET_REQUEST_MAX_LEN, SECRET_TYPE_IMMUTABLE_CEL, SECRET_TYPE_IMMUTABLE_RULE, SelectorOperator,
};
pub use signature_key::{check_signature_key, signature_key_rules};

#[cfg(test)]
mod tests;
