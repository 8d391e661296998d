//! keysmith's client for Alibaba Cloud API Gateway's management API
//! (CloudAPI 2016-07-14) behind [`GatewayApi`].
//!
//! Every call is `POST /?<params>` with an empty body, signed with
//! `ACS3-HMAC-SHA256` as the official SDK sends it (see [`super::sign`]).
//! The region is carried by the endpoint host
//! (`apigateway.<region>.aliyuncs.com`): V3 requests name no region, so a
//! public endpoint of another region is refused up front.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::sign::{self, Signable};
use super::wire::{self, Action, WireSecret};
use crate::providers::http::{Response, Transport, check_endpoint};
use crate::providers::{
    AppWrite, Connection, GatewayApi, GatewayError, KeyPair, Page, Provider, RemoteApp,
    RemoteSignature, Result, SecretValue, SignatureWrite, redact,
};

const PROVIDER: &str = "AlibabaAPIGateway";

/// One connection to one region's API Gateway.
#[derive(Clone)]
pub struct AlibabaClient {
    transport: Transport,
    /// `scheme://authority`, no trailing slash.
    base: String,
    /// The `host` header (and signed value): the endpoint's authority.
    host: String,
    access_key_id: String,
    access_key_secret: SecretValue,
}

impl AlibabaClient {
    /// Reports every request to `observer` (metrics).
    pub fn observe(&mut self, observer: crate::providers::http::Observer) {
        self.transport.observe(observer);
    }

    pub fn new(connection: &Connection) -> Result<Self> {
        let uri = check_endpoint(&connection.endpoint).map_err(|reason| unreachable(&reason))?;
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| unreachable("the endpoint has no host"))?;
        check_region(&host, &connection.region).map_err(|reason| unreachable(&reason))?;
        let transport = Transport::new(
            Provider::AlibabaApiGateway,
            &connection.endpoint,
            connection.ca_bundle.as_deref(),
            connection.limits,
        )?;
        let scheme = uri.scheme_str().unwrap_or("https");
        Ok(AlibabaClient {
            transport,
            base: format!("{scheme}://{host}"),
            host,
            access_key_id: connection.access_key.id.clone(),
            access_key_secret: connection.access_key.secret.clone(),
        })
    }

    /// Sends one action and reads its answer; `sent` are the values to keep
    /// out of any error message.
    async fn call<A: Action>(&self, request: &A, sent: &[&str]) -> Result<A::Answer> {
        let http_request = self.signed_request(A::NAME, &wire::to_params(request))?;
        let response = self.transport.send(A::NAME, http_request).await?;
        if (200..300).contains(&response.status) {
            return serde_json::from_slice(&response.body).map_err(|e| GatewayError::Protocol {
                provider: PROVIDER,
                operation: A::NAME,
                reason: format!("the answer is not the expected JSON: {e}"),
            });
        }
        let mut secrets = sent.to_vec();
        secrets.push(self.access_key_secret.expose());
        Err(map_error(A::NAME, &response, &secrets))
    }

    /// The signed `POST /?query` for `action`, as the SDK builds it.
    fn signed_request(
        &self,
        action: &'static str,
        query: &BTreeMap<String, String>,
    ) -> Result<http::Request<Bytes>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let headers: Vec<(String, String)> = [
            ("host", self.host.clone()),
            ("x-acs-version", wire::VERSION.to_string()),
            ("x-acs-action", action.to_string()),
            (
                "user-agent",
                concat!("keysmith/", env!("CARGO_PKG_VERSION")).into(),
            ),
            ("x-acs-date", sign::format_timestamp(now)),
            ("x-acs-signature-nonce", sign::nonce()),
            ("accept", "application/json".to_string()),
            ("x-acs-content-sha256", sign::hex_sha256(b"")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let payload_hash = sign::hex_sha256(b"");
        let signable = Signable {
            method: "POST",
            path: "/",
            query,
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let authorization =
            signable.authorization(&self.access_key_id, self.access_key_secret.expose());
        let mut builder =
            http::Request::post(format!("{}/?{}", self.base, sign::canonical_query(query)));
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        builder
            .header("authorization", authorization)
            .body(Bytes::new())
            .map_err(|e| GatewayError::Protocol {
                provider: PROVIDER,
                operation: action,
                reason: format!("cannot build the request: {e}"),
            })
    }

    /// Every key pair of one app (DescribeAppSecurities: one call per app).
    async fn fetch_keys(&self, app_id: u64) -> Result<Vec<KeyPair>> {
        let answer = self
            .call(&wire::DescribeAppSecurities { app_id }, &[])
            .await?;
        Ok(answer
            .app_securitys
            .app_security
            .into_iter()
            .map(|s| KeyPair {
                key: s.app_key,
                secret: Some(SecretValue::new(s.app_secret.0)),
            })
            .collect())
    }

    async fn fetch_app_page(
        &self,
        name: Option<&str>,
        page: u32,
    ) -> Result<wire::DescribeAppAttributesAnswer> {
        let request = wire::DescribeAppAttributes {
            app_name: name.map(str::to_string),
            page_number: Some(page.max(1)),
            page_size: Some(wire::MAX_PAGE_SIZE),
            ..Default::default()
        };
        self.call(&request, &[]).await
    }

    async fn fetch_signature_page(
        &self,
        name: Option<&str>,
        page: u32,
    ) -> Result<wire::DescribeSignaturesAnswer> {
        let request = wire::DescribeSignatures {
            signature_name: name.map(str::to_string),
            page_number: Some(page.max(1)),
            page_size: Some(wire::MAX_PAGE_SIZE),
            ..Default::default()
        };
        self.call(&request, &[]).await
    }
}

fn unreachable(reason: &str) -> GatewayError {
    GatewayError::Unreachable {
        provider: PROVIDER,
        operation: "connect",
        reason: reason.to_string(),
    }
}

/// A public Alibaba endpoint names its region; it must be the connection's.
fn check_region(host: &str, region: &str) -> std::result::Result<(), String> {
    let host = host.split(':').next().unwrap_or_default();
    match host
        .strip_prefix("apigateway.")
        .and_then(|h| h.strip_suffix(".aliyuncs.com"))
    {
        Some(named) if named != region => Err(format!(
            "the endpoint {host} serves region {named}, not the connection's region {region}"
        )),
        _ => Ok(()),
    }
}

/// The page after `page` when `total` items come `size` to a page.
fn next_page(page: u32, size: u32, total: u32) -> Option<u32> {
    let page = page.max(1);
    (u64::from(page) * u64::from(size.max(1)) < u64::from(total)).then_some(page + 1)
}

fn parse_id(operation: &'static str, id: &str) -> Result<u64> {
    id.parse().map_err(|_| GatewayError::Rejected {
        provider: PROVIDER,
        operation,
        code: "InvalidAppId".into(),
        message: "an Alibaba AppId is a number".into(),
    })
}

fn check_rule(
    operation: &'static str,
    result: std::result::Result<(), super::rules::Breach>,
) -> Result<()> {
    result.map_err(|breach| GatewayError::Rejected {
        provider: PROVIDER,
        operation,
        code: format!("Invalid{}", breach.parameter),
        message: breach.to_string(),
    })
}

/// Turns an error answer into a [`GatewayError`], every sent value removed.
pub fn map_error(operation: &'static str, response: &Response, sent: &[&str]) -> GatewayError {
    let status = response.status;
    let Ok(body) = serde_json::from_slice::<wire::ErrorBody>(&response.body) else {
        let text = redact(&String::from_utf8_lossy(&response.body), sent);
        return if status >= 500 {
            GatewayError::Unavailable {
                provider: PROVIDER,
                operation,
                status,
                message: text,
            }
        } else {
            GatewayError::Protocol {
                provider: PROVIDER,
                operation,
                reason: format!("HTTP {status} without an error body"),
            }
        };
    };
    let code = body.code.clone();
    let message = redact(
        &format!("{} (RequestId {})", body.message, body.request_id),
        sent,
    );
    classify(operation, status, code, message)
}

fn classify(operation: &'static str, status: u16, code: String, message: String) -> GatewayError {
    let unauthorized = code.starts_with("InvalidAccessKeyId")
        || code.starts_with("SignatureDoesNotMatch")
        || code.starts_with("IncompleteSignature")
        || code.starts_with("InvalidTimeStamp")
        || code.starts_with("Forbidden")
        || code == "NoPermission"
        || status == 401
        || status == 403;
    if code.starts_with("Throttling") || code == "RepeatedCommit" || status == 429 {
        GatewayError::Throttled {
            provider: PROVIDER,
            operation,
            retry_after: None,
        }
    } else if unauthorized {
        GatewayError::Unauthorized {
            provider: PROVIDER,
            operation,
            code,
            message,
        }
    } else if code.starts_with("NotFound") || code.ends_with(".NotFound") || status == 404 {
        GatewayError::NotFound {
            provider: PROVIDER,
            operation,
            code,
            message,
        }
    } else if status >= 500 || code == "ServiceUnavailable" || code == "InternalError" {
        GatewayError::Unavailable {
            provider: PROVIDER,
            operation,
            status,
            message: format!("{code}: {message}"),
        }
    } else {
        GatewayError::Rejected {
            provider: PROVIDER,
            operation,
            code,
            message,
        }
    }
}

fn remote_app(attribute: wire::AppAttribute, keys: Vec<KeyPair>) -> RemoteApp {
    RemoteApp {
        id: attribute.app_id.to_string(),
        name: attribute.app_name,
        remark: attribute.description,
        keys,
    }
}

fn remote_signature(info: wire::SignatureInfo) -> RemoteSignature {
    RemoteSignature {
        id: info.signature_id,
        name: info.signature_name,
        sign_type: super::rules::SIGN_TYPE.to_string(),
        key: info.signature_key,
        secret: Some(SecretValue::new(info.signature_secret.0)),
    }
}

fn secret(value: &SecretValue) -> Option<WireSecret> {
    Some(WireSecret(value.expose().to_string()))
}

impl GatewayApi for AlibabaClient {
    /// DescribeAppAttributes with one item: proves endpoint (hence region)
    /// and the access key.
    async fn check(&self) -> Result<()> {
        let request = wire::DescribeAppAttributes {
            page_number: Some(1),
            page_size: Some(1),
            ..Default::default()
        };
        self.call(&request, &[]).await.map(|_| ())
    }

    fn holds_several_keys(&self) -> bool {
        true
    }

    /// The paged list carries no keys; Alibaba's AppKeys are read per app.
    fn list_carries_keys(&self) -> bool {
        false
    }

    /// DescribeAppAttributes filtered by name, then DescribeAppSecurities for
    /// the keys: two calls.
    async fn find_app(&self, name: &str) -> Result<Option<RemoteApp>> {
        let mut page = 1;
        loop {
            let answer = self.fetch_app_page(Some(name), page).await?;
            let next = next_page(page, answer.page_size, answer.total_count);
            let found = answer
                .apps
                .app_attribute
                .into_iter()
                .find(|a| a.app_name == name);
            if let Some(attribute) = found {
                let keys = self.fetch_keys(attribute.app_id).await?;
                return Ok(Some(remote_app(attribute, keys)));
            }
            match next {
                Some(n) => page = n,
                None => return Ok(None),
            }
        }
    }

    /// One page of DescribeAppAttributes (100 apps); `keys` stays empty.
    async fn list_apps(&self, page: u32) -> Result<Page<RemoteApp>> {
        let answer = self.fetch_app_page(None, page).await?;
        Ok(Page {
            next: next_page(page, answer.page_size, answer.total_count),
            items: answer
                .apps
                .app_attribute
                .into_iter()
                .map(|a| remote_app(a, Vec::new()))
                .collect(),
        })
    }

    async fn create_app(&self, app: &AppWrite) -> Result<RemoteApp> {
        check_rule("CreateApp", super::rules::check_app(app))?;
        let request = wire::CreateApp {
            app_name: app.name.clone(),
            description: Some(app.remark.clone()).filter(|d| !d.is_empty()),
            app_key: Some(app.key.clone()),
            app_secret: secret(&app.secret),
        };
        let answer = self
            .call(&request, &[&app.key, app.secret.expose()])
            .await?;
        Ok(RemoteApp {
            id: answer.app_id.to_string(),
            name: app.name.clone(),
            remark: app.remark.clone(),
            keys: vec![KeyPair {
                key: app.key.clone(),
                secret: Some(app.secret.clone()),
            }],
        })
    }

    async fn update_app(&self, id: &str, app: &AppWrite) -> Result<()> {
        check_rule("ModifyApp", super::rules::check_app(app))?;
        let request = wire::ModifyApp {
            app_id: parse_id("ModifyApp", id)?,
            app_name: Some(app.name.clone()),
            description: Some(app.remark.clone()),
        };
        self.call(&request, &[]).await.map(|_| ())
    }

    /// ResetAppSecret on the pair named `current_key`, with `NewAppKey` when
    /// the key changes and always `NewAppSecret` (keysmith fixes the value).
    async fn reset_secret(
        &self,
        _id: &str,
        current_key: &str,
        key: &str,
        secret_value: &SecretValue,
    ) -> Result<()> {
        let request = wire::ResetAppSecret {
            app_key: current_key.to_string(),
            new_app_key: (key != current_key).then(|| key.to_string()),
            new_app_secret: secret(secret_value),
        };
        let sent = [current_key, key, secret_value.expose()];
        self.call(&request, &sent).await.map(|_| ())
    }

    async fn add_key(&self, id: &str, key: &str, secret_value: &SecretValue) -> Result<()> {
        let request = wire::CreateAppKey {
            app_id: id.to_string(),
            app_key: Some(key.to_string()),
            app_secret: secret(secret_value),
        };
        let sent = [key, secret_value.expose()];
        self.call(&request, &sent).await.map(|_| ())
    }

    async fn remove_key(&self, id: &str, key: &str) -> Result<()> {
        let request = wire::DeleteAppKey {
            app_id: id.to_string(),
            app_key: key.to_string(),
        };
        self.call(&request, &[key]).await.map(|_| ())
    }

    async fn delete_app(&self, id: &str) -> Result<()> {
        let request = wire::DeleteApp {
            app_id: parse_id("DeleteApp", id)?,
        };
        self.call(&request, &[]).await.map(|_| ())
    }

    async fn find_signature(&self, name: &str) -> Result<Option<RemoteSignature>> {
        let mut page = 1;
        loop {
            let answer = self.fetch_signature_page(Some(name), page).await?;
            let next = next_page(page, answer.page_size, answer.total_count);
            let found = answer
                .signature_infos
                .signature_info
                .into_iter()
                .find(|s| s.signature_name == name);
            if let Some(info) = found {
                return Ok(Some(remote_signature(info)));
            }
            match next {
                Some(n) => page = n,
                None => return Ok(None),
            }
        }
    }

    async fn list_signatures(&self, page: u32) -> Result<Page<RemoteSignature>> {
        let answer = self.fetch_signature_page(None, page).await?;
        Ok(Page {
            next: next_page(page, answer.page_size, answer.total_count),
            items: answer
                .signature_infos
                .signature_info
                .into_iter()
                .map(remote_signature)
                .collect(),
        })
    }

    async fn create_signature(&self, signature: &SignatureWrite) -> Result<RemoteSignature> {
        check_rule("CreateSignature", super::rules::check_signature(signature))?;
        let request = wire::CreateSignature {
            signature_name: signature.name.clone(),
            signature_key: signature.key.clone(),
            signature_secret: WireSecret(signature.secret.expose().to_string()),
        };
        let sent = [signature.key.as_str(), signature.secret.expose()];
        let answer = self.call(&request, &sent).await?;
        Ok(RemoteSignature {
            id: answer.signature_id,
            name: signature.name.clone(),
            sign_type: super::rules::SIGN_TYPE.to_string(),
            key: signature.key.clone(),
            secret: Some(signature.secret.clone()),
        })
    }

    async fn update_signature(&self, id: &str, signature: &SignatureWrite) -> Result<()> {
        check_rule("ModifySignature", super::rules::check_signature(signature))?;
        let request = wire::ModifySignature {
            signature_id: id.to_string(),
            signature_name: Some(signature.name.clone()),
            signature_key: Some(signature.key.clone()),
            signature_secret: secret(&signature.secret),
        };
        let sent = [signature.key.as_str(), signature.secret.expose()];
        self.call(&request, &sent).await.map(|_| ())
    }

    async fn delete_signature(&self, id: &str) -> Result<()> {
        let request = wire::DeleteSignature {
            signature_id: id.to_string(),
        };
        self.call(&request, &[]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> GatewayError {
        let body = format!(r#"{{"RequestId":"R1","Code":"{code}","Message":"{message}"}}"#);
        map_error("CreateApp", &answer(status, &body), &["TopSecret1"])
    }

    #[test]
    fn codes_map_to_what_a_retry_can_do() {
        let cases: [(u16, &str, &str); 9] = [
            (404, "InvalidAccessKeyId.NotFound", "unauthorized"),
            (400, "SignatureDoesNotMatch", "unauthorized"),
            (400, "InvalidTimeStamp.Expired", "unauthorized"),
            (403, "Forbidden.RAM", "unauthorized"),
            (400, "NotFoundApp", "not_found"),
            (400, "Throttling.User", "throttled"),
            (503, "ServiceUnavailable", "unavailable"),
            (500, "InternalError", "unavailable"),
            (400, "RepeatedAppName", "rejected"),
        ];
        for (status, code, want) in cases {
            assert_eq!(error(status, code, "m").code(), want, "{code}");
        }
        assert!(error(400, "RepeatedAppName", "m").is_permanent());
        assert!(error(503, "ServiceUnavailable", "m").may_have_acted());
    }

    #[test]
    fn messages_lose_every_sent_value() {
        let shown = error(400, "InvalidAppSecret", "AppSecret TopSecret1 is bad").to_string();
        assert!(!shown.contains("TopSecret1"), "{shown}");
        assert!(shown.contains("InvalidAppSecret"), "{shown}");
        let unreadable = map_error(
            "CreateApp",
            &answer(502, "TopSecret1 gone"),
            &["TopSecret1"],
        );
        assert!(!unreadable.to_string().contains("TopSecret1"));
        assert!(unreadable.may_have_acted());
    }

    #[test]
    fn pages_follow_the_total() {
        assert_eq!(next_page(1, 100, 250), Some(2));
        assert_eq!(next_page(3, 100, 250), None);
        assert_eq!(next_page(1, 100, 100), None);
        assert_eq!(next_page(0, 10, 5), None);
    }

    #[test]
    fn a_public_endpoint_must_serve_the_region() {
        assert!(check_region("apigateway.cn-hangzhou.aliyuncs.com", "cn-hangzhou").is_ok());
        assert!(check_region("apigateway.cn-beijing.aliyuncs.com", "cn-hangzhou").is_err());
        assert!(check_region("127.0.0.1:8080", "cn-hangzhou").is_ok());
    }
}
