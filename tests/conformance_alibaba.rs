//! The Alibaba Cloud API Gateway conformance server and keysmith's client,
//! proven against the official SDK (SPEC §11.3): the SDK drives every action
//! keysmith uses against the server (which verifies its V3 signature), the
//! server refuses bad credentials with the codes the SDK surfaces,
//! keysmith's signer is byte-identical to the SDK's, and keysmith's client
//! drives every trait operation, faults included. No Kubernetes needed.

mod support;

use std::time::Duration;

use keysmith::providers::alibaba::AlibabaClient;
use keysmith::providers::alibaba::sign::{self, Signable};
use keysmith::providers::{
    AccessKey, AppWrite, Connection, GatewayApi, GatewayError, Limits, Provider, SecretValue,
    SignatureWrite,
};
use serde_json::{Value, json};
use support::conformance::{
    ACCESS_KEY_ID, ACCESS_KEY_SECRET, ConformanceServer, REGION, run_sdk_script,
};

fn host_port(server: &ConformanceServer) -> String {
    server.endpoint.trim_start_matches("http://").to_string()
}

fn sdk(mode: &str, server: &ConformanceServer) -> Value {
    let host = host_port(server);
    let out = run_sdk_script(
        "alibaba_drive.py",
        &[mode, &host, ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION],
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn client(server: &ConformanceServer, timeout: Duration) -> AlibabaClient {
    AlibabaClient::new(&Connection {
        provider: Provider::AlibabaApiGateway,
        endpoint: server.endpoint.clone(),
        region: REGION.into(),
        project_id: None,
        instance_id: None,
        access_key: AccessKey {
            id: ACCESS_KEY_ID.into(),
            secret: SecretValue::new(ACCESS_KEY_SECRET),
        },
        ca_bundle: None,
        limits: Limits {
            requests_per_second: 200.0,
            burst: 200,
            timeout,
        },
    })
    .expect("a client for the conformance server")
}

fn app(name: &str, key: &str, secret: &str) -> AppWrite {
    AppWrite {
        name: name.into(),
        remark: "synced by keysmith".into(),
        key: key.into(),
        secret: SecretValue::new(secret),
    }
}

#[test]
fn the_sdk_drives_every_action_keysmith_uses() {
    let server = ConformanceServer::start("alibaba");
    let summary = sdk("drive", &server);
    assert_eq!(summary["pages"], 3, "{summary}");
    let refusals = summary["refusals"].as_array().expect("refusals");
    assert_eq!(refusals.len(), 4, "{summary}");
}

#[test]
fn the_server_refuses_bad_credentials_with_the_codes_the_sdk_surfaces() {
    let server = ConformanceServer::start("alibaba");
    let codes = sdk("auth", &server);
    assert_eq!(codes["wrong_signature"], "SignatureDoesNotMatch");
    assert_eq!(codes["unknown_key"], "InvalidAccessKeyId.NotFound");
    assert_eq!(codes["stale_timestamp"], "InvalidTimeStamp.Expired");
}

/// Fixed requests (timestamp, nonce) with values that need encoding.
fn signing_cases() -> Vec<Value> {
    let headers = |action: &str, nonce: &str| {
        json!({
            "host": "apigateway.cn-hangzhou.aliyuncs.com",
            "x-acs-version": "2016-07-14",
            "x-acs-action": action,
            "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11 Core/0.4.3 TeaDSL/2",
            "x-acs-date": "2026-12-02T01:02:03Z",
            "x-acs-signature-nonce": nonce,
            "accept": "application/json",
            "x-acs-content-sha256": sign::hex_sha256(b""),
        })
    };
    vec![
        json!({"method": "POST", "path": "/", "payload": "", "ak": "AK1", "secret": "s3cr3t",
               "query": {"AppName": "orders_one", "Description": "a b+c/d*e~f%g&h=i"},
               "headers": headers("CreateApp", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")}),
        json!({"method": "POST", "path": "/", "payload": "", "ak": "LTAI5tExample", "secret": "k!@#",
               "query": {"PageSize": "100", "PageNumber": "2", "AppName": "名前_app"},
               "headers": headers("DescribeAppAttributes", "n2")}),
        json!({"method": "POST", "path": "/", "payload": "", "ak": "AK", "secret": "x",
               "query": {}, "headers": headers("DescribeSignatures", "n3")}),
        json!({"method": "POST", "path": "/", "payload": "AppKey=a%20b&Z=1", "ak": "AK", "secret": "x",
               "query": {"NewAppSecret": "Sec ret!@#$%^&*()", "AppKey": "k-1_2.3"},
               "headers": {"Host": "127.0.0.1:8080", "X-Acs-Date": " 2026-01-01T00:00:00Z ",
                           "x-acs-action": "ResetAppSecret", "content-type": "application/x-www-form-urlencoded"}}),
    ]
}

fn keysmith_authorization(case: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let query = case["query"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let headers: Vec<(String, String)> = case["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let payload_hash = sign::hex_sha256(case["payload"].as_str().unwrap().as_bytes());
    Signable {
        method: case["method"].as_str().unwrap(),
        path: case["path"].as_str().unwrap(),
        query: &query,
        headers: &headers,
        payload_hash: &payload_hash,
    }
    .authorization(
        case["ak"].as_str().unwrap(),
        case["secret"].as_str().unwrap(),
    )
}

#[test]
fn keysmith_signs_byte_for_byte_as_the_sdk() {
    let cases = signing_cases();
    let out = run_sdk_script(
        "alibaba_sign.py",
        &[&Value::Array(cases.clone()).to_string()],
    );
    let sdk: Vec<Value> = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(sdk.len(), cases.len());
    for (case, theirs) in cases.iter().zip(&sdk) {
        let payload = case["payload"].as_str().unwrap().as_bytes();
        assert_eq!(theirs["payload_hash"], sign::hex_sha256(payload));
        assert_eq!(
            keysmith_authorization(case),
            theirs["authorization"].as_str().unwrap(),
            "case {case}"
        );
    }
}

#[tokio::test]
async fn keysmith_drives_every_trait_operation() {
    let server = ConformanceServer::start("alibaba");
    let api = client(&server, Duration::from_secs(5));
    api.check().await.expect("check");
    assert!(api.holds_several_keys());
    assert!(!api.list_carries_keys());
    assert!(api.find_app("orders_app").await.unwrap().is_none());
    let created = api
        .create_app(&app("orders_app", "orders-key-0001", "Secret-0001-abcdef"))
        .await
        .unwrap();
    let id = created.id.clone();
    api.update_app(&id, &app("orders_app2", "orders-key-0001", "x"))
        .await
        .unwrap();
    let secret = SecretValue::new("Secret-0002-abcdef");
    api.reset_secret(&id, "orders-key-0001", "orders-key-0002", &secret)
        .await
        .unwrap();
    let overlap = SecretValue::new("Secret-0003-abcdef");
    api.add_key(&id, "orders-key-0003", &overlap).await.unwrap();
    let found = api.find_app("orders_app2").await.unwrap().expect("found");
    assert_eq!(found.remark, "synced by keysmith");
    let keys: Vec<_> = found.keys.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["orders-key-0002", "orders-key-0003"]);
    assert_eq!(found.keys[0].secret, Some(secret));
    api.remove_key(&id, "orders-key-0002").await.unwrap();
    let found = api.find_app("orders_app2").await.unwrap().expect("found");
    assert_eq!(found.keys.len(), 1);
    let duplicate = api
        .create_app(&app("orders_app2", "orders-key-0009", "Secret-0009-abcdef"))
        .await
        .unwrap_err();
    assert!(duplicate.is_permanent(), "{duplicate}");
    assert!(
        !duplicate.to_string().contains("Secret-0009"),
        "{duplicate}"
    );
    list_over_pages(&api).await;
    signatures(&api).await;
    api.delete_app(&id).await.unwrap();
    assert!(api.find_app("orders_app2").await.unwrap().is_none());
    let gone = api.delete_app(&id).await.unwrap_err();
    assert!(matches!(gone, GatewayError::NotFound { .. }), "{gone}");
}

async fn list_over_pages(api: &AlibabaClient) {
    for n in 0..120 {
        let name = format!("bulk_app_{n:03}");
        let key = format!("bulk-key-{n:04}");
        api.create_app(&app(&name, &key, "Secret-bulk-abcdef"))
            .await
            .unwrap();
    }
    let (mut page, mut seen) = (1, 0);
    loop {
        let listed = api.list_apps(page).await.unwrap();
        seen += listed.items.len();
        match listed.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!((page, seen), (2, 121));
}

async fn signatures(api: &AlibabaClient) {
    let write = |name: &str, key: &str, secret: &str| SignatureWrite {
        name: name.into(),
        sign_type: "hmac".into(),
        algorithm: None,
        key: key.into(),
        secret: SecretValue::new(secret),
    };
    let created = api
        .create_signature(&write("backend_sig", "sigkey_0001", "Sig_secret_000001"))
        .await
        .unwrap();
    api.update_signature(
        &created.id,
        &write("backend_sig", "sigkey_0002", "Sig_secret_000002"),
    )
    .await
    .unwrap();
    let found = api.find_signature("backend_sig").await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.key.as_str()),
        (created.id.as_str(), "sigkey_0002")
    );
    assert_eq!(found.secret, Some(SecretValue::new("Sig_secret_000002")));
    assert_eq!(api.list_signatures(1).await.unwrap().items.len(), 1);
    let mut aes_write = write("aes_sig", "k", "s");
    aes_write.sign_type = "aes".into();
    assert!(
        api.create_signature(&aes_write)
            .await
            .unwrap_err()
            .is_permanent()
    );
    api.delete_signature(&created.id).await.unwrap();
    assert!(api.find_signature("backend_sig").await.unwrap().is_none());
}

async fn queue(server: &ConformanceServer, operation: &str, kind: &str, delay_ms: Option<u64>) {
    let fault = json!({"operation": operation, "kind": kind, "times": 1, "delay_ms": delay_ms});
    server
        .control("POST", "/_conformance/faults", Some(fault))
        .await;
}

#[tokio::test]
async fn each_fault_gives_its_error_and_the_state_it_says() {
    let server = ConformanceServer::start("alibaba");
    let api = client(&server, Duration::from_secs(1));
    let cases = [
        ("unavailable", false),
        ("throttled", false),
        ("timeout_after_acting", true),
        ("drop_after_acting", true),
    ];
    for (n, (kind, acts)) in cases.into_iter().enumerate() {
        let name = format!("fault_app_{n}");
        let key = format!("fault-key-{n:04}");
        queue(&server, "CreateApp", kind, Some(3_000)).await;
        let error = api
            .create_app(&app(&name, &key, "Secret-fault-abcdef"))
            .await
            .unwrap_err();
        let variant_ok = match kind {
            "unavailable" => matches!(error, GatewayError::Unavailable { status: 503, .. }),
            "throttled" => matches!(error, GatewayError::Throttled { .. }),
            _ => matches!(error, GatewayError::Uncertain { .. }),
        };
        assert!(variant_ok, "{kind}: {error:?}");
        assert_eq!(error.may_have_acted(), kind != "throttled", "{kind}");
        assert!(!error.is_permanent(), "{kind}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let there = api.find_app(&name).await.unwrap();
        assert_eq!(there.is_some(), acts, "{kind}: the gateway acted?");
    }
}
