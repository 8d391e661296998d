//! What the black-box tests share: a real control plane per test binary,
//! the operator as a child process (`launch.rs` starts it, for the
//! benchmark too), one test's `Env` with its reads and
//! waits, condition readers, manifest fixtures, the leak scan, the fault
//! helpers, the cloud and Helm helpers, the upgrade tests' earlier builds, and real
//! gateways (Traefik, Envoy Gateway). Each test binary uses part of it (hence `dead_code`).
#![allow(dead_code)]

/// Ends a test at once when this machine cannot run a control plane
/// (`control_plane::skipped`). (Not every binary uses it.)
#[allow(unused_macros)]
macro_rules! needs_control_plane {
    () => {
        if $crate::support::control_plane::skipped() {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use needs_control_plane;

pub mod apiserver;
pub mod cloud;
pub mod conditions;
pub mod conformance;
pub mod control_plane;
pub mod env;
pub mod envoy;
pub mod faults;
pub mod fixtures;
pub mod helm;
pub mod launch;
pub mod leak;
pub mod operator;
pub mod policy;
pub mod secure_metrics;
pub mod traefik;
pub mod upgrade;
pub mod wait;

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
