//! The gateway layouts of `spec.gateway` (SPEC §9.2), each with one row of
//! facts, its [`LayoutSpec`]. Everything keysmith decides by the layout reads
//! [`GatewayLayout::spec`], a single exhaustive `match`: a new layout does
//! not compile until its row says what it holds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::names::gateway as names;

/// Ready-made gateway Secret layouts (SPEC §9.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GatewayLayout {
    /// Kong key-auth credential: label `konghq.com/credential: key-auth`,
    /// `key` = the AppSecret.
    #[default]
    KongKeyAuth,
    /// Kong basic-auth credential: `username` = AppKey, `password` = AppSecret.
    KongBasicAuth,
    /// Kong hmac-auth credential: `username` = AppKey, `secret` = AppSecret.
    KongHmacAuth,
    /// Apache APISIX consumer key-auth: `key` = the AppSecret.
    ApisixKeyAuth,
    /// Apache APISIX consumer hmac-auth: `key_id` = AppKey, `secret_key` = AppSecret.
    ApisixHmacAuth,
    /// Envoy Gateway API keys (SecurityPolicy apiKeyAuth): one entry per
    /// client, `<AppKey>` = AppSecret.
    EnvoyGatewayApiKey,
    /// Traefik BasicAuth middleware: a single `users` entry of htpasswd lines,
    /// `<AppKey>:{SHA}<hash of the AppSecret>`.
    TraefikBasicAuth,
    /// Envoy Gateway basic auth (SecurityPolicy basicAuth.users): a single
    /// `.htpasswd` entry of htpasswd lines, `<AppKey>:{SHA}<hash of the AppSecret>`.
    EnvoyGatewayBasicAuth,
}

impl GatewayLayout {
    pub const ALL: [GatewayLayout; 8] = [
        GatewayLayout::KongKeyAuth,
        GatewayLayout::KongBasicAuth,
        GatewayLayout::KongHmacAuth,
        GatewayLayout::ApisixKeyAuth,
        GatewayLayout::ApisixHmacAuth,
        GatewayLayout::EnvoyGatewayApiKey,
        GatewayLayout::TraefikBasicAuth,
        GatewayLayout::EnvoyGatewayBasicAuth,
    ];

    /// The layout's row: the one place a layout's facts are written.
    pub const fn spec(self) -> LayoutSpec {
        use CredentialList::{ClientMap, Htpasswd};
        use LayoutShape::{AllInOne, PerSecret};
        use PreviousPlacement::{Dropped, SameKey, SuffixedKey};
        match self {
            GatewayLayout::KongKeyAuth => LayoutSpec {
                name: "KongKeyAuth",
                shape: PerSecret(CredentialEntries::secret_only(names::KEY)),
                previous_without_own_key: SameKey,
                label: Self::kong(names::KONG_KEY_AUTH),
            },
            GatewayLayout::KongBasicAuth => LayoutSpec {
                name: "KongBasicAuth",
                shape: PerSecret(CredentialEntries::pair(names::USERNAME, names::PASSWORD)),
                previous_without_own_key: Dropped,
                label: Self::kong(names::KONG_BASIC_AUTH),
            },
            GatewayLayout::KongHmacAuth => LayoutSpec {
                name: "KongHmacAuth",
                shape: PerSecret(CredentialEntries::pair(names::USERNAME, names::SECRET)),
                previous_without_own_key: Dropped,
                label: Self::kong(names::KONG_HMAC_AUTH),
            },
            GatewayLayout::ApisixKeyAuth => LayoutSpec {
                name: "ApisixKeyAuth",
                shape: PerSecret(CredentialEntries::secret_only(names::KEY)),
                previous_without_own_key: SameKey,
                label: None,
            },
            GatewayLayout::ApisixHmacAuth => LayoutSpec {
                name: "ApisixHmacAuth",
                shape: PerSecret(CredentialEntries::pair(names::KEY_ID, names::SECRET_KEY)),
                previous_without_own_key: Dropped,
                label: None,
            },
            GatewayLayout::EnvoyGatewayApiKey => LayoutSpec {
                name: "EnvoyGatewayApiKey",
                shape: AllInOne(ClientMap),
                previous_without_own_key: SuffixedKey(names::PREVIOUS_CLIENT_SUFFIX),
                label: None,
            },
            GatewayLayout::TraefikBasicAuth => LayoutSpec {
                name: "TraefikBasicAuth",
                shape: AllInOne(Htpasswd(names::USERS)),
                previous_without_own_key: Dropped,
                label: None,
            },
            GatewayLayout::EnvoyGatewayBasicAuth => LayoutSpec {
                name: "EnvoyGatewayBasicAuth",
                shape: AllInOne(Htpasswd(names::HTPASSWD)),
                previous_without_own_key: Dropped,
                label: None,
            },
        }
    }

    /// Kong's credential label with this value.
    const fn kong(value: &'static str) -> Option<(&'static str, &'static str)> {
        Some((names::KONG_CREDENTIAL, value))
    }

    /// The wire spelling (as serde writes it; a unit test holds them equal).
    pub const fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The gateway keeps one credential per username (the AppKey): a
    /// previous credential stays valid there only under a key of its own.
    pub const fn keyed_by_username(self) -> bool {
        match self.spec().previous_without_own_key {
            PreviousPlacement::Dropped => true,
            PreviousPlacement::SameKey | PreviousPlacement::SuffixedKey(_) => false,
        }
    }
}

/// What one layout's gateway Secrets hold (docs/gateways.md shows each with
/// the gateway's own objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutSpec {
    /// The wire spelling.
    pub name: &'static str,
    /// The data the gateway reads, and so where a previous credential goes
    /// during a keepPrevious overlap.
    pub shape: LayoutShape,
    /// Where a previous credential goes when it kept the current AppKey.
    pub previous_without_own_key: PreviousPlacement,
    /// The label, `(key, value)`, the gateway finds its credential Secrets by.
    pub label: Option<(&'static str, &'static str)>,
}

/// The data of a layout's gateway Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutShape {
    /// One credential per Secret, in these entries (Kong, APISIX): during an
    /// overlap the previous credential is in a second Secret,
    /// `<name>-previous`, which holds a placeholder otherwise.
    PerSecret(CredentialEntries),
    /// Every credential in one Secret (Envoy Gateway, Traefik): during an
    /// overlap the previous credential is a second entry or line.
    AllInOne(CredentialList),
}

/// The entries of a one-credential gateway Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialEntries {
    /// The entry holding the AppKey, where the gateway reads one.
    pub key: Option<&'static str>,
    /// The entry holding the AppSecret.
    pub secret: &'static str,
}

impl CredentialEntries {
    const fn secret_only(secret: &'static str) -> CredentialEntries {
        CredentialEntries { key: None, secret }
    }

    const fn pair(key: &'static str, secret: &'static str) -> CredentialEntries {
        CredentialEntries {
            key: Some(key),
            secret,
        }
    }
}

/// How a several-credential gateway Secret lists its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialList {
    /// One entry per client: `<client ID>` = the AppSecret.
    ClientMap,
    /// One entry, named here, of htpasswd lines `<AppKey>:{SHA}<hash>`.
    Htpasswd(&'static str),
}

/// Where a layout puts the previous credential when the AppKey did not
/// change with the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviousPlacement {
    /// Nowhere: the gateway keeps one credential per username (the AppKey),
    /// so the previous one would replace the current one (admission asks
    /// for `rotateAppKey` with keepPrevious here).
    Dropped,
    /// Under the same AppKey: the gateway reads no AppKey (key-auth).
    SameKey,
    /// Under the AppKey plus this suffix: a client ID of its own.
    SuffixedKey(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_layout_the_schema_offers() {
        let mut schema = Vec::new();
        crate::api::offered(schemars::schema_for!(GatewayLayout).as_value(), &mut schema);
        let all: Vec<&str> = GatewayLayout::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(schema, all, "GatewayLayout::ALL misses a layout");
    }

    #[test]
    fn credentials_in_one_place_stay_apart() {
        for layout in GatewayLayout::ALL {
            let spec = layout.spec();
            // The previous credential under the same AppKey is a second
            // credential only where the gateway reads no AppKey at all.
            let reads_no_key = matches!(
                spec.shape,
                LayoutShape::PerSecret(CredentialEntries { key: None, .. })
            );
            assert_eq!(
                spec.previous_without_own_key == PreviousPlacement::SameKey,
                reads_no_key,
                "{layout:?}"
            );
        }
    }
}
