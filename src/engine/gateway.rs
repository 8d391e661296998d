//! The gateway Secret of `spec.gateway` (SPEC §9.2): exactly what one
//! gateway reads, rendered from the credential this pass settles on, and
//! the writes that bring the cluster in step with it.
//!
//! The output Secret stays the source of truth (clients mount it, the
//! engine reads the credential back from it); a gateway Secret is derived,
//! so it is rewritten whenever it differs (entries someone else added are
//! removed: a gateway may take every entry as a credential) and never read
//! back.
//!
//! Overlap (`keepPrevious`): where the gateway reads several entries from
//! one Secret (Envoy Gateway's client map, Traefik's htpasswd `users`) the
//! previous credential is a second entry. Where it reads one credential per
//! Secret (Kong, APISIX) it goes into a second Secret, `<name>-previous`.
//! That Secret always exists, because the gateways' consumer objects refuse
//! or mishandle a reference to a missing Secret (Kong's admission webhook
//! refuses the consumer; APISIX's controller keeps the stale consumer):
//! outside an overlap it holds a placeholder, a fresh random credential
//! nobody is given, marked `keysmith.dev/placeholder: "true"`; at the expiry
//! a new placeholder replaces the previous credential, which revokes it.
//! Gateways that index credentials by username (Kong basic/hmac-auth,
//! APISIX hmac-auth, Traefik) keep one entry per username, so the previous
//! credential stays valid there only when it had its own AppKey
//! (`rotateAppKey`; admission asks for it).

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::TryCryptoRng;
use sha1::{Digest, Sha1};

use super::generate::{self, GenerateError};
use super::inputs::{GatewayIntent, Intent, ObservedSecret};
use super::outcome::Outcome;
use super::render::DesiredSecret;
use super::snapshot::Snapshot;
use crate::api::names::{annotations, gateway as names};
use crate::api::{
    CredentialEntries, CredentialList, GatewayLayout, LayoutShape, PreviousPlacement, SecretType,
};

/// One gateway Secret to write. (Debug shows names, never values.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayWrite {
    /// Applied by server-side apply.
    pub secret: DesiredSecret,
    /// Data entries found that the Secret must not have (someone else's
    /// additions): removed after the apply.
    pub remove_keys: Vec<String>,
}

/// The second Secret of a [`LayoutShape::PerSecret`] layout.
pub fn previous_name(name: &str) -> String {
    format!("{name}{}", names::PREVIOUS_SUFFIX)
}

/// Every gateway Secret name a resource has: read each pass.
pub fn names(gateway: &GatewayIntent) -> Vec<String> {
    match gateway.layout.spec().shape {
        LayoutShape::PerSecret(_) => vec![gateway.name.clone(), previous_name(&gateway.name)],
        LayoutShape::AllInOne(_) => vec![gateway.name.clone()],
    }
}

/// One credential: `(key, secret)`.
type Credential<'a> = (&'a str, &'a str);

/// A one-credential layout's data.
fn single(entries: CredentialEntries, (key, secret): Credential) -> BTreeMap<String, String> {
    let key = entries
        .key
        .map(|entry| (entry.to_string(), key.to_string()));
    key.into_iter()
        .chain([(entries.secret.to_string(), secret.to_string())])
        .collect()
}

/// A several-credential layout's data: current first.
fn several(
    list: CredentialList,
    current: Credential,
    previous: Option<Credential>,
) -> BTreeMap<String, String> {
    let all = std::iter::once(current).chain(previous);
    match list {
        CredentialList::Htpasswd(entry) => {
            let lines: Vec<String> = all
                .map(|(key, secret)| htpasswd_line(key, secret))
                .collect();
            BTreeMap::from([(entry.to_string(), lines.join("\n"))])
        }
        CredentialList::ClientMap => all
            .map(|(client, secret)| (client.to_string(), secret.to_string()))
            .collect(),
    }
}

/// One credential as the layout's (main) gateway Secret holds it.
fn data_of(layout: GatewayLayout, credential: Credential) -> BTreeMap<String, String> {
    match layout.spec().shape {
        LayoutShape::PerSecret(entries) => single(entries, credential),
        LayoutShape::AllInOne(list) => several(list, credential, None),
    }
}

/// `<user>:{SHA}<base64 of SHA-1>`: the htpasswd form Traefik itself builds
/// from a basic-auth Secret. Deterministic, so an unchanged credential never
/// causes a write; no weaker than the plaintext stored beside it.
pub fn htpasswd_line(user: &str, secret: &str) -> String {
    let digest = Sha1::digest(secret.as_bytes());
    format!(
        "{user}:{{SHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The key the layout holds a previous credential under when it kept the
/// current AppKey; `None` where it cannot hold one (one per username).
fn key_without_own(layout: GatewayLayout, current_key: &str) -> Option<String> {
    match layout.spec().previous_without_own_key {
        PreviousPlacement::Dropped => None,
        PreviousPlacement::SameKey => Some(current_key.to_string()),
        PreviousPlacement::SuffixedKey(suffix) => Some(format!("{current_key}{suffix}")),
    }
}

/// The previous credential as the layout can hold it: under its own key
/// when it has one, else under `without_own` ([`key_without_own`]).
fn previous_credential<'a>(
    current_key: &str,
    previous: Option<(&'a str, Option<&'a str>)>,
    without_own: Option<&'a str>,
) -> Option<Credential<'a>> {
    let (secret, key) = previous?;
    let key = key.filter(|k| *k != current_key).or(without_own)?;
    Some((key, secret))
}

/// The gateway Secrets wanted now (none before the first issue). A
/// placeholder is taken over from `found` or made from `rng`.
fn desired<R: TryCryptoRng>(
    s: &Snapshot,
    outcome: &Outcome,
    rng: &mut R,
) -> Result<Vec<DesiredSecret>, GenerateError> {
    let intent = s.intent;
    let (Some(gateway), Some(key), Some(secret)) = (&intent.gateway, &outcome.key, &outcome.secret)
    else {
        return Ok(vec![]);
    };
    let without_own = key_without_own(gateway.layout, key);
    let previous = outcome
        .previous
        .as_ref()
        .map(|(value, _)| (value.as_str(), outcome.previous_key.as_deref()));
    let previous = previous_credential(key, previous, without_own.as_deref());
    let current = (key.as_str(), secret.as_str());
    let main = |data| secret_of(intent, &gateway.name, data, false);
    Ok(match gateway.layout.spec().shape {
        LayoutShape::AllInOne(list) => vec![main(several(list, current, previous))],
        LayoutShape::PerSecret(entries) => {
            let name = previous_name(&gateway.name);
            let second = second_secret(s, entries, &name, previous, rng)?;
            vec![main(single(entries, current)), second]
        }
    })
}

/// The second Secret of a [`LayoutShape::PerSecret`] layout: the previous
/// credential during an overlap, else a placeholder (the one found if it is
/// one, else a fresh one).
fn second_secret<R: TryCryptoRng>(
    s: &Snapshot,
    entries: CredentialEntries,
    name: &str,
    previous: Option<Credential>,
    rng: &mut R,
) -> Result<DesiredSecret, GenerateError> {
    if let Some(credential) = previous {
        return Ok(secret_of(
            s.intent,
            name,
            single(entries, credential),
            false,
        ));
    }
    let found = s.gateway.get(name);
    let data = match found.filter(|found| is_placeholder(found, entries)) {
        Some(found) => found
            .data
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect(),
        None => {
            let (key, value) = placeholder(s.intent, rng)?;
            single(entries, (&key, &value))
        }
    };
    Ok(secret_of(s.intent, name, data, true))
}

/// A placeholder keysmith made for this layout and nobody changed since:
/// marked, of the layout's shape, every value keysmith's as it wrote it.
fn is_placeholder(found: &ObservedSecret, entries: CredentialEntries) -> bool {
    let marked = found
        .annotations
        .get(annotations::PLACEHOLDER)
        .map(String::as_str)
        == Some(annotations::PLACEHOLDER_VALUE);
    let shape = single(entries, ("", ""));
    let shaped = found.data.len() == shape.len()
        && shape.keys().all(|k| {
            found
                .data
                .get(k)
                .is_some_and(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
        });
    found.ours() && marked && shaped && !found.foreign_data
}

/// A credential nobody is given: a fresh random key, and a secret of the
/// rule's longest length (whatever `generator` says, well over 128 bits).
fn placeholder<R: TryCryptoRng>(
    intent: &Intent,
    rng: &mut R,
) -> Result<(String, String), GenerateError> {
    let key = generate::app_key(rng)?;
    let rule = intent.secret_rule;
    let secret = generate::value(rng, rule, rule.max_len, false)?;
    Ok((key, secret))
}

fn secret_of(
    intent: &Intent,
    name: &str,
    data: BTreeMap<String, String>,
    placeholder: bool,
) -> DesiredSecret {
    let mut labels = intent.labels.clone();
    if let Some(gateway) = &intent.gateway {
        let spec = gateway.layout.spec();
        labels.extend(spec.label.map(|(k, v)| (k.to_string(), v.to_string())));
        labels.insert(
            crate::api::names::labels::GATEWAY_LAYOUT.to_string(),
            spec.name.to_string(),
        );
    }
    let mut annotations = intent.annotations.clone();
    annotations.remove(annotations::PLACEHOLDER);
    if placeholder {
        annotations.insert(
            annotations::PLACEHOLDER.to_string(),
            annotations::PLACEHOLDER_VALUE.to_string(),
        );
    }
    DesiredSecret {
        name: name.to_string(),
        type_: SecretType::Opaque,
        data,
        labels,
        annotations,
        owned: intent.owned,
    }
}

/// What a gateway compares across every credential it reads: the
/// identifiers (client IDs, usernames, key IDs) and the secrets (API keys,
/// passwords; for htpasswd lines the hash, equal exactly when the secret is).
#[derive(Default, PartialEq, Eq)]
pub struct Atoms {
    pub ids: std::collections::BTreeSet<String>,
    pub secrets: std::collections::BTreeSet<String>,
}

/// The [`Atoms`] of a gateway Secret's data in `layout`.
pub fn atoms(layout: GatewayLayout, data: &BTreeMap<String, String>) -> Atoms {
    let mut atoms = Atoms::default();
    match layout.spec().shape {
        LayoutShape::AllInOne(CredentialList::ClientMap) => {
            atoms.ids.extend(data.keys().cloned());
            atoms.secrets.extend(data.values().cloned());
        }
        LayoutShape::AllInOne(CredentialList::Htpasswd(_)) => {
            let lines = data.values().flat_map(|v| v.lines());
            for (user, hash) in lines.filter_map(|line| line.split_once(':')) {
                atoms.ids.insert(user.to_string());
                atoms.secrets.insert(hash.to_string());
            }
        }
        LayoutShape::PerSecret(entries) => {
            let key = entries.key.and_then(|entry| data.get(entry));
            atoms.ids.extend(key.cloned());
            atoms.secrets.extend(data.get(entries.secret).cloned());
        }
    }
    atoms
}

/// The [`Atoms`] of what this resource would have at the gateway in this
/// pass, as far as a guard can know before new values are made (a generated
/// value is random, so it cannot collide): the custom or current key and
/// secret, and the kept previous secret under its key.
pub fn own_atoms(s: &Snapshot, layout: GatewayLayout) -> Atoms {
    // A key still to be generated is unknown (and random): none is compared.
    let key = s.intent.custom_key.as_ref().or(s.current_key());
    let key = key.map(String::as_str).unwrap_or_default();
    let Some(secret) = s.source_value().or(s.current_secret()) else {
        return Atoms::default();
    };
    let without_own = key_without_own(layout, key);
    let previous = s.issued.as_ref().and_then(|i| i.previous.as_deref());
    let previous_key = s.record.previous_key.as_deref();
    let previous = previous_credential(
        key,
        previous.map(|p| (p, previous_key)),
        without_own.as_deref(),
    );
    let mut all = atoms(layout, &data_of(layout, (key, secret)));
    if let Some(previous) = previous {
        let more = atoms(layout, &data_of(layout, previous));
        all.ids.extend(more.ids);
        all.secrets.extend(more.secrets);
    }
    all.ids.remove("");
    all
}

/// Whether a pass that writes a gateway Secret must first read the other
/// gateway Secrets (the duplicate check). Only custom values can collide: a
/// generated one is random (at least 128 bits), and a custom value equal to
/// someone's generated one is caught by the resource holding the custom one.
/// So resources without custom values cost no read, even at first issue.
pub fn needs_others(intent: &Intent) -> bool {
    intent.gateway.is_some() && (intent.custom_key.is_some() || intent.secret_from.is_some())
}

/// After a `GatewayConflict` before the first issue: each gateway Secret
/// that does not exist yet, with no entry, so a gateway object listing it
/// (an Envoy Gateway policy refuses a missing Secret and answers 500 on
/// every route it protects) keeps serving everyone else.
pub fn empty_writes(s: &Snapshot) -> Vec<GatewayWrite> {
    let Some(gateway) = &s.intent.gateway else {
        return vec![];
    };
    names(gateway)
        .into_iter()
        .filter(|name| !s.gateway.contains_key(name))
        .map(|name| GatewayWrite {
            secret: secret_of(s.intent, &name, BTreeMap::new(), false),
            remove_keys: vec![],
        })
        .collect()
}

/// The writes that bring the gateway Secrets in step with `outcome`: the
/// ones missing or not as wanted.
pub fn writes<R: TryCryptoRng>(
    s: &Snapshot,
    outcome: &Outcome,
    rng: &mut R,
) -> Result<Vec<GatewayWrite>, GenerateError> {
    let writes = desired(s, outcome, rng)?
        .into_iter()
        .filter_map(|secret| {
            let found = s.gateway.get(&secret.name);
            if found.is_some_and(|found| in_step(found, &secret)) {
                return None;
            }
            // Entries keysmith applied and no longer wants go with the apply;
            // only someone else's additions need removing apart.
            let remove_keys = found
                .filter(|found| found.foreign_data)
                .map(|found| {
                    found
                        .data
                        .keys()
                        .filter(|k| !secret.data.contains_key(*k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            Some(GatewayWrite {
                secret,
                remove_keys,
            })
        })
        .collect();
    Ok(writes)
}

/// A gateway Secret holds exactly the wanted data (a gateway may read every
/// entry: Traefik wants a single one, Envoy Gateway takes each as a key),
/// and a placeholder is marked as one and a credential is not.
fn in_step(found: &ObservedSecret, desired: &DesiredSecret) -> bool {
    let data_equal = found.data.len() == desired.data.len()
        && desired
            .data
            .iter()
            .all(|(k, v)| found.data.get(k).and_then(|o| o.as_ref()) == Some(v));
    let labelled = desired
        .labels
        .iter()
        .all(|(k, v)| found.labels.get(k) == Some(v));
    let annotated = desired
        .annotations
        .iter()
        .all(|(k, v)| found.annotations.get(k) == Some(v));
    let marked = desired.annotations.contains_key(annotations::PLACEHOLDER)
        == found.annotations.contains_key(annotations::PLACEHOLDER);
    data_equal && labelled && annotated && marked && found.owner_referenced == desired.owned
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::Reason;
    use crate::api::names::annotations;
    use crate::engine::fixtures::{KEY, SECRET, World, rng, status_after, t, written};
    use crate::engine::{Foreign, Ownership, Plan, plan};

    fn world(layout: GatewayLayout) -> World {
        let mut world = World::issued();
        world.intent.gateway = Some(GatewayIntent {
            layout,
            name: "orders-gateway".into(),
        });
        world
    }

    /// One pass, keeping what it writes (Secret, gateway Secrets, status).
    fn pass(world: &mut World, seed: &mut rand::rngs::StdRng) -> Plan {
        let plan = plan(&world.intent, &world.observed(), world.now, seed).unwrap();
        if let Some(secret) = &plan.secret {
            world.secret = Some(written(secret));
        }
        for write in &plan.gateway {
            world
                .gateway
                .insert(write.secret.name.clone(), written(&write.secret));
        }
        world.status = status_after(&plan, &world.intent, &world.status);
        plan
    }

    fn data(world: &World, name: &str) -> BTreeMap<String, String> {
        world.gateway[name]
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap()))
            .collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The layout, its data, the label its gateway finds the Secret by,
    /// and whether the previous credential has a Secret of its own.
    type Case<'a> = (
        GatewayLayout,
        Vec<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        bool,
    );

    /// What each layout's gateway Secret holds for `KEY`/`SECRET` (`sha`:
    /// their htpasswd line).
    fn layout_cases(sha: &str) -> [Case<'_>; 8] {
        [
            (
                GatewayLayout::KongKeyAuth,
                vec![("key", SECRET)],
                Some((names::KONG_CREDENTIAL, "key-auth")),
                true,
            ),
            (
                GatewayLayout::KongBasicAuth,
                vec![("username", KEY), ("password", SECRET)],
                Some((names::KONG_CREDENTIAL, "basic-auth")),
                true,
            ),
            (
                GatewayLayout::KongHmacAuth,
                vec![("username", KEY), ("secret", SECRET)],
                Some((names::KONG_CREDENTIAL, "hmac-auth")),
                true,
            ),
            (
                GatewayLayout::ApisixKeyAuth,
                vec![("key", SECRET)],
                None,
                true,
            ),
            (
                GatewayLayout::ApisixHmacAuth,
                vec![("key_id", KEY), ("secret_key", SECRET)],
                None,
                true,
            ),
            (
                GatewayLayout::EnvoyGatewayApiKey,
                vec![(KEY, SECRET)],
                None,
                false,
            ),
            (
                GatewayLayout::TraefikBasicAuth,
                vec![("users", sha)],
                None,
                false,
            ),
            (
                GatewayLayout::EnvoyGatewayBasicAuth,
                vec![(".htpasswd", sha)],
                None,
                false,
            ),
        ]
    }

    #[test]
    fn each_layout_holds_what_its_gateway_reads_and_nothing_else() {
        let sha = format!("{KEY}:{{SHA}}Lp+/9zJVPU62UCup5svoSlMUcgg=");
        let cases = layout_cases(&sha);
        let covered: Vec<GatewayLayout> = cases.iter().map(|case| case.0).collect();
        assert_eq!(covered, GatewayLayout::ALL, "a case for every layout");
        for (layout, want, label, second_secret) in cases {
            let mut world = world(layout);
            let mut seed = rng();
            let plan = pass(&mut world, &mut seed);
            assert_eq!(
                plan.secret, None,
                "{layout:?}: the output Secret is as it was"
            );
            assert_eq!(data(&world, "orders-gateway"), map(&want), "{layout:?}");
            let previous = world.gateway.get("orders-gateway-previous");
            if second_secret {
                assert_eq!(plan.gateway.len(), 2, "{layout:?}");
                assert_placeholder(previous.unwrap(), &want, layout);
            } else {
                assert_eq!(plan.gateway.len(), 1, "{layout:?}");
                assert!(
                    previous.is_none(),
                    "{layout:?}: a second entry, not a Secret"
                );
            }
            let labels = &world.gateway["orders-gateway"].labels;
            let gateways: Vec<(&str, &str)> = labels
                .iter()
                .filter(|(k, _)| !world.intent.labels.contains_key(*k))
                .filter(|(k, _)| k.as_str() != crate::api::names::labels::GATEWAY_LAYOUT)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                gateways,
                Vec::from_iter(label),
                "{layout:?}: the gateway's label"
            );
            assert_eq!(
                labels
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str),
                Some("keysmith"),
                "{layout:?}: recognised as keysmith's"
            );
            assert!(
                pass(&mut world, &mut seed).gateway.is_empty(),
                "{layout:?}: idle (a placeholder is kept, not made again)"
            );
        }
    }

    /// A placeholder: marked, shaped like the layout's credential, holding
    /// nothing issued.
    fn assert_placeholder(found: &ObservedSecret, shape: &[(&str, &str)], layout: GatewayLayout) {
        assert_eq!(
            found
                .annotations
                .get(annotations::PLACEHOLDER)
                .map(String::as_str),
            Some("true"),
            "{layout:?}"
        );
        let keys: Vec<&String> = found.data.keys().collect();
        let mut want: Vec<&str> = shape.iter().map(|(k, _)| *k).collect();
        want.sort();
        assert_eq!(keys, want, "{layout:?}: the layout's shape");
        for value in found.data.values().flatten() {
            assert!(
                value != KEY && value != SECRET,
                "{layout:?}: nothing issued"
            );
            assert!(value.len() >= 22, "{layout:?}: random");
        }
    }

    #[test]
    fn the_htpasswd_line_is_the_one_traefik_builds_itself() {
        // printf %s SecretInUse0123456789abcdefgh | openssl sha1 -binary | base64
        assert_eq!(
            htpasswd_line("u", SECRET),
            "u:{SHA}Lp+/9zJVPU62UCup5svoSlMUcgg="
        );
    }

    /// A reset at t(20) with keepPrevious 60 s; `rotate_key` as given.
    fn reset(layout: GatewayLayout, rotate_key: bool) -> (World, rand::rngs::StdRng) {
        let mut seed = rng();
        let mut world = world(layout);
        world.intent.keep_previous = Some(Duration::from_secs(60));
        world.intent.rotate_key = rotate_key;
        pass(&mut world, &mut seed);
        world.now = t(20);
        world.intent.reset_request = Some("r1".into());
        pass(&mut world, &mut seed);
        (world, seed)
    }

    fn current(world: &World) -> (String, String) {
        let secret = world.secret.as_ref().unwrap();
        let value = |k: &str| secret.data[k].clone().unwrap();
        (value("app_key"), value("app_secret"))
    }

    #[test]
    fn a_second_secret_holds_the_previous_credential_until_it_expires() {
        let (mut world, mut seed) = reset(GatewayLayout::KongKeyAuth, false);
        let (_, new_secret) = current(&world);
        assert_ne!(new_secret, SECRET);
        assert_eq!(data(&world, "orders-gateway"), map(&[("key", &new_secret)]));
        assert_eq!(
            data(&world, "orders-gateway-previous"),
            map(&[("key", SECRET)])
        );
        assert_eq!(
            world.gateway["orders-gateway-previous"].labels[names::KONG_CREDENTIAL],
            "key-auth"
        );
        world.now = t(79);
        assert!(
            pass(&mut world, &mut seed).gateway.is_empty(),
            "still inside the overlap"
        );
        world.now = t(80);
        let plan = pass(&mut world, &mut seed);
        assert_eq!(plan.gateway.len(), 1);
        assert_eq!(plan.gateway[0].secret.name, "orders-gateway-previous");
        assert_placeholder(
            &world.gateway["orders-gateway-previous"],
            &[("key", "")],
            GatewayLayout::KongKeyAuth,
        );
        assert!(
            pass(&mut world, &mut seed).gateway.is_empty(),
            "the placeholder stays as it is"
        );
    }

    #[test]
    fn a_second_entry_holds_the_previous_credential_until_it_expires() {
        let (mut world, mut seed) = reset(GatewayLayout::EnvoyGatewayApiKey, false);
        let (key, new_secret) = current(&world);
        assert_eq!(key, KEY);
        let previous_client = format!("{KEY}.previous");
        assert_eq!(
            data(&world, "orders-gateway"),
            map(&[(KEY, &new_secret), (&previous_client, SECRET)])
        );
        world.now = t(80);
        let plan = pass(&mut world, &mut seed);
        assert_eq!(plan.gateway.len(), 1);
        assert_eq!(data(&world, "orders-gateway"), map(&[(KEY, &new_secret)]));
    }

    #[test]
    fn gateways_keyed_by_username_keep_the_previous_only_under_its_own_key() {
        for layout in [
            GatewayLayout::TraefikBasicAuth,
            GatewayLayout::EnvoyGatewayBasicAuth,
            GatewayLayout::KongBasicAuth,
            GatewayLayout::KongHmacAuth,
            GatewayLayout::ApisixHmacAuth,
        ] {
            let (world, _) = reset(layout, false);
            let everything: Vec<String> = world
                .gateway
                .values()
                .flat_map(|s| s.data.values().flatten().cloned())
                .collect();
            assert!(
                everything
                    .iter()
                    .all(|v| !v.contains(SECRET) && !v.contains(&htpasswd_line(KEY, SECRET))),
                "{layout:?}: one entry per username, so none for the previous secret"
            );
            let (mut world, mut seed) = reset(layout, true);
            let (key, secret) = current(&world);
            assert_ne!(key, KEY, "{layout:?}: the key rotated with the secret");
            let record = &world.secret.as_ref().unwrap().annotations;
            assert_eq!(record[annotations::PREVIOUS_KEY], KEY);
            let lines_entry = match layout.spec().shape {
                LayoutShape::AllInOne(CredentialList::Htpasswd(entry)) => Some(entry),
                LayoutShape::AllInOne(CredentialList::ClientMap) | LayoutShape::PerSecret(_) => {
                    None
                }
            };
            match lines_entry {
                Some(entry) => assert_eq!(
                    data(&world, "orders-gateway")[entry],
                    format!(
                        "{}\n{}",
                        htpasswd_line(&key, &secret),
                        htpasswd_line(KEY, SECRET)
                    )
                ),
                None => {
                    let previous = data(&world, "orders-gateway-previous");
                    assert!(previous.values().any(|v| v == KEY), "{layout:?}");
                    assert!(previous.values().any(|v| v == SECRET), "{layout:?}");
                }
            }
            world.now = t(80);
            pass(&mut world, &mut seed);
            let left: Vec<String> = world
                .gateway
                .values()
                .flat_map(|s| s.data.values().flatten().cloned())
                .collect();
            assert!(
                left.iter().all(|v| !v.contains(KEY) && !v.contains(SECRET)),
                "{layout:?}: the previous credential is gone at expiry"
            );
        }
    }

    #[test]
    fn a_gateway_secret_someone_else_made_blocks_and_is_left_alone() {
        let mut world = world(GatewayLayout::KongKeyAuth);
        world.gateway.insert(
            "orders-gateway".into(),
            ObservedSecret {
                ownership: Ownership::Foreign(Foreign::NotKeysmiths),
                ..Default::default()
            },
        );
        let plan = plan(&world.intent, &world.observed(), world.now, &mut rng()).unwrap();
        assert_eq!(plan.readiness.reason, Reason::SecretConflict);
        assert!(plan.readiness.message.contains("orders-gateway"));
        assert!(plan.gateway.is_empty() && plan.secret.is_none());
    }

    #[test]
    fn a_conflict_before_the_first_issue_leaves_an_empty_gateway_secret_and_nothing_else() {
        let mut world = world(GatewayLayout::EnvoyGatewayApiKey);
        world.secret = None;
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(crate::engine::SourceValue::Found("Shared-custom-1".into()));
        world.gateway_others = vec![crate::engine::OtherGatewaySecret {
            name: "first-gateway".into(),
            owner: Some("GatewayApp first".into()),
            data: map(&[("first-key-001", "Shared-custom-1")]),
        }];
        let blocked = plan(&world.intent, &world.observed(), world.now, &mut rng()).unwrap();
        assert_eq!(blocked.readiness.reason, Reason::GatewayConflict);
        assert!(blocked.secret.is_none(), "nothing issued");
        assert_eq!(blocked.gateway.len(), 1);
        let empty = &blocked.gateway[0].secret;
        assert_eq!(empty.name, "orders-gateway");
        assert!(empty.data.is_empty(), "no entry written");
        assert_eq!(
            empty.labels[crate::api::names::labels::GATEWAY_LAYOUT],
            "EnvoyGatewayApiKey"
        );
        // Once it exists, a blocked pass leaves it alone.
        world
            .gateway
            .insert("orders-gateway".into(), written(empty));
        let again = plan(&world.intent, &world.observed(), world.now, &mut rng()).unwrap();
        assert!(again.gateway.is_empty());
        // The other resource gone: issued into it.
        world.gateway_others.clear();
        let issued = plan(&world.intent, &world.observed(), world.now, &mut rng()).unwrap();
        assert_eq!(issued.readiness.reason, Reason::Issued);
        assert_eq!(issued.gateway.len(), 1);
        assert!(
            issued.gateway[0]
                .secret
                .data
                .values()
                .any(|v| v == "Shared-custom-1")
        );
    }

    #[test]
    fn only_custom_values_need_the_other_gateway_secrets_read() {
        let mut world = world(GatewayLayout::EnvoyGatewayApiKey);
        assert!(!needs_others(&world.intent), "generated values are random");
        world.intent.custom_key = Some("custom-key-1".into());
        assert!(needs_others(&world.intent));
        world.intent.custom_key = None;
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        assert!(needs_others(&world.intent));
        world.intent.gateway = None;
        assert!(!needs_others(&world.intent), "no gateway Secret");
    }

    #[test]
    fn a_changed_gateway_secret_is_put_back() {
        let mut world = world(GatewayLayout::ApisixKeyAuth);
        pass(&mut world, &mut rng());
        let found = world.gateway.get_mut("orders-gateway").unwrap();
        found.data.insert("key".into(), Some("edited".into()));
        found.data.insert("extra".into(), Some("someone's".into()));
        found.foreign_data = true;
        let plan = pass(&mut world, &mut rng());
        assert_eq!(plan.gateway.len(), 1);
        assert_eq!(plan.gateway[0].remove_keys, ["extra"]);
        assert_eq!(data(&world, "orders-gateway"), map(&[("key", SECRET)]));
        world.gateway.remove("orders-gateway");
        assert_eq!(pass(&mut world, &mut rng()).gateway.len(), 1, "recreated");
    }

    #[test]
    fn a_placeholder_someone_changed_is_made_again() {
        let mut seed = rng();
        let mut world = world(GatewayLayout::KongBasicAuth);
        pass(&mut world, &mut seed);
        let made = data(&world, "orders-gateway-previous");
        let found = world.gateway.get_mut("orders-gateway-previous").unwrap();
        found.foreign_data = true; // someone set a password they know
        let plan = pass(&mut world, &mut seed);
        assert_eq!(plan.gateway.len(), 1);
        let remade = data(&world, "orders-gateway-previous");
        assert_ne!(remade, made, "a fresh placeholder");
        // The wrong shape (a layout switch) is made again too.
        let found = world.gateway.get_mut("orders-gateway-previous").unwrap();
        found.data = BTreeMap::from([("key".to_string(), Some("x".repeat(30)))]);
        assert_eq!(pass(&mut world, &mut seed).gateway.len(), 1);
        assert!(data(&world, "orders-gateway-previous").contains_key("username"));
    }

    #[test]
    fn without_a_gateway_the_record_is_as_before() {
        let mut world = World::issued();
        world.intent.keep_previous = Some(Duration::from_secs(60));
        world.intent.rotate_key = true;
        world.now = t(20);
        world.intent.reset_request = Some("r1".into());
        let plan = pass(&mut world, &mut rng());
        let secret = plan.secret.unwrap();
        assert!(secret.data.contains_key("app_secret_previous"));
        assert!(!secret.annotations.contains_key(annotations::PREVIOUS_KEY));
        assert!(plan.gateway.is_empty());
    }
}
