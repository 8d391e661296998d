use super::*;
use crate::api::*;
use serde_json::{Value, json};

fn app(name: &str, spec: Value) -> GatewayApp {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn sigkey(name: &str, spec: Value) -> SignatureKey {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn fields(violations: Vec<Violation>) -> Vec<String> {
    violations.into_iter().map(|v| v.field).collect()
}

#[test]
fn an_empty_spec_with_a_good_name_is_valid() {
    assert!(check_gateway_app(&app("orders-client", json!({}))).is_empty());
    assert!(check_signature_key(&sigkey("orders-backend", json!({}))).is_empty());
}

#[test]
fn derived_names_follow_the_name_rule() {
    assert_eq!(
        fields(check_gateway_app(&app("1-orders", json!({})))),
        ["spec.appName"]
    );
    assert_eq!(
        fields(check_gateway_app(&app("ab", json!({})))),
        ["spec.appName"]
    );
    assert!(check_gateway_app(&app("1-orders", json!({"appName": "orders"}))).is_empty());
    let long = format!("a{}", "b".repeat(64));
    assert_eq!(
        fields(check_signature_key(&sigkey(&long, json!({})))),
        ["spec.keyName"]
    );
    assert!(check_signature_key(&sigkey(&long, json!({"keyName": "short_name"}))).is_empty());
}

#[test]
fn field_rules_name_the_field_and_the_rule() {
    let v = check_gateway_app(&app("a-app", json!({"appKey": "-nope-nope"})));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].field, "spec.appKey");
    assert!(
        v[0].rule.contains("starts with a character"),
        "{}",
        v[0].rule
    );
    assert!(v[0].rule.contains("8–64 characters"), "{}", v[0].rule);
    let v = check_gateway_app(&app("a-app", json!({"secret": {"name": "Not_A_Name"}})));
    assert_eq!(fields(v), ["spec.secret.name"]);
    let v = check_gateway_app(&app(
        "a-app",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "a/b"}}}),
    ));
    assert_eq!(fields(v), ["spec.appSecretFrom.secretKeyRef.key"]);
}

#[test]
fn generator_length_needs_128_bits_and_must_fit_the_rule() {
    let len = |length: u32, symbols: bool| {
        fields(check_gateway_app(&app(
            "a-app",
            json!({"generator": {"length": length, "symbols": symbols}}),
        )))
    };
    assert_eq!(len(21, false), ["spec.generator.length"]);
    assert!(len(22, false).is_empty());
    assert_eq!(len(20, true), ["spec.generator.length"]);
    assert!(len(21, true).is_empty());
    assert!(len(64, false).is_empty());
    assert_eq!(len(65, false), ["spec.generator.length"]);

    let sig = |spec: Value| fields(check_signature_key(&sigkey("a-key", spec)));
    assert!(
        sig(
            json!({"signType": "aes", "signAlgorithm": "aes-128-cfb", "generator": {"length": 16}})
        )
        .is_empty()
    );
    assert_eq!(
        sig(
            json!({"signType": "aes", "signAlgorithm": "aes-128-cfb", "generator": {"length": 32}})
        ),
        ["spec.generator.length"]
    );
    assert_eq!(
        sig(json!({"signType": "basic", "generator": {"length": 16}})),
        ["spec.generator.length"]
    );
    assert!(sig(json!({"generator": {"length": 22}})).is_empty());
}

#[test]
fn rotation_interval_is_a_duration_of_at_least_a_minute() {
    let interval = |i: &str| {
        fields(check_gateway_app(&app(
            "a-app",
            json!({"rotation": {"interval": i}}),
        )))
    };
    assert!(interval("1m").is_empty());
    assert!(interval("720h").is_empty());
    assert_eq!(interval("59s"), ["spec.rotation.interval"]);
    assert_eq!(interval("0"), ["spec.rotation.interval"]);
    assert_eq!(interval("30d"), ["spec.rotation.interval"]);
    let keep = |k: &str| {
        fields(check_gateway_app(&app(
            "a-app",
            json!({"rotation": {"keepPrevious": k}}),
        )))
    };
    assert!(keep("0").is_empty());
    assert!(keep("1h").is_empty());
    assert_eq!(keep("1 hour"), ["spec.rotation.keepPrevious"]);
}

#[test]
fn sign_algorithm_is_required_for_aes_and_forbidden_otherwise() {
    let sig = |spec: Value| fields(check_signature_key(&sigkey("a-key", spec)));
    assert_eq!(sig(json!({"signType": "aes"})), ["spec.signAlgorithm"]);
    assert_eq!(
        sig(json!({"signAlgorithm": "aes-128-cfb"})),
        ["spec.signAlgorithm"]
    );
    assert_eq!(
        sig(json!({"signType": "basic", "signAlgorithm": "aes-128-cfb"})),
        ["spec.signAlgorithm"]
    );
    assert!(sig(json!({"signType": "aes", "signAlgorithm": "aes-256-cfb"})).is_empty());
}

#[test]
fn sign_key_rule_follows_the_sign_type() {
    let sig = |spec: Value| fields(check_signature_key(&sigkey("a-key", spec)));
    let k16 = "a".repeat(16);
    let k32 = "a".repeat(32);
    assert!(sig(json!({"signKey": "abcd_1234"})).is_empty());
    assert_eq!(sig(json!({"signKey": "abcd"})), ["spec.signKey"]); // hmac needs 8
    assert!(sig(json!({"signType": "basic", "signKey": "abcd"})).is_empty());
    assert_eq!(
        sig(json!({"signType": "basic", "signKey": "1bcd"})),
        ["spec.signKey"]
    );
    assert!(
        sig(json!({"signType": "aes", "signAlgorithm": "aes-128-cfb", "signKey": k16})).is_empty()
    );
    assert_eq!(
        sig(json!({"signType": "aes", "signAlgorithm": "aes-128-cfb", "signKey": k32})),
        ["spec.signKey"]
    );
    assert!(
        sig(json!({"signType": "aes", "signAlgorithm": "aes-256-cfb", "signKey": k32})).is_empty()
    );
    assert_eq!(
        sig(json!({"signType": "aes", "signAlgorithm": "aes-256-cfb", "signKey": k16})),
        ["spec.signKey"]
    );
    // Beyond every type's rule: both the schema-level and the type rule report it.
    assert_eq!(
        sig(json!({"signKey": "a".repeat(33)})),
        ["spec.signKey", "spec.signKey"]
    );
}

/// Every sign type of `SignType::ALL` gets, from its row, a sign_key rule
/// per algorithm and a generator rule: nothing is listed by hand.
#[test]
fn every_sign_type_has_the_rules_of_its_row() {
    let rules = signature_key_rules();
    let messages: Vec<&str> = rules.cross.iter().map(|r| r.message.as_str()).collect();
    for t in SignType::ALL {
        let row = t.rules();
        for rule in row.key.every_rule() {
            let want = format!("must be {}", rule.describe());
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with("for ") && m.ends_with(&want)),
                "{t:?}: no sign_key rule {}",
                rule.name
            );
        }
        assert!(
            messages.iter().any(|m| m.contains(row.secret.name)),
            "{t:?}: no generator rule for {}",
            row.secret.name
        );
        for algorithm in row.key.algorithms() {
            let spec = json!({"signType": t.as_str(), "signAlgorithm": algorithm.as_str()});
            assert!(fields(check_signature_key(&sigkey("a-key", spec))).is_empty());
        }
    }
}

#[test]
fn secret_key_names_must_differ() {
    let keys = |k: Value| {
        fields(check_gateway_app(&app(
            "a-app",
            json!({"secret": {"keys": k}}),
        )))
    };
    assert!(keys(json!({"appKey": "key", "appSecret": "secret"})).is_empty());
    assert_eq!(keys(json!({"appKey": "app_secret"})), ["spec.secret.keys"]);
    assert_eq!(
        keys(json!({"appId": "app_secret_previous"})),
        ["spec.secret.keys"]
    );
    let sig = |k: Value| {
        fields(check_signature_key(&sigkey(
            "a-key",
            json!({"secret": {"keys": k}}),
        )))
    };
    assert_eq!(sig(json!({"signKey": "sign_type"})), ["spec.secret.keys"]);
    assert!(sig(json!({"signKey": "key", "signSecret": "secret"})).is_empty());
}

#[test]
fn copied_labels_and_annotations_follow_kubernetes_rules() {
    let check = |secret: Value| check_gateway_app(&app("app", json!({"secret": secret})));
    assert!(
        check(
            json!({"labels": {"konghq.com/credential": "key-auth", "k": ""},
                         "annotations": {"example.com/x": "any value: !"}})
        )
        .is_empty()
    );
    assert_eq!(
        fields(check(json!({"labels": {"bad label!": "x"}}))),
        ["spec.secret.labels"]
    );
    assert_eq!(
        fields(check(json!({"labels": {"team": "not a label value!"}}))),
        ["spec.secret.labels.team"]
    );
    assert_eq!(
        fields(check(json!({"annotations": {"Example.COM/x": "v"}}))),
        ["spec.secret.annotations"]
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        fields(check(json!({"labels": many}))),
        ["spec.secret.labels"]
    );
    let v = check_signature_key(&sigkey(
        "key",
        json!({"secret": {"annotations": {"a b": "x"}}}),
    ));
    assert_eq!(fields(v), ["spec.secret.annotations"]);
}

#[test]
fn violations_never_echo_values() {
    let secretish = "Zz9-very-distinctive-value";
    let v = check_gateway_app(&app("a-app", json!({"appKey": format!("!{secretish}")})));
    assert!(!v.is_empty());
    assert!(v.iter().all(|v| !v.to_string().contains(secretish)));
}

mod agreement_with_cel {
    //! The CEL text of every cross-field rule, evaluated by kube's client-side
    //! CEL engine on the generated CRD, fails exactly where the Rust predicate
    //! beside it does. Random specs over the values that matter.
    use super::*;
    use crate::admission::schema;
    use proptest::prelude::*;

    fn openapi(
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Value {
        serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap()
    }

    fn cel_messages(schema: &Value, object: &Value) -> Vec<String> {
        let mut out: Vec<String> =
            match kube::core::cel::Validator::new().validate(schema, object, None) {
                Ok(()) => vec![],
                Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
            };
        out.sort();
        out
    }

    fn rust_cross_messages<S>(rules: &KindRules<S>, spec: &S, name: &str) -> Vec<String> {
        let mut out: Vec<String> = rules
            .cross
            .iter()
            .filter(|r| !(r.holds)(spec, name))
            .map(|r| r.message.clone())
            .collect();
        out.sort();
        out
    }

    fn opt<T: std::fmt::Debug + Clone + 'static>(
        values: Vec<T>,
    ) -> impl Strategy<Value = Option<T>> {
        proptest::option::of(proptest::sample::select(values))
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "orders-client",
            "ab",
            "abc",
            "1-orders",
            "a.b.c",
            "x".repeat(64).as_str().to_string().leak(),
            "y".repeat(65).leak(),
        ])
        .prop_map(String::from)
    }

    fn key_names() -> impl Strategy<Value = Option<Value>> {
        opt(vec![
            json!({}),
            json!({"appKey": "key"}),
            json!({"appKey": "app_secret"}),
            json!({"appId": "app_secret_previous"}),
            json!({"appSecret": "s", "appId": "s_previous"}),
            json!({"signKey": "sign_type"}),
            json!({"signKey": "k", "signSecret": "s"}),
            json!({"signSecret": "sign_key"}),
            json!({"signKey": "sign_secret_previous"}),
        ])
    }

    fn generator() -> impl Strategy<Value = Option<Value>> {
        (
            opt(vec![8u32, 15, 16, 17, 20, 21, 22, 32, 64, 65]),
            opt(vec![true, false]),
        )
            .prop_map(|(l, s)| {
                let mut g = serde_json::Map::new();
                if let Some(l) = l {
                    g.insert("length".into(), json!(l));
                }
                if let Some(s) = s {
                    g.insert("symbols".into(), json!(s));
                }
                Some(Value::Object(g))
            })
    }

    fn interval() -> impl Strategy<Value = Option<Value>> {
        opt(vec![
            "1m", "59s", "60s", "0", "720h", "0.5m", "1h30m", "1000ms",
        ])
        .prop_map(|i| i.map(|i| json!({"interval": i})))
    }

    /// Selector expressions around the values-cardinality rule.
    fn rollout() -> impl Strategy<Value = Option<Value>> {
        let expressions = |e: Value| json!({"selector": {"matchExpressions": e}});
        opt(vec![
            expressions(json!([{"key": "app", "operator": "In"}])),
            expressions(json!([{"key": "app", "operator": "NotIn", "values": []}])),
            expressions(json!([{"key": "app", "operator": "In", "values": ["a"]}])),
            expressions(json!([{"key": "app", "operator": "Exists", "values": ["a"]}])),
            expressions(json!([{"key": "app", "operator": "DoesNotExist", "values": []}])),
            expressions(
                json!([{"key": "app", "operator": "Exists"}, {"key": "b", "operator": "NotIn"}]),
            ),
            expressions(json!([{"key": "app", "operator": "Nope", "values": ["a"]}])),
            json!({"selector": {"matchLabels": {"app": "x"}}}),
            json!({"targets": [{"kind": "Deployment", "name": "web"}]}),
        ])
    }

    /// sign_keys around every sign type's rules: at each rule's bounds and
    /// just outside, with a digit first, and a few in between.
    fn sign_keys() -> Vec<String> {
        let mut keys: Vec<String> = ["abcd", "1bcd", "abcd_123", "abcdefg"]
            .map(String::from)
            .to_vec();
        for t in SignType::ALL {
            for rule in t.rules().key.every_rule() {
                for len in [
                    rule.min_len - 1,
                    rule.min_len,
                    rule.max_len,
                    rule.max_len + 1,
                ] {
                    keys.push("a".repeat(len));
                    keys.push(format!("1{}", "b".repeat(len.saturating_sub(1))));
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    fn insert(spec: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>) {
        if let Some(value) = value {
            spec.insert(key.into(), value);
        }
    }

    #[test]
    fn the_cel_engine_really_evaluates_our_rules() {
        // Guards the properties below against a silently inert engine.
        let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
            "metadata": {"name": "1-bad"},
            "spec": {"signType": "aes", "rotation": {"interval": "59s"}, "generator": {"length": 32}}});
        let messages = cel_messages(&openapi(&schema::signature_key_crd()), &object);
        assert_eq!(messages.len(), 4, "{messages:#?}");
        let typed: SignatureKey = serde_json::from_value(object).unwrap();
        assert_eq!(
            messages,
            rust_cross_messages(&signature_key_rules(), &typed.spec, "1-bad")
        );
    }

    /// The CEL of the map rules (keys of labels/annotations) agrees with the
    /// Rust check, key by key, on the client-side CEL engine.
    #[test]
    fn map_key_rules_agree() {
        let keys = [
            "team",
            "konghq.com/credential",
            "bad label!",
            "a/b/c",
            "/x",
            "Upper.Case/x",
            "x.example/Name_1",
            "-x",
            "x-",
            "",
            "a.b",
            "😀",
        ];
        let long_name = "a".repeat(64);
        let long_prefix = format!("{}/x", "a".repeat(254));
        let ok_prefix = format!("{}/x", "a".repeat(253));
        let all: Vec<&str> = keys
            .iter()
            .copied()
            .chain([long_name.as_str(), long_prefix.as_str(), ok_prefix.as_str()])
            .collect();
        let schema = openapi(&schema::gateway_app_crd());
        for key in all {
            for field in ["labels", "annotations"] {
                let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                    "metadata": {"name": "app"}, "spec": {"secret": {field: {key: ""}}}});
                let cel_ok = cel_messages(&schema, &object).is_empty();
                assert_eq!(
                    cel_ok,
                    crate::rules::is_qualified_name(key),
                    "{field} key {key:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        #[test]
        fn gateway_app_rules_agree(
            name in name(),
            app_name in opt(vec!["orders", "x1"]),
            generator in generator(),
            rotation in interval(),
            keys in key_names(),
            rollout in rollout(),
        ) {
            let mut spec = serde_json::Map::new();
            insert(&mut spec, "rollout", rollout);
            insert(&mut spec, "appName", app_name.map(|n| json!(n)));
            insert(&mut spec, "generator", generator);
            insert(&mut spec, "rotation", rotation);
            insert(&mut spec, "secret", keys.map(|k| json!({"keys": k})));
            let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                                "metadata": {"name": name}, "spec": spec});
            let Ok(typed) = serde_json::from_value::<GatewayApp>(object.clone()) else { return Ok(()); };
            let rules = gateway_app_rules();
            prop_assert_eq!(
                cel_messages(&openapi(&schema::gateway_app_crd()), &object),
                rust_cross_messages(&rules, &typed.spec, &name)
            );
        }

        #[test]
        fn signature_key_rules_agree(
            name in name(),
            sign_type in opt(SignType::ALL.map(SignType::as_str).to_vec()),
            algorithm in opt(SignAlgorithm::ALL.map(SignAlgorithm::as_str).to_vec()),
            sign_key in opt(sign_keys()),
            generator in generator(),
            rotation in interval(),
            keys in key_names(),
            rollout in rollout(),
        ) {
            let mut spec = serde_json::Map::new();
            insert(&mut spec, "rollout", rollout);
            insert(&mut spec, "signType", sign_type.map(|t| json!(t)));
            insert(&mut spec, "signAlgorithm", algorithm.map(|a| json!(a)));
            insert(&mut spec, "signKey", sign_key.map(|k| json!(k)));
            insert(&mut spec, "generator", generator);
            insert(&mut spec, "rotation", rotation);
            insert(&mut spec, "secret", keys.map(|k| json!({"keys": k})));
            let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
                                "metadata": {"name": name}, "spec": spec});
            let Ok(typed) = serde_json::from_value::<SignatureKey>(object.clone()) else { return Ok(()); };
            let rules = signature_key_rules();
            prop_assert_eq!(
                cel_messages(&openapi(&schema::signature_key_crd()), &object),
                rust_cross_messages(&rules, &typed.spec, &name)
            );
        }
    }
}

mod hostile_input {
    //! The manifest reader (`keysmith validate`) on generated input: arbitrary
    //! bytes, and YAML shaped like our kinds with random fields, types and
    //! values. It never panics; it answers with findings or a parse error.
    //! `PROPTEST_CASES` raises the number of cases (CI: the default below).
    use crate::admission::manifest::check_text;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(300)
    }

    /// Field names of both kinds (and some that are not), at any depth.
    fn field() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "appName",
            "remark",
            "creator",
            "appType",
            "appKey",
            "appSecretFrom",
            "secretKeyRef",
            "name",
            "key",
            "generator",
            "length",
            "symbols",
            "rotation",
            "interval",
            "rotateAppKey",
            "rotateSignKey",
            "keepPrevious",
            "resetRequest",
            "secret",
            "keys",
            "labels",
            "annotations",
            "deletionPolicy",
            "keyName",
            "signType",
            "signAlgorithm",
            "signKey",
            "signSecretFrom",
            "appSecret",
            "appId",
            "signSecret",
            "rollout",
            "targets",
            "selector",
            "matchLabels",
            "matchExpressions",
            "operator",
            "values",
            "items",
            "spec",
            "metadata",
            "kind",
            "apiVersion",
            "",
            "😀",
            "a.b/c",
        ])
        .prop_map(String::from)
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,80}".prop_map(Value::from),
            proptest::sample::select(vec![
                "hmac",
                "aes",
                "basic",
                "aes-128-cfb",
                "aes-256-cfb",
                "USER",
                "apig",
                "Delete",
                "Retain",
                "720h",
                "0",
                "1m",
                "-1h",
                "99999999999999h",
            ])
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(field(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn document() -> impl Strategy<Value = Value> {
        (
            proptest::sample::select(vec!["GatewayApp", "SignatureKey", "List", "Secret"]),
            proptest::sample::select(vec!["keysmith.dev/v1alpha1", "v1", "keysmith.dev/v2"]),
            value(),
            value(),
        )
            .prop_map(|(kind, api_version, metadata, spec)| {
                json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "spec": spec, "items": [spec]})
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_text(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn arbitrary_yaml_text_never_panics(text in "[a-zA-Z0-9:{}\\[\\]\\-,\"'&*!|>#%@ \\n]{0,300}") {
            let _ = check_text(&text);
        }

        #[test]
        fn documents_of_our_kinds_with_random_fields_are_answered(docs in proptest::collection::vec(document(), 1..4)) {
            let text = docs
                .iter()
                .map(|d| serde_norway::to_string(d).unwrap())
                .collect::<Vec<_>>()
                .join("---\n");
            let findings = check_text(&text);
            prop_assert!(findings.is_ok(), "valid YAML is never a parse error: {findings:?}");
        }
    }
}

mod bounded_input {
    //! SPEC §10 "Bounded input": every list, map and string of both specs has
    //! a maximum in the schema, and the offline validator holds the same.
    use super::*;
    use crate::admission::bounds::*;
    use crate::admission::schema;

    fn spec_schema(
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Value {
        let root = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        root["properties"]["spec"].clone()
    }

    /// Every node below `node` that could hold input of any size.
    fn unbounded(node: &Value, path: &str, out: &mut Vec<String>) {
        match node["type"].as_str() {
            Some("string") if node.get("maxLength").is_none() && node.get("enum").is_none() => {
                out.push(path.to_string())
            }
            Some("array") if node.get("maxItems").is_none() => out.push(path.to_string()),
            Some("object")
                if node.get("additionalProperties").is_some()
                    && node.get("maxProperties").is_none() =>
            {
                out.push(path.to_string())
            }
            _ => {}
        }
        if let Some(fields) = node["properties"].as_object() {
            for (name, child) in fields {
                unbounded(child, &format!("{path}.{name}"), out);
            }
        }
        if node["items"].is_object() {
            unbounded(&node["items"], &format!("{path}[*]"), out);
        }
        if node["additionalProperties"].is_object() {
            unbounded(&node["additionalProperties"], &format!("{path}.*"), out);
        }
    }

    #[test]
    fn every_string_list_and_map_of_both_specs_is_bounded() {
        for crd in schema::crds() {
            let mut out = Vec::new();
            unbounded(&spec_schema(&crd), "spec", &mut out);
            assert!(
                out.is_empty(),
                "{}: unbounded {out:#?}",
                crd.spec.names.kind
            );
        }
    }

    #[test]
    fn every_bound_is_rendered_where_its_path_leads() {
        for crd in [schema::gateway_app_crd(), schema::signature_key_crd()] {
            let mut root = serde_json::to_value(&crd).unwrap()["spec"]["versions"][0]["schema"]
                ["openAPIV3Schema"]
                .clone();
            for bound in common_bounds() {
                assert!(
                    schema::bound_node(&mut root, bound.path).is_some(),
                    "{}: {} leads nowhere",
                    crd.spec.names.kind,
                    bound.field()
                );
            }
        }
    }

    fn annotations(entries: usize, value_len: usize) -> Value {
        let map: serde_json::Map<String, Value> = (0..entries)
            .map(|i| (format!("a{i:02}"), json!("v".repeat(value_len))))
            .collect();
        json!({"secret": {"annotations": map}})
    }

    #[test]
    fn annotations_are_bounded_per_value_and_in_total() {
        let check = |spec: Value| fields(check_gateway_app(&app("app", spec)));
        // Keys of three characters: four values of 4093 make 16384 together.
        assert!(check(annotations(4, MAX_ANNOTATION_VALUE_LEN - 3)).is_empty());
        assert_eq!(
            check(annotations(4, MAX_ANNOTATION_VALUE_LEN - 2)),
            ["spec.secret.annotations"]
        );
        assert!(check(annotations(1, MAX_ANNOTATION_VALUE_LEN)).is_empty());
        assert_eq!(
            check(annotations(1, MAX_ANNOTATION_VALUE_LEN + 1)),
            ["spec.secret.annotations.a00"]
        );
        assert!(check(annotations(64, 1)).is_empty());
        assert_eq!(check(annotations(65, 1)), ["spec.secret.annotations"]);
        // Characters, not bytes, as the apiserver counts them.
        let wide = json!({"secret": {"annotations": {"k": "✓".repeat(MAX_ANNOTATION_VALUE_LEN)}}});
        assert!(check(wide).is_empty());
    }

    /// The input: 60 annotations of 20 KiB (1.2 MB per resource).
    #[test]
    fn the_memory_exhaustion_input_is_refused() {
        let v = check_signature_key(&sigkey("key", annotations(60, 20 * 1024)));
        assert!(
            v.iter().any(|v| v.field == "spec.secret.annotations"),
            "{v:?}"
        );
        assert_eq!(v.len(), 61, "every value and the total: {v:?}");
    }

    fn selector(expressions: Value) -> Value {
        json!({"rollout": {"selector": {"matchExpressions": expressions}}})
    }

    #[test]
    fn selectors_take_only_valid_operators_with_the_right_values() {
        let check = |e: Value| fields(check_gateway_app(&app("app", selector(e))));
        assert!(
            check(json!([
                {"key": "app", "operator": "In", "values": ["a", "b"]},
                {"key": "app", "operator": "NotIn", "values": ["c"]},
                {"key": "example.com/tier", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ]))
            .is_empty()
        );
        assert_eq!(
            check(json!([{"key": "app", "operator": "Equals", "values": ["a"]}])),
            ["spec.rollout.selector.matchExpressions[0].operator"]
        );
        assert_eq!(
            check(json!([{"key": "app", "operator": "in", "values": ["a"]}])),
            ["spec.rollout.selector.matchExpressions[0].operator"]
        );
        assert_eq!(
            check(json!([{"key": "app", "operator": "In"}])),
            ["spec.rollout.selector.matchExpressions"]
        );
        assert_eq!(
            check(json!([{"key": "app", "operator": "Exists", "values": ["a"]}])),
            ["spec.rollout.selector.matchExpressions"]
        );
        assert_eq!(
            check(json!([{"key": "bad key!", "operator": "Exists"}])),
            ["spec.rollout.selector.matchExpressions[0].key"]
        );
        assert_eq!(
            check(json!([{"key": "app", "operator": "In", "values": ["ok", "not ok!"]}])),
            ["spec.rollout.selector.matchExpressions[0].values[1]"]
        );
        let values: Vec<String> = (0..=MAX_SELECTOR_VALUES).map(|i| format!("v{i}")).collect();
        assert_eq!(
            check(json!([{"key": "app", "operator": "In", "values": values}])),
            ["spec.rollout.selector.matchExpressions[0].values"]
        );
        let many = vec![json!({"key": "app", "operator": "Exists"}); MAX_SELECTOR_EXPRESSIONS + 1];
        assert_eq!(
            check(json!(many)),
            ["spec.rollout.selector.matchExpressions"]
        );
    }

    #[test]
    fn selector_labels_follow_label_rules_and_are_few() {
        let check = |labels: Value| {
            fields(check_signature_key(&sigkey(
                "key",
                json!({"rollout": {"selector": {"matchLabels": labels}}}),
            )))
        };
        assert!(check(json!({"app": "orders", "example.com/tier": ""})).is_empty());
        assert_eq!(
            check(json!({"app": "not a value!"})),
            ["spec.rollout.selector.matchLabels.app"]
        );
        assert_eq!(
            check(json!({"bad key!": "x"})),
            ["spec.rollout.selector.matchLabels"]
        );
        let many: serde_json::Map<String, Value> = (0..=MAX_SELECTOR_LABELS)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        assert_eq!(check(json!(many)), ["spec.rollout.selector.matchLabels"]);
    }

    #[test]
    fn rollout_targets_are_bounded() {
        let check = |targets: Value| {
            fields(check_gateway_app(&app(
                "app",
                json!({"rollout": {"targets": targets}}),
            )))
        };
        let target = |name: String| json!({"kind": "Deployment", "name": name});
        let many: Vec<Value> = (0..MAX_ROLLOUT_TARGETS)
            .map(|i| target(format!("w{i}")))
            .collect();
        assert!(check(json!(many)).is_empty());
        let too_many: Vec<Value> = (0..=MAX_ROLLOUT_TARGETS)
            .map(|i| target(format!("w{i}")))
            .collect();
        assert_eq!(check(json!(too_many)), ["spec.rollout.targets"]);
        let long = format!("{}.{}", "a".repeat(126), "b".repeat(127));
        assert_eq!(long.len(), 254);
        assert_eq!(
            check(json!([target(long)])),
            ["spec.rollout.targets", "spec.rollout.targets[0].name"]
        );
    }

    fn cel_messages(schema: &Value, object: &Value) -> Vec<String> {
        match kube::core::cel::Validator::new().validate(schema, object, None) {
            Ok(()) => vec![],
            Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
        }
    }

    fn openapi(
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Value {
        serde_json::to_value(crd).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            .clone()
    }

    /// The CEL of the bounds (the annotations' total, the expression keys)
    /// fails exactly where the Rust check does, on the client-side engine.
    #[test]
    fn bound_cel_agrees_with_the_rust_check() {
        let schema = openapi(&schema::gateway_app_crd());
        let object = |spec: Value| {
            json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                   "metadata": {"name": "app"}, "spec": spec})
        };
        let cases = [
            annotations(0, 0),
            annotations(4, MAX_ANNOTATION_VALUE_LEN - 3),
            annotations(4, MAX_ANNOTATION_VALUE_LEN - 2),
            annotations(8, 2000),
            annotations(9, 2000),
            selector(json!([{"key": "app", "operator": "Exists"}])),
            selector(json!([{"key": "bad key!", "operator": "Exists"}])),
            selector(json!([{"key": format!("{}/x", "a".repeat(254)), "operator": "Exists"}])),
            selector(json!([{"key": format!("{}/x", "a".repeat(253)), "operator": "Exists"}])),
            selector(json!([{"key": "a/b/c", "operator": "Exists"}])),
        ];
        for spec in cases {
            let rust_ok = check_gateway_app(&app("app", spec.clone())).is_empty();
            let cel = cel_messages(&schema, &object(spec.clone()));
            assert_eq!(
                cel.is_empty(),
                rust_ok,
                "{cel:?} for {}",
                &spec.to_string()[..80.min(spec.to_string().len())]
            );
        }
    }
}
