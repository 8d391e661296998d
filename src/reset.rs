//! `keysmith reset`: asks for one reset by setting the
//! `keysmith.dev/reset-request` annotation to a fresh value (like `cmctl renew`).

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::crd::{GatewayApp, RESET_REQUEST_ANNOTATION, SignatureKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    GatewayApp,
    SignatureKey,
}

impl Kind {
    /// Accepts the kind, plural and short names, any case.
    pub fn parse(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().as_str() {
            "gatewayapp" | "gatewayapps" | "gwapp" | "gwapps" | "gatewayapps.keysmith.dev" => {
                Some(Kind::GatewayApp)
            }
            "signaturekey"
            | "signaturekeys"
            | "sigkey"
            | "sigkeys"
            | "signaturekeys.keysmith.dev" => Some(Kind::SignatureKey),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::GatewayApp => "gatewayapp",
            Kind::SignatureKey => "signaturekey",
        }
    }
}

/// What to reset: `KIND/NAME`, or every object of the kinds with `--all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    One(Kind, String),
    All(Vec<Kind>),
}

pub fn parse_targets(args: &[String], all: bool) -> Result<Vec<Target>, String> {
    if all {
        let kinds = if args.is_empty() {
            vec![Kind::GatewayApp, Kind::SignatureKey]
        } else {
            args.iter()
                .map(|a| {
                    Kind::parse(a)
                        .ok_or_else(|| format!("unknown kind '{a}' (gatewayapp or signaturekey)"))
                })
                .collect::<Result<_, _>>()?
        };
        return Ok(vec![Target::All(kinds)]);
    }
    if args.is_empty() {
        return Err("name what to reset: KIND/NAME (e.g. gwapp/orders-client), or --all".into());
    }
    args.iter()
        .map(|arg| {
            let (kind, name) = arg
                .split_once('/')
                .ok_or_else(|| format!("'{arg}' is not KIND/NAME (e.g. gwapp/orders-client)"))?;
            let kind = Kind::parse(kind)
                .ok_or_else(|| format!("unknown kind '{kind}' (gatewayapp or signaturekey)"))?;
            Ok(Target::One(kind, name.to_string()))
        })
        .collect()
}

/// A value never used before: the current time to the nanosecond.
pub fn fresh_value() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

async fn annotate<K>(api: &Api<K>, name: &str, value: &str) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({"metadata": {"annotations": {RESET_REQUEST_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("{name}: {e}"))
}

/// Resets the targets in `namespace`; returns the `kind/name` of each.
pub async fn reset(
    client: Client,
    namespace: &str,
    targets: &[Target],
) -> Result<Vec<String>, String> {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), namespace);
    let keys: Api<SignatureKey> = Api::namespaced(client, namespace);
    let mut done = Vec::new();
    let value = fresh_value();
    for target in targets {
        let named: Vec<(Kind, String)> = match target {
            Target::One(kind, name) => vec![(*kind, name.clone())],
            Target::All(kinds) => {
                let mut all = Vec::new();
                for kind in kinds {
                    let names: Vec<String> = match kind {
                        Kind::GatewayApp => apps
                            .list(&ListParams::default())
                            .await
                            .map_err(|e| e.to_string())?
                            .iter()
                            .map(|o| o.name_any())
                            .collect(),
                        Kind::SignatureKey => keys
                            .list(&ListParams::default())
                            .await
                            .map_err(|e| e.to_string())?
                            .iter()
                            .map(|o| o.name_any())
                            .collect(),
                    };
                    all.extend(names.into_iter().map(|n| (*kind, n)));
                }
                all
            }
        };
        for (kind, name) in named {
            match kind {
                Kind::GatewayApp => annotate(&apps, &name, &value).await?,
                Kind::SignatureKey => annotate(&keys, &name, &value).await?,
            }
            done.push(format!("{}/{name}", kind.name()));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_kubectl() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_targets(&args(&["gwapp/orders", "SignatureKey/sign"]), false).unwrap(),
            vec![
                Target::One(Kind::GatewayApp, "orders".into()),
                Target::One(Kind::SignatureKey, "sign".into())
            ]
        );
        assert_eq!(
            parse_targets(&[], true).unwrap(),
            vec![Target::All(vec![Kind::GatewayApp, Kind::SignatureKey])]
        );
        assert_eq!(
            parse_targets(&args(&["sigkeys"]), true).unwrap(),
            vec![Target::All(vec![Kind::SignatureKey])]
        );
        assert!(
            parse_targets(&args(&["orders"]), false)
                .unwrap_err()
                .contains("KIND/NAME")
        );
        assert!(
            parse_targets(&args(&["pod/x"]), false)
                .unwrap_err()
                .contains("unknown kind")
        );
        assert!(parse_targets(&[], false).is_err());
    }

    #[test]
    fn fresh_values_differ() {
        let a = fresh_value();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(a, fresh_value());
    }
}
