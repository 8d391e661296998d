//! What the black-box tests share: a real control plane per test binary,
//! the operator as a child process, one test's `Env` with its reads and
//! waits, condition readers, manifest fixtures, the leak scan, the fault
//! helpers, the cloud and Helm helpers, and real gateways (Traefik, Envoy
//! Gateway). Each test binary uses part of it (hence `dead_code`).
#![allow(dead_code)]

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
pub mod wait;
