//! Alibaba Cloud API Gateway (CloudAPI, API version 2016-07-14): the
//! management calls keysmith uses (SPEC §11), signed as the official SDK
//! signs them. `docs/cloud-alibaba.md` lists the actions, the rules and
//! which facts the SDK test proves.
//!
//! - [`sign`]: the `ACS3-HMAC-SHA256` request signature.
//! - [`wire`]: typed parameters and answers of each action.
//! - [`rules`]: the gateway's own format rules (pure).
//! - [`client`]: [`AlibabaClient`], the [`crate::providers::GatewayApi`].

pub mod client;
pub mod rules;
pub mod sign;
pub mod wire;

pub use client::AlibabaClient;
