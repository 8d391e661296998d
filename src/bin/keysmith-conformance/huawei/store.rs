//! The server's state and the operations on it: pure functions of the store,
//! the request and the time, answering the real API's bodies and errors.

use std::time::SystemTime;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keysmith::providers::huawei::rules::{self, Breach, SignType};
use keysmith::providers::huawei::time::format_rfc3339;
use keysmith::providers::huawei::wire::{
    AppCreate, AppInfo, AppList, AppResetCreate, BaseSignature, ErrorBody, InstanceInfo, Secret,
    SignatureInfo, SignatureList,
};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Op;

/// An error answer: status, `error_code`, `error_msg`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type Answer = Result<(StatusCode, Value), ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        serde_json::to_value(ErrorBody {
            error_code: Some(self.code.into()),
            error_msg: Some(self.message.clone()),
            request_id: Some(random_hex(16)),
        })
        .unwrap_or(Value::Null)
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "APIGW.0301", message)
    }

    /// A body field breaks a rule: APIG.2011, as Huawei's create examples
    /// answer a bad `name`.
    pub fn bad_parameter(name: &str) -> Self {
        let message = format!(
            "Invalid parameter value,parameterName:{name}. Please refer to the support documentation"
        );
        Self::new(StatusCode::BAD_REQUEST, "APIG.2011", message)
    }

    fn breach(breach: Breach) -> Self {
        Self::bad_parameter(breach.field)
    }

    pub fn no_such_api() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment",
        )
    }

    pub fn no_instance(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "APIG.3030",
            format!("The instance does not exist;id:{id}"),
        )
    }

    pub fn system_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "APIG.9999",
            "System error",
        )
    }

    pub fn throttled() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "APIGW.0308",
            "The throttling threshold has been reached",
        )
    }

    fn no_app(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "APIG.3004",
            format!("App {id} does not exist"),
        )
    }

    fn no_sign(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "APIG.3017",
            format!("The signature key does not exist;id:{id}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system's generator does not fail on Linux; zeros would still be hex.
    let _ = SystemRandom::new().fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn ok(status: StatusCode, value: impl Serialize) -> Answer {
    serde_json::to_value(value)
        .map(|json| (status, json))
        .map_err(|_| ApiError::system_error())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::bad_parameter("body"))
}

/// Every app and signature key of the one instance, in creation order.
pub struct Store {
    project_id: String,
    instance_id: String,
    apps: Vec<AppInfo>,
    signs: Vec<SignatureInfo>,
}

impl Store {
    pub fn new(project_id: &str, instance_id: &str) -> Self {
        Store {
            project_id: project_id.into(),
            instance_id: instance_id.into(),
            apps: Vec::new(),
            signs: Vec::new(),
        }
    }

    pub fn execute(
        &mut self,
        op: &Op,
        query: &[(String, String)],
        body: &[u8],
        now: SystemTime,
    ) -> Answer {
        let stamp = format_rfc3339(now);
        match op {
            Op::ShowInstance => ok(StatusCode::OK, self.instance()),
            Op::CreateApp => self.create_app(parse(body)?, stamp),
            Op::ListApps => ok(StatusCode::OK, self.list_apps(query)),
            Op::ShowApp(id) => ok(StatusCode::OK, self.app(id)?.clone()),
            Op::UpdateApp(id) => self.update_app(id, parse(body)?, stamp),
            Op::ResetSecret(id) => self.reset_secret(id, parse(body)?, stamp),
            Op::DeleteApp(id) => {
                self.app(id)?;
                self.apps.retain(|a| a.id != *id);
                ok(StatusCode::NO_CONTENT, Value::Null)
            }
            Op::CreateSign => self.create_sign(parse(body)?, stamp),
            Op::ListSigns => ok(StatusCode::OK, self.list_signs(query)),
            Op::UpdateSign(id) => self.update_sign(id, parse(body)?, stamp),
            Op::DeleteSign(id) => {
                self.sign(id)?;
                self.signs.retain(|s| s.id != *id);
                ok(StatusCode::NO_CONTENT, Value::Null)
            }
        }
    }

    fn instance(&self) -> InstanceInfo {
        InstanceInfo {
            id: self.instance_id.clone(),
            project_id: Some(self.project_id.clone()),
            instance_name: Some("keysmith-conformance".into()),
            status: Some("Running".into()),
        }
    }

    fn app(&self, id: &str) -> Result<&AppInfo, ApiError> {
        self.apps
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| ApiError::no_app(id))
    }

    fn sign(&self, id: &str) -> Result<&SignatureInfo, ApiError> {
        self.signs
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ApiError::no_sign(id))
    }

    /// Name unique, AppKey unique, both among the other apps.
    fn check_app_unique(&self, id: &str, name: &str, key: Option<&str>) -> Result<(), ApiError> {
        let others = || self.apps.iter().filter(|a| a.id != id);
        if others().any(|a| a.name == name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "APIG.3203",
                "The app name already exists",
            ));
        }
        if let Some(key) = key
            && others().any(|a| a.app_key.as_deref() == Some(key))
        {
            // APIG.3310 "The AppKey already exists." (error code appendix).
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "APIG.3310",
                "The AppKey already exists",
            ));
        }
        Ok(())
    }

    fn check_app_body(body: &AppCreate) -> Result<(), ApiError> {
        rules::check_app_fields(&body.name, body.remark.as_deref().unwrap_or(""))
            .map_err(ApiError::breach)?;
        if let Some(key) = &body.app_key {
            rules::check_app_key(key).map_err(ApiError::breach)?;
        }
        if let Some(secret) = &body.app_secret {
            rules::check_app_secret(&secret.0).map_err(ApiError::breach)?;
        }
        Ok(())
    }

    fn create_app(&mut self, body: AppCreate, stamp: String) -> Answer {
        Self::check_app_body(&body)?;
        self.check_app_unique("", &body.name, body.app_key.as_deref())?;
        let app = AppInfo {
            id: random_hex(16),
            name: body.name,
            remark: Some(body.remark.unwrap_or_default()),
            creator: Some("USER".into()),
            update_time: Some(stamp.clone()),
            app_key: Some(body.app_key.unwrap_or_else(|| random_hex(16))),
            app_secret: Some(body.app_secret.unwrap_or_else(|| Secret(random_hex(16)))),
            register_time: Some(stamp),
            status: Some(1),
            app_type: Some("apig".into()),
            bind_num: None,
        };
        self.apps.push(app.clone());
        ok(StatusCode::CREATED, app)
    }

    fn update_app(&mut self, id: &str, body: AppCreate, stamp: String) -> Answer {
        self.app(id)?;
        Self::check_app_body(&body)?;
        self.check_app_unique(id, &body.name, body.app_key.as_deref())?;
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| ApiError::no_app(id))?;
        app.name = body.name;
        if body.remark.is_some() {
            app.remark = body.remark;
        }
        if body.app_key.is_some() {
            app.app_key = body.app_key;
        }
        if body.app_secret.is_some() {
            app.app_secret = body.app_secret;
        }
        app.update_time = Some(stamp);
        ok(StatusCode::OK, app.clone())
    }

    fn reset_secret(&mut self, id: &str, body: AppResetCreate, stamp: String) -> Answer {
        if let Some(secret) = &body.app_secret {
            rules::check_app_secret(&secret.0).map_err(ApiError::breach)?;
        }
        self.app(id)?;
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| ApiError::no_app(id))?;
        app.app_secret = Some(body.app_secret.unwrap_or_else(|| Secret(random_hex(16))));
        app.update_time = Some(stamp);
        ok(StatusCode::OK, app.clone())
    }

    fn list_apps(&self, query: &[(String, String)]) -> AppList {
        let filter = Filter::from_query(query);
        let matching: Vec<&AppInfo> = self
            .apps
            .iter()
            .filter(|a| filter.matches(&a.id, &a.name, a.app_key.as_deref()))
            .collect();
        let page = filter.page(&matching);
        AppList {
            total: matching.len() as u32,
            size: page.len() as u32,
            apps: page
                .iter()
                .map(|a| AppInfo {
                    bind_num: Some(0),
                    ..(*a).clone()
                })
                .collect(),
        }
    }

    fn check_sign_body(body: &BaseSignature) -> Result<(SignType, usize), ApiError> {
        rules::check_sign_name(&body.name).map_err(ApiError::breach)?;
        let sign_type = body.sign_type.as_deref().unwrap_or("hmac");
        let (kind, len) = rules::check_sign_type(sign_type, body.sign_algorithm.as_deref())
            .map_err(ApiError::breach)?;
        if let Some(key) = &body.sign_key {
            rules::check_sign_key(kind, len, key).map_err(ApiError::breach)?;
        }
        if let Some(secret) = &body.sign_secret {
            rules::check_sign_secret(kind, len, &secret.0).map_err(ApiError::breach)?;
        }
        Ok((kind, len))
    }

    fn check_sign_unique(&self, id: &str, name: &str) -> Result<(), ApiError> {
        if self.signs.iter().any(|s| s.id != id && s.name == name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "APIG.3207",
                "The signature key name already exists",
            ));
        }
        Ok(())
    }

    fn create_sign(&mut self, body: BaseSignature, stamp: String) -> Answer {
        let (kind, len) = Self::check_sign_body(&body)?;
        self.check_sign_unique("", &body.name)?;
        let (key, secret) = generated_sign_pair(kind, len);
        let sign = SignatureInfo {
            id: random_hex(16),
            name: body.name,
            sign_type: Some(kind.as_str().into()),
            sign_key: Some(body.sign_key.unwrap_or(key)),
            sign_secret: Some(body.sign_secret.unwrap_or(Secret(secret))),
            sign_algorithm: body.sign_algorithm,
            create_time: Some(stamp.clone()),
            update_time: Some(stamp),
            bind_num: None,
        };
        self.signs.push(sign.clone());
        ok(StatusCode::CREATED, sign)
    }

    fn update_sign(&mut self, id: &str, body: BaseSignature, stamp: String) -> Answer {
        self.sign(id)?;
        let (kind, len) = Self::check_sign_body(&body)?;
        self.check_sign_unique(id, &body.name)?;
        let (key, secret) = generated_sign_pair(kind, len);
        let sign = self
            .signs
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| ApiError::no_sign(id))?;
        sign.name = body.name;
        sign.sign_type = Some(kind.as_str().into());
        sign.sign_key = Some(body.sign_key.unwrap_or(key));
        sign.sign_secret = Some(body.sign_secret.unwrap_or(Secret(secret)));
        sign.sign_algorithm = body.sign_algorithm;
        sign.update_time = Some(stamp);
        ok(StatusCode::OK, sign.clone())
    }

    fn list_signs(&self, query: &[(String, String)]) -> SignatureList {
        let filter = Filter::from_query(query);
        let matching: Vec<&SignatureInfo> = self
            .signs
            .iter()
            .filter(|s| filter.matches(&s.id, &s.name, None))
            .collect();
        let page = filter.page(&matching);
        SignatureList {
            total: matching.len() as u32,
            size: page.len() as u32,
            signs: page
                .iter()
                .map(|s| SignatureInfo {
                    bind_num: Some(0),
                    ..(*s).clone()
                })
                .collect(),
        }
    }
}

/// A key and secret the gateway makes up when the caller sends none
/// (assumed shapes: hex, within the type's rules).
fn generated_sign_pair(kind: SignType, aes_key_len: usize) -> (String, String) {
    match kind {
        SignType::Hmac => (random_hex(16), random_hex(16)),
        SignType::Basic => (format!("k{}", &random_hex(16)[1..]), random_hex(16)),
        SignType::PublicKey => (random_hex(16), random_hex(32)),
        SignType::Aes => (random_hex(aes_key_len / 2), random_hex(8)),
    }
}

/// A list call's filters and page: offset below 0 is 0, a limit of 0 or less
/// is 20 and above 500 is 500 (the SDK docstrings).
struct Filter {
    id: Option<String>,
    name: Option<String>,
    app_key: Option<String>,
    precise_name: bool,
    offset: usize,
    limit: usize,
}

impl Filter {
    fn from_query(query: &[(String, String)]) -> Self {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let number = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
        let limit = match number("limit") {
            Some(l) if l > 500 => 500,
            Some(l) if l > 0 => l as usize,
            _ => 20,
        };
        Filter {
            id: get("id"),
            name: get("name"),
            app_key: get("app_key"),
            precise_name: get("precise_search").as_deref() == Some("name"),
            offset: number("offset").unwrap_or(0).max(0) as usize,
            limit,
        }
    }

    fn matches(&self, id: &str, name: &str, app_key: Option<&str>) -> bool {
        let name_ok = match (&self.name, self.precise_name) {
            (None, _) => true,
            (Some(wanted), true) => name == wanted,
            (Some(wanted), false) => name.contains(wanted.as_str()),
        };
        name_ok
            && self.id.as_deref().is_none_or(|w| w == id)
            && self.app_key.as_deref().is_none_or(|w| Some(w) == app_key)
    }

    fn page<'a, T>(&self, items: &[&'a T]) -> Vec<&'a T> {
        items
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .copied()
            .collect()
    }
}
