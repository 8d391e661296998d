//! What the black-box tests share: a real control plane per test binary,
//! the operator as a child process, manifest fixtures, the leak scan and
//! the fault helpers. Each test binary uses part of it (hence `dead_code`).
#![allow(dead_code)]

pub mod control_plane;
pub mod faults;
pub mod fixtures;
pub mod leak;
pub mod operator;
pub mod policy;
