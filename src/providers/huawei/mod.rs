//! Huawei Cloud API Gateway (APIG), dedicated instances, management API v2
//! (SPEC §11): the operations keysmith uses on apps and signature keys.
//!
//! - [`sign`]: the `SDK-HMAC-SHA256` request signature, built as the
//!   official SDK builds it (proven byte-identical by tests/conformance_huawei.rs).
//! - [`wire`]: the JSON bodies of exactly the operations used.
//! - [`rules`]: the gateway's own format rules, checked before any call.
//! - [`client`]: [`HuaweiClient`], the [`super::GatewayApi`] implementation.
//!
//! Huawei holds one AppKey/AppSecret pair per app and a reset replaces the
//! secret at once: there is no overlap at this gateway (`docs/cloud-huawei.md`).

pub mod client;
pub mod rules;
pub mod sign;
pub mod time;
pub mod wire;

pub use client::HuaweiClient;
