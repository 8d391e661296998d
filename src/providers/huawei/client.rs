//! [`HuaweiClient`]: keysmith's client for the APIG dedicated-instance v2
//! management API. Every request is signed with `SDK-HMAC-SHA256`
//! ([`super::sign`]) over the headers the official SDK sends (Content-Type,
//! Host, X-Project-Id, X-Sdk-Date), goes through the connection's
//! [`Transport`] (rate limit, timeout), and every error answer becomes a
//! [`GatewayError`] with the values keysmith sent removed from its message.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rules::{self, Breach};
use super::sign::{self, SignInput};
use super::time::format_sdk_date;
use super::wire::{
    AppCreate, AppInfo, AppList, AppResetCreate, BaseSignature, ErrorBody, InstanceInfo, Secret,
    SignatureInfo, SignatureList,
};
use crate::providers::http::{Response, Transport, check_endpoint};
use crate::providers::{
    AccessKey, AppWrite, Connection, GatewayApi, GatewayError, KeyPair, Page, Provider, RemoteApp,
    RemoteSignature, Result, SecretValue, SignatureWrite, redact,
};

const PROVIDER: &str = "HuaweiAPIG";
/// Items per list page unless set otherwise; APIG allows up to 500.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 500;
/// The throttling code of the API gateway in front of Huawei Cloud's APIs.
const THROTTLING_CODES: [&str; 1] = ["APIGW.0308"];

/// One connection's APIG client.
#[derive(Clone)]
pub struct HuaweiClient {
    transport: Transport,
    /// `https://host[:port]`
    origin: String,
    /// The Host header: the endpoint's authority.
    host: String,
    /// A path prefix of the endpoint, without a trailing `/`.
    prefix: String,
    project_id: String,
    instance_id: String,
    access_key: AccessKey,
    page_size: u32,
}

/// One request before signing.
struct Call<'a> {
    operation: &'static str,
    method: http::Method,
    /// After `/v2/{project_id}/apigw/instances/{instance_id}`.
    suffix: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    /// Values sent that must not come back in a message.
    sent: Vec<&'a str>,
}

impl<'a> Call<'a> {
    fn new(operation: &'static str, method: http::Method, suffix: impl Into<String>) -> Self {
        Call {
            operation,
            method,
            suffix: suffix.into(),
            query: Vec::new(),
            body: None,
            sent: Vec::new(),
        }
    }

    fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    fn json(mut self, body: &impl Serialize, sent: Vec<&'a str>) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| GatewayError::Protocol {
            provider: PROVIDER,
            operation: self.operation,
            reason: format!("cannot encode the request body: {e}"),
        })?;
        self.body = Some(bytes);
        self.sent = sent;
        Ok(self)
    }
}

fn missing(what: &str) -> GatewayError {
    GatewayError::Rejected {
        provider: PROVIDER,
        operation: "connect",
        code: "MissingCoordinates".into(),
        message: format!("a HuaweiAPIG connection needs {what}"),
    }
}

/// A rule breach found before any call: permanent, names field and rule.
fn breach(operation: &'static str, breach: Breach) -> GatewayError {
    GatewayError::Rejected {
        provider: PROVIDER,
        operation,
        code: "GatewayRule".into(),
        message: breach.to_string(),
    }
}

impl HuaweiClient {
    /// Reports every request to `observer` (metrics).
    pub fn observe(&mut self, observer: crate::providers::http::Observer) {
        self.transport.observe(observer);
    }

    pub fn new(connection: &Connection) -> Result<Self> {
        let project_id = connection
            .project_id
            .clone()
            .ok_or_else(|| missing("projectId"))?;
        let instance_id = connection
            .instance_id
            .clone()
            .ok_or_else(|| missing("instanceId"))?;
        let uri =
            check_endpoint(&connection.endpoint).map_err(|reason| GatewayError::Unreachable {
                provider: PROVIDER,
                operation: "connect",
                reason,
            })?;
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let transport = Transport::new(
            Provider::HuaweiApig,
            &connection.endpoint,
            connection.ca_bundle.as_deref(),
            connection.limits,
        )?;
        Ok(HuaweiClient {
            transport,
            origin: format!("{}://{host}", uri.scheme_str().unwrap_or("https")),
            host,
            prefix: uri.path().trim_end_matches('/').to_string(),
            project_id,
            instance_id,
            access_key: connection.access_key.clone(),
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Items per list page (1–500): a drift check costs apps / size calls.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    fn path(&self, suffix: &str) -> String {
        format!(
            "{}/v2/{}/apigw/instances/{}{suffix}",
            self.prefix,
            sign::encode(&self.project_id),
            sign::encode(&self.instance_id)
        )
    }

    /// The signed request, as the SDK would send it at `now`.
    fn signed_request(&self, call: &Call, now: SystemTime) -> Result<http::Request<Bytes>> {
        let path = self.path(&call.suffix);
        let body = call.body.clone().unwrap_or_default();
        let content_type = if call.body.is_some() {
            "application/json;charset=utf-8"
        } else {
            "application/json"
        };
        let headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), content_type.into()),
            ("Host".into(), self.host.clone()),
            ("X-Project-Id".into(), self.project_id.clone()),
            (sign::DATE_HEADER.into(), format_sdk_date(now)),
        ];
        let input = SignInput {
            method: call.method.as_str(),
            path: &path,
            query: &call.query,
            headers: &headers,
            body: &body,
        };
        let authorization =
            sign::authorization(&self.access_key.id, self.access_key.secret.expose(), &input);
        let query = sign::canonical_query(&call.query);
        let uri = match query.is_empty() {
            true => format!("{}{path}", self.origin),
            false => format!("{}{path}?{query}", self.origin),
        };
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(uri);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        builder
            .header("Authorization", authorization)
            .body(Bytes::from(body))
            .map_err(|e| GatewayError::Protocol {
                provider: PROVIDER,
                operation: call.operation,
                reason: format!("cannot build the request: {e}"),
            })
    }

    /// Sends a call; any answer but 2xx becomes an error.
    async fn send(&self, call: Call<'_>) -> Result<Response> {
        let request = self.signed_request(&call, SystemTime::now())?;
        let response = self.transport.send(call.operation, request).await?;
        if (200..300).contains(&response.status) {
            return Ok(response);
        }
        let mut sent = call.sent.clone();
        sent.push(self.access_key.secret.expose());
        Err(error_from(call.operation, &response, &sent))
    }

    async fn send_json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        let operation = call.operation;
        let response = self.send(call).await?;
        serde_json::from_slice(&response.body).map_err(|e| GatewayError::Protocol {
            provider: PROVIDER,
            operation,
            reason: format!("the answer is not the expected JSON: {e}"),
        })
    }

    async fn show_app(&self, id: &str) -> Result<AppInfo> {
        let call = Call::new(
            "ShowDetailsOfAppV2",
            http::Method::GET,
            format!("/apps/{}", sign::encode(id)),
        );
        self.send_json(call).await
    }

    async fn list_apps_page(&self, page: u32, name: Option<&str>) -> Result<Page<RemoteApp>> {
        let mut call = Call::new("ListAppsV2", http::Method::GET, "/apps")
            .query("offset", offset(page, self.page_size))
            .query("limit", self.page_size);
        if let Some(name) = name {
            call = call.query("name", name).query("precise_search", "name");
        }
        let list: AppList = self.send_json(call).await?;
        let next = self.next_page(page, list.apps.len(), list.total);
        Ok(Page {
            items: list.apps.into_iter().map(remote_app).collect(),
            next,
        })
    }

    async fn list_signatures_page(
        &self,
        page: u32,
        name: Option<&str>,
    ) -> Result<Page<RemoteSignature>> {
        let mut call = Call::new("ListSignatureKeysV2", http::Method::GET, "/signs")
            .query("offset", offset(page, self.page_size))
            .query("limit", self.page_size);
        if let Some(name) = name {
            call = call.query("name", name).query("precise_search", "name");
        }
        let list: SignatureList = self.send_json(call).await?;
        let next = self.next_page(page, list.signs.len(), list.total);
        Ok(Page {
            items: list.signs.into_iter().map(remote_signature).collect(),
            next,
        })
    }

    /// Pages count from 1 (0 reads as 1), as the trait says.
    fn next_page(&self, page: u32, items: usize, total: u32) -> Option<u32> {
        let seen = offset(page, self.page_size) + items as u64;
        (items > 0 && seen < u64::from(total)).then_some(page.max(1) + 1)
    }
}

/// The `offset` of page `page` (from 1) of `size` items.
fn offset(page: u32, size: u32) -> u64 {
    u64::from(page.max(1) - 1) * u64::from(size)
}

/// Reads an error answer: the status and `error_code` decide the variant.
fn error_from(operation: &'static str, response: &Response, sent: &[&str]) -> GatewayError {
    let body: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let status = response.status;
    let code = body.error_code.unwrap_or_else(|| format!("HTTP{status}"));
    let raw = body.error_msg.unwrap_or_else(|| {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(300)
            .collect()
    });
    let message = redact(&raw, sent);
    if status == 429 || THROTTLING_CODES.contains(&code.as_str()) {
        return GatewayError::Throttled {
            provider: PROVIDER,
            operation,
            retry_after: retry_after(&response.headers),
        };
    }
    match status {
        401 | 403 => GatewayError::Unauthorized {
            provider: PROVIDER,
            operation,
            code,
            message,
        },
        404 => GatewayError::NotFound {
            provider: PROVIDER,
            operation,
            code,
            message,
        },
        500.. => GatewayError::Unavailable {
            provider: PROVIDER,
            operation,
            status,
            message: format!("{code}: {message}"),
        },
        _ => GatewayError::Rejected {
            provider: PROVIDER,
            operation,
            code,
            message,
        },
    }
}

/// `Retry-After` in seconds, where the gateway sends it.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn remote_app(app: AppInfo) -> RemoteApp {
    let keys = app
        .app_key
        .map(|key| KeyPair {
            key,
            secret: app.app_secret.map(|s| SecretValue::new(s.0)),
        })
        .into_iter()
        .collect();
    RemoteApp {
        id: app.id,
        name: app.name,
        remark: app.remark.unwrap_or_default(),
        keys,
    }
}

fn remote_signature(sign: SignatureInfo) -> RemoteSignature {
    RemoteSignature {
        id: sign.id,
        name: sign.name,
        sign_type: sign.sign_type.unwrap_or_default(),
        key: sign.sign_key.unwrap_or_default(),
        secret: sign.sign_secret.map(|s| SecretValue::new(s.0)),
    }
}

fn signature_body(signature: &SignatureWrite) -> BaseSignature {
    BaseSignature {
        name: signature.name.clone(),
        sign_type: Some(signature.sign_type.clone()),
        sign_key: Some(signature.key.clone()),
        sign_secret: Some(Secret(signature.secret.expose().to_string())),
        sign_algorithm: signature.algorithm.clone(),
    }
}

fn not_supported(operation: &'static str) -> GatewayError {
    GatewayError::Rejected {
        provider: PROVIDER,
        operation,
        code: "NotSupported".into(),
        message: "Huawei APIG holds one AppKey/AppSecret pair per app".into(),
    }
}

impl GatewayApi for HuaweiClient {
    /// ShowDetailsOfInstanceV2: credentials, project and instance at once.
    async fn check(&self) -> Result<()> {
        let call = Call::new("ShowDetailsOfInstanceV2", http::Method::GET, "");
        let _: InstanceInfo = self.send_json(call).await?;
        Ok(())
    }

    fn holds_several_keys(&self) -> bool {
        false
    }

    async fn find_app(&self, name: &str) -> Result<Option<RemoteApp>> {
        let mut page = Some(1);
        while let Some(number) = page {
            let found = self.list_apps_page(number, Some(name)).await?;
            if let Some(app) = found.items.into_iter().find(|a| a.name == name) {
                return Ok(Some(app));
            }
            page = found.next;
        }
        Ok(None)
    }

    async fn list_apps(&self, page: u32) -> Result<Page<RemoteApp>> {
        self.list_apps_page(page, None).await
    }

    async fn create_app(&self, app: &AppWrite) -> Result<RemoteApp> {
        rules::check_app(app).map_err(|b| breach("CreateAnAppV2", b))?;
        let body = AppCreate {
            name: app.name.clone(),
            remark: Some(app.remark.clone()),
            app_key: Some(app.key.clone()),
            app_secret: Some(Secret(app.secret.expose().to_string())),
        };
        let sent = vec![app.key.as_str(), app.secret.expose()];
        let call = Call::new("CreateAnAppV2", http::Method::POST, "/apps").json(&body, sent)?;
        self.send_json(call).await.map(remote_app)
    }

    async fn update_app(&self, id: &str, app: &AppWrite) -> Result<()> {
        rules::check_app_fields(&app.name, &app.remark).map_err(|b| breach("UpdateAppV2", b))?;
        let body = AppCreate {
            name: app.name.clone(),
            remark: Some(app.remark.clone()),
            app_key: None,
            app_secret: None,
        };
        let call = Call::new(
            "UpdateAppV2",
            http::Method::PUT,
            format!("/apps/{}", sign::encode(id)),
        )
        .json(&body, Vec::new())?;
        self.send(call).await.map(drop)
    }

    /// The same key: ResettingAppSecretV2 with the new secret. A new key:
    /// UpdateAppV2 with both (Huawei's reset cannot change the key), after
    /// reading the app's name and remark, which that call requires.
    async fn reset_secret(
        &self,
        id: &str,
        current_key: &str,
        key: &str,
        secret: &SecretValue,
    ) -> Result<()> {
        rules::check_app_key(key).map_err(|b| breach("ResettingAppSecretV2", b))?;
        rules::check_app_secret(secret.expose()).map_err(|b| breach("ResettingAppSecretV2", b))?;
        let wire_secret = Some(Secret(secret.expose().to_string()));
        let sent = vec![key, secret.expose()];
        let call = if key == current_key {
            let body = AppResetCreate {
                app_secret: wire_secret,
            };
            Call::new(
                "ResettingAppSecretV2",
                http::Method::PUT,
                format!("/apps/secret/{}", sign::encode(id)),
            )
            .json(&body, sent)?
        } else {
            let app = self.show_app(id).await?;
            let body = AppCreate {
                name: app.name,
                remark: app.remark,
                app_key: Some(key.to_string()),
                app_secret: wire_secret,
            };
            Call::new(
                "UpdateAppV2",
                http::Method::PUT,
                format!("/apps/{}", sign::encode(id)),
            )
            .json(&body, sent)?
        };
        self.send(call).await.map(drop)
    }

    async fn add_key(&self, _id: &str, _key: &str, _secret: &SecretValue) -> Result<()> {
        Err(not_supported("add_key"))
    }

    async fn remove_key(&self, _id: &str, _key: &str) -> Result<()> {
        Err(not_supported("remove_key"))
    }

    async fn delete_app(&self, id: &str) -> Result<()> {
        let call = Call::new(
            "DeleteAppV2",
            http::Method::DELETE,
            format!("/apps/{}", sign::encode(id)),
        );
        self.send(call).await.map(drop)
    }

    async fn find_signature(&self, name: &str) -> Result<Option<RemoteSignature>> {
        let mut page = Some(1);
        while let Some(number) = page {
            let found = self.list_signatures_page(number, Some(name)).await?;
            if let Some(sign) = found.items.into_iter().find(|s| s.name == name) {
                return Ok(Some(sign));
            }
            page = found.next;
        }
        Ok(None)
    }

    async fn list_signatures(&self, page: u32) -> Result<Page<RemoteSignature>> {
        self.list_signatures_page(page, None).await
    }

    async fn create_signature(&self, signature: &SignatureWrite) -> Result<RemoteSignature> {
        rules::check_signature(signature).map_err(|b| breach("CreateSignatureKeyV2", b))?;
        let sent = vec![signature.key.as_str(), signature.secret.expose()];
        let call = Call::new("CreateSignatureKeyV2", http::Method::POST, "/signs")
            .json(&signature_body(signature), sent)?;
        self.send_json(call).await.map(remote_signature)
    }

    async fn update_signature(&self, id: &str, signature: &SignatureWrite) -> Result<()> {
        rules::check_signature(signature).map_err(|b| breach("UpdateSignatureKeyV2", b))?;
        let sent = vec![signature.key.as_str(), signature.secret.expose()];
        let call = Call::new(
            "UpdateSignatureKeyV2",
            http::Method::PUT,
            format!("/signs/{}", sign::encode(id)),
        )
        .json(&signature_body(signature), sent)?;
        self.send(call).await.map(drop)
    }

    async fn delete_signature(&self, id: &str) -> Result<()> {
        let call = Call::new(
            "DeleteSignatureKeyV2",
            http::Method::DELETE,
            format!("/signs/{}", sign::encode(id)),
        );
        self.send(call).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str, retry_after: Option<&str>) -> Response {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        }
        Response {
            status,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> GatewayError {
        let body = format!(r#"{{"error_code":"{code}","error_msg":"{message}"}}"#);
        error_from("Op", &response(status, &body, None), &["topsecret"])
    }

    #[test]
    fn status_and_code_choose_the_variant() {
        let unauthorized = error(401, "APIGW.0301", "verify aksk signature fail");
        assert!(matches!(unauthorized, GatewayError::Unauthorized { .. }));
        assert!(matches!(
            error(403, "APIG.1005", "x"),
            GatewayError::Unauthorized { .. }
        ));
        assert!(matches!(
            error(404, "APIG.3004", "x"),
            GatewayError::NotFound { .. }
        ));
        assert!(matches!(
            error(400, "APIG.3203", "x"),
            GatewayError::Rejected { .. }
        ));
        assert!(matches!(
            error(409, "APIG.3203", "x"),
            GatewayError::Rejected { .. }
        ));
        assert!(matches!(
            error(400, "APIGW.0308", "x"),
            GatewayError::Throttled { .. }
        ));
        let unavailable = error(500, "APIG.9999", "System error");
        assert!(matches!(
            unavailable,
            GatewayError::Unavailable { status: 500, .. }
        ));
        assert!(unavailable.may_have_acted());
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let answer = response(429, "not json", Some("7"));
        match error_from("Op", &answer, &[]) {
            GatewayError::Throttled { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn sent_values_are_removed_from_messages() {
        let rejected = error(400, "APIG.2012", "app_secret topsecret is invalid");
        assert!(!rejected.to_string().contains("topsecret"), "{rejected}");
        assert!(!format!("{rejected:?}").contains("topsecret"));
        let plain = error_from(
            "Op",
            &response(502, "bad gateway topsecret", None),
            &["topsecret"],
        );
        assert!(plain.to_string().contains("HTTP502"), "{plain}");
        assert!(!plain.to_string().contains("topsecret"));
    }
}
