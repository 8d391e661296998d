//! The facts the duplicate check at the gateway reads (engine guard
//! `check_gateway_unique`): the other resources' gateway Secrets of the same
//! layout in the namespace. Read only in a pass that is about to write a
//! gateway Secret, so idle passes cost nothing; one labelled list, in the
//! resource's own namespace only (keysmith never reads elsewhere, and a
//! cross-namespace check would tell a tenant whether another namespace uses
//! a value it guesses).

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::error::ObserveError;
use crate::api::Kind;
use crate::api::names::labels;
use crate::engine::{GatewayIntent, OtherGatewaySecret};

/// The namespace's gateway Secrets of `gateway`'s layout that keysmith
/// wrote for other resources (`own` are this resource's names).
pub async fn gather(
    api: &Api<Secret>,
    namespace: &str,
    gateway: &GatewayIntent,
    own: &[String],
) -> Result<Vec<OtherGatewaySecret>, ObserveError> {
    let selector = format!(
        "{}={},{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE,
        labels::GATEWAY_LAYOUT,
        gateway.layout.as_str()
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| ObserveError::ReadSecret {
            namespace: namespace.into(),
            name: format!("(gateway Secrets, {selector})"),
            source,
        })?;
    Ok(list
        .items
        .into_iter()
        .filter(|secret| !own.contains(&secret.name_any()))
        .map(|secret| other(&secret))
        .collect())
}

fn other(secret: &Secret) -> OtherGatewaySecret {
    let owner = [
        (labels::GATEWAY_APP, Kind::GatewayApp),
        (labels::SIGNATURE_KEY, Kind::SignatureKey),
    ]
    .into_iter()
    .find_map(|(label, kind)| {
        let name = secret.labels().get(label)?;
        Some(format!("{} {name}", kind.as_str()))
    });
    let data = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .collect();
    OtherGatewaySecret {
        name: secret.name_any(),
        owner,
        data,
    }
}
