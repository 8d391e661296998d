//! What the black-box tests share: a real control plane per test binary,
//! the operator as a child process, manifest fixtures, the leak scan, the
//! fault helpers and a real Traefik gateway. Each test binary uses part of it (hence `dead_code`).
#![allow(dead_code)]

pub mod conformance;
pub mod control_plane;
pub mod env;
pub mod envoy;
pub mod faults;
pub mod fixtures;
pub mod leak;
pub mod operator;
pub mod policy;
pub mod secure_metrics;
pub mod traefik;
