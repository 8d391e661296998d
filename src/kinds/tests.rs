//! The kinds' typed statuses and attributes: what keysmith writes reads back
//! equal (so an idle pass writes nothing), other writers' conditions are not
//! keysmith's to compare, and attributes are compared as values.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;

use super::{CredentialKind, RolloutReport};
use crate::api::{AppType, Attributes, Creator, GatewayApp, SignAlgorithm, SignType, SignatureKey};
use crate::engine::{self, Observed, PreviousStatus};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn object<K: DeserializeOwned>(kind: &str, spec: serde_json::Value) -> K {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "keysmith.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "orders", "namespace": "shop", "uid": "0b7c1a2e-1111-4222-8333-944455556666", "generation": 3},
        "spec": spec,
    }))
    .unwrap()
}

/// The status a first pass (nothing issued yet) would write for `object`.
fn first_status<K: CredentialKind>(object: &K) -> K::Status {
    let intent = object.intent();
    let observed = Observed {
        secret: None,
        source: None,
        status: PreviousStatus::default(),
        key_held_by: None,
        gateway: BTreeMap::new(),
        record_key: None,
        gateway_others: Vec::new(),
        pending: None,
    };
    let mut rng = rand::rng();
    let plan = engine::plan(&intent, &observed, at(0), &mut rng).unwrap();
    object.desired_status(&intent, &plan, RolloutReport::Absent, at(0))
}

/// `status` as the apiserver returns it: through JSON and back.
fn through_the_apiserver<S: serde::Serialize + DeserializeOwned>(status: &S) -> S {
    serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap()
}

fn someone_elses_condition() -> Condition {
    Condition {
        type_: "PolicyCompliant".into(),
        status: "True".into(),
        reason: "Checked".into(),
        message: "by a policy engine".into(),
        last_transition_time: Time(at(5)),
        observed_generation: None,
    }
}

#[test]
fn a_written_gateway_app_status_reads_back_equal() {
    let mut app: GatewayApp = object("GatewayApp", serde_json::json!({}));
    let written = first_status(&app);
    let mut read = through_the_apiserver(&written);
    assert_eq!(read, written, "the apiserver round trip loses nothing");
    read.rotation.conditions.push(someone_elses_condition());
    app.status = Some(read);
    assert_eq!(app.current_status(), written, "another writer's condition");
    assert_eq!(
        app.previous_status().attributes,
        Some(app.intent().attributes),
        "the recorded attributes are the spec's"
    );
}

#[test]
fn a_written_signature_key_status_reads_back_equal() {
    let spec = serde_json::json!({"signType": "aes", "signAlgorithm": "aes-256-cfb"});
    let mut key: SignatureKey = object("SignatureKey", spec);
    let written = first_status(&key);
    let mut read = through_the_apiserver(&written);
    assert_eq!(read, written, "the apiserver round trip loses nothing");
    read.rotation.conditions.push(someone_elses_condition());
    key.status = Some(read);
    assert_eq!(key.current_status(), written, "another writer's condition");
    assert_eq!(
        key.previous_status().attributes,
        Some(key.intent().attributes),
        "the recorded attributes are the spec's"
    );
}

#[test]
fn attributes_are_compared_as_values() {
    let mut app: GatewayApp = object("GatewayApp", serde_json::json!({"appName": "orders_app"}));
    app.status = Some(first_status(&app));
    assert_eq!(
        app.intent().attributes,
        Attributes::App {
            name: "orders_app".into(),
            creator: Creator::User,
            app_type: AppType::Apig,
        }
    );
    app.spec.app_type = Some(AppType::Roma);
    let recorded = app.previous_status().attributes;
    assert_ne!(
        recorded,
        Some(app.intent().attributes),
        "a changed app type"
    );

    let spec = serde_json::json!({"signType": "aes", "signAlgorithm": "aes-128-cfb"});
    let mut key: SignatureKey = object("SignatureKey", spec);
    key.status = Some(first_status(&key));
    key.spec.sign_algorithm = Some(SignAlgorithm::Aes256Cfb);
    assert_ne!(
        key.previous_status().attributes,
        Some(key.intent().attributes),
        "a changed algorithm"
    );
    assert!(matches!(
        key.intent().attributes,
        Attributes::Signature {
            sign_type: SignType::Aes,
            algorithm: Some(SignAlgorithm::Aes256Cfb),
            ..
        }
    ));
}

/// `rotation.interval` may have a fraction of a second (`90.5s`); the
/// status keeps whole seconds, so what keysmith writes must read back equal
/// or each pass writes again.
#[test]
fn a_fractional_interval_reads_back_equal() {
    for interval in ["2.3h", "90.5s", "1m0.25s"] {
        let spec = serde_json::json!({"rotation": {"interval": interval}});
        let app: GatewayApp = object("GatewayApp", spec);
        let written = first_status(&app);
        assert!(written.rotation.next_rotation_time.is_some(), "{interval}");
        assert_eq!(through_the_apiserver(&written), written, "{interval}");
    }
}
