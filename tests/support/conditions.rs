//! Reading a resource's conditions the same way in every test: as
//! `(status, reason, message)`, or as the `Condition` itself.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use keysmith::api::{
    ClusterGatewayConnection, GatewayApp, GatewayConnection, RotationStatus, SignatureKey,
};

/// Whatever carries a list of conditions in its status.
pub trait Conditions {
    /// The conditions (none before the first status write).
    fn conditions(&self) -> &[Condition];
}

impl<K: Conditions> Conditions for &K {
    fn conditions(&self) -> &[Condition] {
        (*self).conditions()
    }
}

impl Conditions for RotationStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Conditions for GatewayApp {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map_or(&[], |s| s.rotation.conditions())
    }
}

impl Conditions for SignatureKey {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map_or(&[], |s| s.rotation.conditions())
    }
}

impl Conditions for GatewayConnection {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

impl Conditions for ClusterGatewayConnection {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

/// The condition of type `type_`.
pub fn find_condition<'a, K: Conditions>(object: &'a K, type_: &str) -> Option<&'a Condition> {
    object.conditions().iter().find(|c| c.type_ == type_)
}

/// `(status, reason, message)` of the condition of type `type_`.
pub fn condition<K: Conditions>(object: &K, type_: &str) -> Option<(String, String, String)> {
    find_condition(object, type_).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// `(status, reason, message)` of `Ready`.
pub fn ready<K: Conditions>(object: &K) -> Option<(String, String, String)> {
    condition(object, "Ready")
}

/// `Ready` is True.
pub fn is_ready<K: Conditions>(object: &K) -> bool {
    ready(object).is_some_and(|r| r.0 == "True")
}

/// `Ready` has reason `want` (whatever its status).
pub fn reason_is<K: Conditions>(want: &'static str) -> impl Fn(&K) -> bool {
    move |object| ready(object).is_some_and(|r| r.1 == want)
}

/// `status.revision` of a GatewayApp.
pub fn revision(app: &GatewayApp) -> Option<i64> {
    app.status.as_ref()?.rotation.revision
}
