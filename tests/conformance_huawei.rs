//! The Huawei APIG conformance server and keysmith's Huawei client, proven
//! against Huawei's official Python SDK (SPEC §11.3), then keysmith's client
//! against the server, faults included. No Kubernetes control plane.
//!
//! - `the_official_sdk_drives_every_operation`: the SDK signs, the server
//!   verifies; the SDK's models parse every answer; paged lists; error codes.
//! - `the_server_refuses_bad_signatures_keys_and_clocks`: through the SDK.
//! - `keysmith_signs_byte_for_byte_as_the_sdk`: fixed requests, both signers.
//! - `keysmith_client_drives_every_trait_operation` and the fault tests.
//!
//! Every test fails (never skips) when the SDK venv or the server cannot start.

mod support;

use std::time::Duration;

use keysmith::providers::huawei::HuaweiClient;
use keysmith::providers::huawei::sign::{self, SignInput};
use keysmith::providers::{
    AccessKey, AppWrite, Connection, GatewayApi, GatewayError, Limits, Provider, SecretValue,
    SignatureWrite,
};
use serde_json::{Value, json};
use support::conformance::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, ConformanceServer, INSTANCE_ID, PROJECT_ID, REGION,
    run_sdk_script,
};

fn sdk_args<'a>(mode: &'a str, server: &'a ConformanceServer) -> Vec<&'a str> {
    vec![
        mode,
        &server.endpoint,
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        PROJECT_ID,
        INSTANCE_ID,
    ]
}

fn run_json(script: &str, args: &[&str]) -> Value {
    let out = run_sdk_script(script, args);
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed {out:?}: {e}"))
}

#[test]
fn the_official_sdk_drives_every_operation() {
    let server = ConformanceServer::start("huawei");
    let summary = run_json("huawei_drive.py", &sdk_args("drive", &server));
    assert_eq!(summary["apps_created"], 7);
    assert_eq!(summary["app_pages"], json!([3, 3, 1]));
    let errors = &summary["errors"];
    for (case, status, code) in [
        ("duplicate_name", 400, "APIG.3203"),
        ("duplicate_key", 400, "APIG.3310"),
        ("bad_name", 400, "APIG.2011"),
        ("app_gone", 404, "APIG.3004"),
        ("duplicate_sign", 400, "APIG.3207"),
        ("bad_sign_key", 400, "APIG.2011"),
        ("sign_gone", 404, "APIG.3017"),
        ("no_instance", 404, "APIG.3030"),
        // The SDK reports any 429 as code "429" without reading the body.
        ("throttled", 429, "429"),
        ("unavailable", 500, "APIG.9999"),
    ] {
        assert_eq!(errors[case]["status"], status, "{case}: {errors}");
        assert_eq!(errors[case]["code"], code, "{case}: {errors}");
    }
}

#[test]
fn the_server_refuses_bad_signatures_keys_and_clocks() {
    let server = ConformanceServer::start("huawei");
    let out = run_json("huawei_drive.py", &sdk_args("auth", &server));
    for case in ["wrong_secret", "unknown_key", "stale_date", "future_date"] {
        assert_eq!(out[case]["status"], 401, "{case}: {out}");
        assert_eq!(out[case]["code"], "APIGW.0301", "{case}: {out}");
    }
    let unknown = out["unknown_key"]["msg"].as_str().unwrap_or_default();
    assert!(unknown.contains("ak not exist"), "{unknown}");
    let wrong = out["wrong_secret"]["msg"].as_str().unwrap_or_default();
    assert!(wrong.contains("verify aksk signature fail"), "{wrong}");
    assert_eq!(out["ten_minutes_skew"], "accepted");
}

/// One request for both signers.
struct Case {
    method: &'static str,
    path: &'static str,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<&'static str>,
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn base_headers(date: &str, content_type: &str) -> Vec<(String, String)> {
    pairs(&[
        ("Content-Type", content_type),
        ("Host", "apig.cn-north-4.myhuaweicloud.com"),
        ("X-Project-Id", PROJECT_ID),
        ("X-Sdk-Date", date),
        ("User-Agent", "huaweicloud-usdk-python/3.0"),
    ])
}

fn sign_cases() -> Vec<Case> {
    let apps = "/v2/0123456789abcdef0123456789abcdef/apigw/instances/eddc4d25480b4cd6b512f270a1b8b341/apps";
    let mut odd_headers = base_headers("20261202T004735Z", "text/plain");
    odd_headers.push(("X-Sdk-Content-Sha256".into(), "UNSIGNED-PAYLOAD".into()));
    odd_headers.push(("X_Not_Signed".into(), "x".into()));
    odd_headers.push(("X-Padded".into(), "  spaced value  ".into()));
    vec![
        Case {
            method: "GET",
            path: apps,
            query: pairs(&[("offset", "0"), ("limit", "100")]),
            headers: base_headers("20261202T004735Z", "application/json"),
            body: None,
        },
        Case {
            method: "GET",
            path: "/v2/p/apigw/instances/i/apps/",
            query: pairs(&[
                ("name", "a b+c/é*~"),
                ("precise_search", "name"),
                ("name", "Z&="),
                ("Upper", "x"),
            ]),
            headers: base_headers("20000101T000000Z", "application/json"),
            body: None,
        },
        Case {
            method: "POST",
            path: apps,
            query: Vec::new(),
            headers: base_headers("20261202T004735Z", "application/json;charset=utf-8"),
            body: Some(
                r#"{"name": "orders_client", "remark": "é", "app_key": "key12345", "app_secret": "s3cr3t!@#"}"#,
            ),
        },
        Case {
            method: "PUT",
            path: "/v2/p/apigw/instances/i/apps/secret/a%20b:c",
            query: Vec::new(),
            headers: base_headers("20261231T235959Z", "application/json;charset=utf-8"),
            body: Some(r#"{"app_secret":"x"}"#),
        },
        Case {
            method: "DELETE",
            path: "/v2/p/apigw/instances/i/signs/abc",
            query: Vec::new(),
            headers: base_headers("20261202T004735Z", "application/json"),
            body: Some(""),
        },
        Case {
            method: "post",
            path: "/",
            query: pairs(&[("k", "")]),
            headers: odd_headers,
            body: Some("plain text body"),
        },
    ]
}

fn case_json(case: &Case, ak: &str, sk: &str) -> Value {
    json!({
        "ak": ak, "sk": sk, "method": case.method, "host": "apig.cn-north-4.myhuaweicloud.com",
        "path": case.path,
        "query": case.query.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "headers": case.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "body": case.body,
    })
}

#[test]
fn keysmith_signs_byte_for_byte_as_the_sdk() {
    let (ak, sk) = ("HPUAXXXXXXXXXXXXXXXX", "a-secret/with+odd=chars");
    let cases = sign_cases();
    let input = Value::Array(cases.iter().map(|c| case_json(c, ak, sk)).collect());
    let sdk = run_json("huawei_sign.py", &[&input.to_string()]);
    let sdk = sdk.as_array().expect("a list");
    assert_eq!(sdk.len(), cases.len());
    for (case, theirs) in cases.iter().zip(sdk) {
        let ours = sign::authorization(
            ak,
            sk,
            &SignInput {
                method: case.method,
                path: case.path,
                query: &case.query,
                headers: &case.headers,
                body: case.body.unwrap_or("").as_bytes(),
            },
        );
        assert_eq!(
            ours, theirs["authorization"],
            "{} {}",
            case.method, case.path
        );
        let query = sign::canonical_query(&case.query);
        let uri = match query.is_empty() {
            true => case.path.to_string(),
            false => format!("{}?{query}", case.path),
        };
        assert_eq!(uri, theirs["uri"], "the query on the wire");
    }
}

fn connection(
    server: &ConformanceServer,
    secret: &str,
    instance: &str,
    limits: Limits,
) -> Connection {
    Connection {
        provider: Provider::HuaweiApig,
        endpoint: server.endpoint.clone(),
        region: REGION.into(),
        project_id: Some(PROJECT_ID.into()),
        instance_id: Some(instance.into()),
        access_key: AccessKey {
            id: ACCESS_KEY_ID.into(),
            secret: SecretValue::new(secret),
        },
        ca_bundle: None,
        limits,
    }
}

fn client(server: &ConformanceServer) -> HuaweiClient {
    let limits = Limits {
        requests_per_second: 200.0,
        burst: 200,
        timeout: Duration::from_secs(2),
    };
    HuaweiClient::new(&connection(server, ACCESS_KEY_SECRET, INSTANCE_ID, limits))
        .expect("a client")
        .with_page_size(2)
}

fn app(name: &str, key: &str, secret: &str) -> AppWrite {
    AppWrite {
        name: name.into(),
        remark: format!("{name} remark"),
        key: key.into(),
        secret: SecretValue::new(secret),
    }
}

fn code(error: &GatewayError) -> String {
    match error {
        GatewayError::Rejected { code, .. }
        | GatewayError::Unauthorized { code, .. }
        | GatewayError::NotFound { code, .. } => code.clone(),
        other => other.code().to_string(),
    }
}

#[tokio::test]
async fn keysmith_client_checks_credentials_and_coordinates() {
    let server = ConformanceServer::start("huawei");
    client(&server).check().await.expect("check");
    let limits = Limits::default();
    let wrong =
        HuaweiClient::new(&connection(&server, "wrong-secret", INSTANCE_ID, limits)).unwrap();
    let error = wrong.check().await.unwrap_err();
    assert!(
        matches!(error, GatewayError::Unauthorized { .. }),
        "{error}"
    );
    assert!(error.is_permanent() && !error.to_string().contains("wrong-secret"));
    let elsewhere =
        HuaweiClient::new(&connection(&server, ACCESS_KEY_SECRET, "unknown", limits)).unwrap();
    let error = elsewhere.check().await.unwrap_err();
    assert!(matches!(error, GatewayError::NotFound { .. }), "{error}");
    assert_eq!(code(&error), "APIG.3030");
}

#[tokio::test]
async fn keysmith_client_creates_apps_and_reports_refusals() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    assert!(!api.holds_several_keys());
    let created = api
        .create_app(&app("orders_client", "orderskey01", "ordersSecret01"))
        .await
        .unwrap();
    assert_eq!(created.id.len(), 32);
    assert_eq!(created.keys[0].key, "orderskey01");
    assert_eq!(
        created.keys[0].secret,
        Some(SecretValue::new("ordersSecret01"))
    );
    let duplicate = api
        .create_app(&app("orders_client", "otherkey01", "otherSecret01"))
        .await
        .unwrap_err();
    assert_eq!(code(&duplicate), "APIG.3203");
    assert!(duplicate.is_permanent());
    assert!(!duplicate.to_string().contains("otherSecret01"));
    let taken_key = api
        .create_app(&app("other_client", "orderskey01", "takenSecret01"))
        .await
        .unwrap_err();
    assert_eq!(code(&taken_key), "APIG.3310");
    assert!(
        !format!("{taken_key} {taken_key:?}").contains("orderskey01"),
        "{taken_key}"
    );
    let stats = server.stats().await;
    let breach = api
        .create_app(&app("1bad", "badkey0001", "badSecret01"))
        .await
        .unwrap_err();
    assert_eq!(code(&breach), "GatewayRule");
    assert!(breach.to_string().contains("name must be 3-64"), "{breach}");
    let after = server.stats().await;
    assert_eq!(
        stats["calls"], after["calls"],
        "a breach is found before any call"
    );
}

#[tokio::test]
async fn keysmith_client_lists_apps_in_pages_and_finds_by_name() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    for i in 0..5 {
        let name = format!("paged_{i}");
        api.create_app(&app(&name, &format!("pagedkey{i:02}"), "pagedSecret01"))
            .await
            .unwrap();
    }
    let (mut names, mut page, mut pages) = (Vec::new(), Some(1), 0);
    while let Some(number) = page {
        let listed = api.list_apps(number).await.unwrap();
        assert!(listed.items.len() <= 2);
        assert!(listed.items.iter().all(|a| a.keys[0].secret.is_some()));
        names.extend(listed.items.into_iter().map(|a| a.name));
        page = listed.next;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 5);
    let found = api.find_app("paged_3").await.unwrap().expect("found");
    assert_eq!(found.keys[0].key, "pagedkey03");
    assert!(api.find_app("paged_9").await.unwrap().is_none());
}

#[tokio::test]
async fn keysmith_client_updates_resets_and_deletes_apps() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    let created = api
        .create_app(&app("orders_client", "orderskey01", "ordersSecret01"))
        .await
        .unwrap();
    api.update_app(
        &created.id,
        &app("orders_client2", "ignored01", "ignoredSecret"),
    )
    .await
    .unwrap();
    let renamed = api
        .find_app("orders_client2")
        .await
        .unwrap()
        .expect("renamed");
    let expected = ("orders_client2 remark", "orderskey01");
    assert_eq!(
        (renamed.remark.as_str(), renamed.keys[0].key.as_str()),
        expected
    );
    let secret = SecretValue::new("resetSecret02");
    api.reset_secret(&created.id, "orderskey01", "orderskey01", &secret)
        .await
        .unwrap();
    let reset = api.find_app("orders_client2").await.unwrap().unwrap();
    assert_eq!(reset.keys[0].secret, Some(secret));
    let secret = SecretValue::new("rekeySecret03");
    api.reset_secret(&created.id, "orderskey01", "orderskey02", &secret)
        .await
        .unwrap();
    let rekeyed = api.find_app("orders_client2").await.unwrap().unwrap();
    let pair = (rekeyed.keys[0].key.as_str(), rekeyed.keys[0].secret.clone());
    assert_eq!(pair, ("orderskey02", Some(secret)));
    assert!(
        api.add_key(&created.id, "k", &SecretValue::new("s"))
            .await
            .unwrap_err()
            .is_permanent()
    );
    assert!(api.remove_key(&created.id, "k").await.is_err());
    api.delete_app(&created.id).await.unwrap();
    assert!(api.find_app("orders_client2").await.unwrap().is_none());
    let gone = api.delete_app(&created.id).await.unwrap_err();
    assert!(matches!(gone, GatewayError::NotFound { .. }), "{gone}");
}

fn signature(
    name: &str,
    sign_type: &str,
    algorithm: Option<&str>,
    key: &str,
    secret: &str,
) -> SignatureWrite {
    SignatureWrite {
        name: name.into(),
        sign_type: sign_type.into(),
        algorithm: algorithm.map(str::to_string),
        key: key.into(),
        secret: SecretValue::new(secret),
    }
}

#[tokio::test]
async fn keysmith_client_creates_and_lists_signatures() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    let hmac = signature("sig_hmac", "hmac", None, "signkey01", "signSecret000001");
    let created = api.create_signature(&hmac).await.unwrap();
    assert_eq!(
        (created.sign_type.as_str(), created.key.as_str()),
        ("hmac", "signkey01")
    );
    let aes = signature(
        "sig_aes",
        "aes",
        Some("aes-128-cfb"),
        "0123456789abcdef",
        "fedcba9876543210",
    );
    api.create_signature(&aes).await.unwrap();
    let basic = signature("sig_basic", "basic", None, "basic01", "basicSecret");
    api.create_signature(&basic).await.unwrap();
    let duplicate = api.create_signature(&hmac).await.unwrap_err();
    assert_eq!(code(&duplicate), "APIG.3207");
    let misplaced = signature(
        "sig_x",
        "hmac",
        Some("aes-128-cfb"),
        "signkey01",
        "signSecret000001",
    );
    let breach = api.create_signature(&misplaced).await.unwrap_err();
    assert_eq!(code(&breach), "GatewayRule");
    let first = api.list_signatures(1).await.unwrap();
    let second = api.list_signatures(2).await.unwrap();
    let shape = (
        first.items.len(),
        first.next,
        second.items.len(),
        second.next,
    );
    assert_eq!(shape, (2, Some(2), 1, None));
    let found = api.find_signature("sig_aes").await.unwrap().expect("found");
    assert_eq!(found.secret, Some(SecretValue::new("fedcba9876543210")));
}

#[tokio::test]
async fn keysmith_client_updates_and_deletes_signatures() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    let hmac = signature("sig_hmac", "hmac", None, "signkey01", "signSecret000001");
    let created = api.create_signature(&hmac).await.unwrap();
    let changed = signature("sig_hmac2", "hmac", None, "signkey02", "signSecret000002");
    api.update_signature(&created.id, &changed).await.unwrap();
    let updated = api
        .find_signature("sig_hmac2")
        .await
        .unwrap()
        .expect("updated");
    let expected = ("signkey02", Some(SecretValue::new("signSecret000002")));
    assert_eq!((updated.key.as_str(), updated.secret.clone()), expected);
    api.delete_signature(&created.id).await.unwrap();
    assert!(api.find_signature("sig_hmac2").await.unwrap().is_none());
    let gone = api.delete_signature(&created.id).await.unwrap_err();
    assert_eq!(code(&gone), "APIG.3017");
}

async fn fault(server: &ConformanceServer, operation: &str, kind: &str, delay_ms: Option<u64>) {
    let body = json!({"operation": operation, "kind": kind, "times": 1, "delay_ms": delay_ms});
    server
        .control("POST", "/_conformance/faults", Some(body))
        .await;
}

#[tokio::test]
async fn an_unavailable_gateway_did_not_act() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    fault(&server, "CreateAnAppV2", "unavailable", None).await;
    let error = api
        .create_app(&app("fault_app", "faultkey01", "faultSecret01"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GatewayError::Unavailable { status: 500, .. }),
        "{error}"
    );
    assert!(error.may_have_acted() && !error.is_permanent());
    assert!(
        api.find_app("fault_app").await.unwrap().is_none(),
        "a 500 changed nothing"
    );
}

#[tokio::test]
async fn a_throttled_call_is_throttled() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    fault(&server, "ListAppsV2", "throttled", None).await;
    let error = api.list_apps(0).await.unwrap_err();
    assert!(matches!(error, GatewayError::Throttled { .. }), "{error}");
    assert!(!error.may_have_acted() && !error.is_permanent());
    api.list_apps(0).await.expect("the next call passes");
}

#[tokio::test]
async fn a_timeout_after_acting_is_uncertain_and_acted() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    let created = api
        .create_app(&app("slow_app", "slowkey01", "slowSecret01"))
        .await
        .unwrap();
    fault(
        &server,
        "ResettingAppSecretV2",
        "timeout_after_acting",
        Some(5_000),
    )
    .await;
    let secret = SecretValue::new("slowSecret02");
    let error = api
        .reset_secret(&created.id, "slowkey01", "slowkey01", &secret)
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Uncertain { .. }), "{error}");
    assert!(error.may_have_acted());
    let now = api.find_app("slow_app").await.unwrap().unwrap();
    assert_eq!(now.keys[0].secret, Some(secret), "the gateway acted");
}

#[tokio::test]
async fn a_dropped_answer_is_uncertain_and_acted() {
    let server = ConformanceServer::start("huawei");
    let api = client(&server);
    fault(&server, "CreateAnAppV2", "drop_after_acting", None).await;
    let error = api
        .create_app(&app("dropped_app", "dropkey01", "dropSecret01"))
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Uncertain { .. }), "{error}");
    assert!(error.may_have_acted());
    assert!(!format!("{error} {error:?}").contains("dropSecret01"));
    assert!(
        api.find_app("dropped_app").await.unwrap().is_some(),
        "the gateway acted"
    );
    let stats = server.stats().await;
    assert_eq!(stats["calls"]["CreateAnAppV2"], 1);
}
