//! `keysmith reset`: asks for one reset by setting the
//! `keysmith.dev/reset-request` annotation to a fresh value (like `cmctl renew`).

use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::api::names::annotations::RESET_REQUEST;
use crate::api::{GROUP, Kind, VERSION};

/// What to reset: `KIND/NAME`, or every object of the kinds with `--all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    One(Kind, String),
    All(Vec<Kind>),
}

pub fn parse_targets(args: &[String], all: bool) -> Result<Vec<Target>, String> {
    if all {
        let kinds = if args.is_empty() {
            Kind::ALL.to_vec()
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

fn api(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: kind.as_str().into(),
        plural: kind.plural().into(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

async fn annotate(api: &Api<DynamicObject>, name: &str, value: &str) -> Result<(), String> {
    let patch = serde_json::json!({"metadata": {"annotations": {RESET_REQUEST: value}}});
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
    let mut done = Vec::new();
    let value = fresh_value();
    for target in targets {
        let named: Vec<(Kind, String)> = match target {
            Target::One(kind, name) => vec![(*kind, name.clone())],
            Target::All(kinds) => {
                let mut all = Vec::new();
                for kind in kinds {
                    let listed = api(&client, namespace, *kind)
                        .list_metadata(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    all.extend(listed.iter().map(|o| (*kind, o.name_any())));
                }
                all
            }
        };
        for (kind, name) in named {
            annotate(&api(&client, namespace, kind), &name, &value).await?;
            done.push(format!("{}/{name}", kind.as_str().to_ascii_lowercase()));
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
            vec![Target::All(Kind::ALL.to_vec())]
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
