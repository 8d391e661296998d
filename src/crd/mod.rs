//! The wire types of keysmith's two custom resources: the public contract.
//!
//! Doc comments here become the CRD descriptions that `kubectl explain` shows.

mod gateway_app;
mod shared;
mod signature_key;

pub use gateway_app::*;
pub use shared::*;
pub use signature_key::*;

/// The API group of both kinds.
pub const GROUP: &str = "keysmith.dev";
/// The (only) served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get keysmith` lists both kinds.
pub const CATEGORY: &str = "keysmith";

/// Label on every Secret keysmith writes; also its watch selector.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "keysmith";
/// Labels naming the resource a Secret belongs to.
pub const GATEWAY_APP_LABEL: &str = "keysmith.dev/gatewayapp";
pub const SIGNATURE_KEY_LABEL: &str = "keysmith.dev/signaturekey";
/// Annotation on the Secret: the revision of the credential set it holds.
pub const REVISION_ANNOTATION: &str = "keysmith.dev/revision";
/// Annotation on a GatewayApp or SignatureKey: a new value asks for one reset.
pub const RESET_REQUEST_ANNOTATION: &str = "keysmith.dev/reset-request";
/// The server-side-apply field manager for everything keysmith writes.
pub const FIELD_MANAGER: &str = "keysmith";
