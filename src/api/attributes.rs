//! A resource's own attributes as plain values: what `updateTime` follows.
//! Each kind builds its variant from its spec and from its status (in
//! `kinds/`); the engine only compares the two, so it names no kind.

use super::{AppType, Creator, SignAlgorithm, SignType};

/// A resource's own attributes, compared as values: when they change,
/// `updateTime` moves (SPEC §3 and §4) and nothing rotates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attributes {
    /// A GatewayApp: its app name, creator and app type.
    App {
        name: String,
        creator: Creator,
        app_type: AppType,
    },
    /// A SignatureKey: its key name, sign type and (for aes) algorithm.
    Signature {
        name: String,
        sign_type: SignType,
        algorithm: Option<SignAlgorithm>,
    },
}

#[cfg(test)]
impl Attributes {
    /// An app's attributes under `name`, with the default creator and type:
    /// for tests that need attributes, or two that differ, and not a kind.
    pub(crate) fn named(name: &str) -> Attributes {
        Attributes::App {
            name: name.into(),
            creator: Creator::default(),
            app_type: AppType::default(),
        }
    }
}
