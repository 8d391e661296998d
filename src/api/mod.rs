//! The wire types of keysmith's two custom resources (the public contract),
//! and in [`names`] every name keysmith uses on the cluster. The lowest layer:
//! it depends on nothing else in the crate.
//!
//! Doc comments here become the CRD descriptions that `kubectl explain` shows.

mod connection;
mod data_keys;
mod gateway_app;
mod gateway_layout;
pub mod names;
mod shared;
mod signature_key;

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
