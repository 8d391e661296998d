//! The conformance server's Alibaba state: apps with their key pairs and
//! backend signature keys, and one function per action. Each answers the
//! JSON body of success or an [`ApiError`] with Alibaba's code.
//!
//! Codes follow Alibaba's management-API error table (`Repeated%s`,
//! `NotFound%s`, `Invalid%s`, all HTTP 400); the exact names for each case
//! are listed in docs/cloud-alibaba.md as documented or assumed.

use std::collections::{BTreeMap, HashSet};

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use keysmith::providers::alibaba::rules::{self, Breach};
use keysmith::providers::alibaba::sign;
use keysmith::providers::alibaba::wire::{self, WireSecret};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answer: HTTP status, Alibaba's `Code` and `Message`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.to_string(),
        }
    }
    fn bad(code: &str, message: &str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn repeated(what: &str) -> Self {
        ApiError::bad(
            &format!("Repeated{what}"),
            &format!("The specified {what} is repeated."),
        )
    }
    fn not_found(what: &str) -> Self {
        ApiError::bad(
            &format!("NotFound{what}"),
            &format!("Cannot find resource according to your specified {what}."),
        )
    }
}

impl From<Breach> for ApiError {
    fn from(breach: Breach) -> Self {
        ApiError::bad(
            &format!("Invalid{}", breach.parameter),
            &format!(
                "The specified parameter {} value is not valid: {}.",
                breach.parameter, breach.rule
            ),
        )
    }
}

struct App {
    name: String,
    description: String,
    created: String,
    modified: String,
    /// (AppKey, AppSecret), the first pair the app was created with.
    pairs: Vec<(String, String)>,
}

struct Signature {
    name: String,
    key: String,
    secret: String,
    created: String,
    modified: String,
}

pub struct Store {
    region: String,
    apps: BTreeMap<u64, App>,
    signatures: BTreeMap<String, Signature>,
    next_app_id: u64,
    next_app_key: u64,
    nonces: HashSet<String>,
}

type Answer = Result<Value, ApiError>;

fn now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    sign::format_timestamp(seconds)
}

/// The typed parameters of one action, read from the query.
fn params<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad("MissingParameter", &e.body_text()))
}

/// Page number and size as Alibaba takes them: 1 and 10 by default, at
/// most 100 a page.
fn page_bounds(number: Option<u32>, size: Option<u32>) -> Result<(u32, u32), ApiError> {
    let number = number.unwrap_or(1);
    let size = size.unwrap_or(10);
    if number == 0 || size == 0 || size > wire::MAX_PAGE_SIZE {
        return Err(ApiError::bad(
            "InvalidParameter",
            "The specified parameter PageNumber or PageSize value is not valid.",
        ));
    }
    Ok((number, size))
}

fn page_of<T: Clone>(items: &[T], number: u32, size: u32) -> Vec<T> {
    items
        .iter()
        .skip(((number - 1) * size) as usize)
        .take(size as usize)
        .cloned()
        .collect()
}

impl Store {
    pub fn new(region: &str) -> Self {
        Store {
            region: region.to_string(),
            apps: BTreeMap::new(),
            signatures: BTreeMap::new(),
            next_app_id: 110_840_611,
            next_app_key: 204_203_237,
            nonces: HashSet::new(),
        }
    }

    /// A nonce seen before is a replay (`SignatureNonceUsed`).
    pub fn take_nonce(&mut self, nonce: &str) -> bool {
        self.nonces.insert(nonce.to_string())
    }

    /// Runs `action` with the query of `uri`; `None` for an unknown action.
    pub fn act(&mut self, action: &str, uri: &Uri) -> Option<Answer> {
        Some(match action {
            "CreateApp" => params(uri).and_then(|p| self.create_app(p)),
            "ModifyApp" => params(uri).and_then(|p| self.modify_app(p)),
            "ResetAppSecret" => params(uri).and_then(|p| self.reset_app_secret(p)),
            "DeleteApp" => params(uri).and_then(|p| self.delete_app(p)),
            "CreateAppKey" => params(uri).and_then(|p| self.create_app_key(p)),
            "DeleteAppKey" => params(uri).and_then(|p| self.delete_app_key(p)),
            "DescribeAppAttributes" => params(uri).and_then(|p| self.describe_apps(p)),
            "DescribeAppSecurities" => params(uri).and_then(|p| self.describe_securities(p)),
            "CreateSignature" => params(uri).and_then(|p| self.create_signature(p)),
            "ModifySignature" => params(uri).and_then(|p| self.modify_signature(p)),
            "DeleteSignature" => params(uri).and_then(|p| self.delete_signature(p)),
            "DescribeSignatures" => params(uri).and_then(|p| self.describe_signatures(p)),
            _ => return None,
        })
    }

    /// Whether `action` changes the store (for the control's write count).
    pub fn writes(action: &str) -> bool {
        !action.starts_with("Describe")
    }

    fn key_taken(&self, key: &str) -> bool {
        self.apps
            .values()
            .any(|app| app.pairs.iter().any(|(k, _)| k == key))
    }

    fn name_taken(&self, name: &str, except: Option<u64>) -> bool {
        self.apps
            .iter()
            .any(|(id, app)| app.name == name && Some(*id) != except)
    }

    /// A key given by the caller must be unused; one not given is made.
    fn issue_pair(
        &mut self,
        key: Option<String>,
        secret: Option<WireSecret>,
    ) -> Result<(String, String), ApiError> {
        let key = match key {
            Some(key) if self.key_taken(&key) => return Err(ApiError::repeated("AppKey")),
            Some(key) if key.is_empty() || key.len() > 64 => {
                return Err(ApiError::bad(
                    "InvalidAppKey",
                    "The specified AppKey is not valid.",
                ));
            }
            Some(key) => key,
            None => {
                self.next_app_key += 1;
                self.next_app_key.to_string()
            }
        };
        let secret = secret.map(|s| s.0).unwrap_or_else(sign::nonce);
        Ok((key, secret))
    }

    fn create_app(&mut self, p: wire::CreateApp) -> Answer {
        rules::check_app_name(&p.app_name)?;
        let description = p.description.unwrap_or_default();
        rules::check_description(&description)?;
        if self.name_taken(&p.app_name, None) {
            return Err(ApiError::repeated("AppName"));
        }
        let pair = self.issue_pair(p.app_key, p.app_secret)?;
        self.next_app_id += 1;
        let id = self.next_app_id;
        let created = now();
        self.apps.insert(
            id,
            App {
                name: p.app_name,
                description,
                modified: created.clone(),
                created,
                pairs: vec![pair],
            },
        );
        Ok(json!({ "AppId": id }))
    }

    fn app_mut(&mut self, id: u64) -> Result<&mut App, ApiError> {
        self.apps
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("App"))
    }

    fn modify_app(&mut self, p: wire::ModifyApp) -> Answer {
        self.app_mut(p.app_id)?;
        if let Some(name) = &p.app_name {
            rules::check_app_name(name)?;
            if self.name_taken(name, Some(p.app_id)) {
                return Err(ApiError::repeated("AppName"));
            }
        }
        if let Some(description) = &p.description {
            rules::check_description(description)?;
        }
        let app = self.app_mut(p.app_id)?;
        if let Some(name) = p.app_name {
            app.name = name;
        }
        if let Some(description) = p.description {
            app.description = description;
        }
        app.modified = now();
        Ok(json!({}))
    }

    /// The app and index of the pair holding `key`.
    fn pair_of(&self, key: &str) -> Option<(u64, usize)> {
        self.apps.iter().find_map(|(id, app)| {
            let index = app.pairs.iter().position(|(k, _)| k == key)?;
            Some((*id, index))
        })
    }

    fn reset_app_secret(&mut self, p: wire::ResetAppSecret) -> Answer {
        let (id, index) = self
            .pair_of(&p.app_key)
            .ok_or_else(|| ApiError::not_found("AppKey"))?;
        let new_key = match p.new_app_key {
            Some(key) if key != p.app_key => Some(key),
            _ => None,
        };
        let (key, secret) = match new_key {
            Some(key) => self.issue_pair(Some(key), p.new_app_secret)?,
            None => (
                p.app_key.clone(),
                self.issue_pair(None, p.new_app_secret)?.1,
            ),
        };
        let app = self.app_mut(id)?;
        app.pairs[index] = (key, secret);
        app.modified = now();
        Ok(json!({}))
    }

    fn delete_app(&mut self, p: wire::DeleteApp) -> Answer {
        self.apps
            .remove(&p.app_id)
            .map(|_| json!({}))
            .ok_or_else(|| ApiError::not_found("App"))
    }

    fn parse_app_id(text: &str) -> Result<u64, ApiError> {
        text.parse()
            .map_err(|_| ApiError::bad("InvalidAppId", "The specified AppId is not valid."))
    }

    fn create_app_key(&mut self, p: wire::CreateAppKey) -> Answer {
        let id = Self::parse_app_id(&p.app_id)?;
        self.app_mut(id)?;
        let pair = self.issue_pair(p.app_key, p.app_secret)?;
        let app = self.app_mut(id)?;
        app.pairs.push(pair);
        app.modified = now();
        Ok(json!({}))
    }

    fn delete_app_key(&mut self, p: wire::DeleteAppKey) -> Answer {
        let id = Self::parse_app_id(&p.app_id)?;
        let app = self.app_mut(id)?;
        let index = app
            .pairs
            .iter()
            .position(|(k, _)| *k == p.app_key)
            .ok_or_else(|| ApiError::not_found("AppKey"))?;
        if app.pairs.len() == 1 {
            return Err(ApiError::bad(
                "InvalidAppKey",
                "An app keeps at least one AppKey.",
            ));
        }
        app.pairs.remove(index);
        app.modified = now();
        Ok(json!({}))
    }

    fn describe_apps(&mut self, p: wire::DescribeAppAttributes) -> Answer {
        let (number, size) = page_bounds(p.page_number, p.page_size)?;
        // Newest first, as Alibaba's default `Sort=desc`.
        let matching: Vec<Value> = self
            .apps
            .iter()
            .rev()
            .filter(|(id, app)| {
                p.app_id.is_none_or(|want| want == **id)
                    && p.app_name.as_ref().is_none_or(|want| *want == app.name)
            })
            .map(|(id, app)| {
                json!({
                    "AppId": id, "AppName": app.name, "Description": app.description,
                    "CreatedTime": app.created, "ModifiedTime": app.modified,
                    "Disabled": false, "Extend": "",
                    "Tags": { "TagInfo": [] },
                })
            })
            .collect();
        Ok(json!({
            "PageNumber": number, "PageSize": size, "TotalCount": matching.len(),
            "Apps": { "AppAttribute": page_of(&matching, number, size) },
        }))
    }

    fn describe_securities(&mut self, p: wire::DescribeAppSecurities) -> Answer {
        let app = self.app_mut(p.app_id)?;
        let pairs: Vec<Value> = app
            .pairs
            .iter()
            .map(|(key, secret)| {
                json!({
                    "AppKey": key, "AppSecret": secret, "AppCode": "",
                    "CreatedTime": app.created, "ModifiedTime": app.modified,
                })
            })
            .collect();
        Ok(json!({ "AppSecuritys": { "AppSecurity": pairs } }))
    }

    fn signature_name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.signatures
            .iter()
            .any(|(id, s)| s.name == name && Some(id.as_str()) != except)
    }

    fn create_signature(&mut self, p: wire::CreateSignature) -> Answer {
        rules::check_signature_name(&p.signature_name)?;
        rules::check_signature_key(&p.signature_key)?;
        rules::check_signature_secret(&p.signature_secret.0)?;
        if self.signature_name_taken(&p.signature_name, None) {
            return Err(ApiError::repeated("SignatureName"));
        }
        let id = sign::nonce();
        let created = now();
        self.signatures.insert(
            id.clone(),
            Signature {
                name: p.signature_name.clone(),
                key: p.signature_key,
                secret: p.signature_secret.0,
                modified: created.clone(),
                created,
            },
        );
        Ok(json!({ "SignatureId": id, "SignatureName": p.signature_name }))
    }

    fn modify_signature(&mut self, p: wire::ModifySignature) -> Answer {
        if !self.signatures.contains_key(&p.signature_id) {
            return Err(ApiError::not_found("Signature"));
        }
        if let Some(name) = &p.signature_name {
            rules::check_signature_name(name)?;
            if self.signature_name_taken(name, Some(&p.signature_id)) {
                return Err(ApiError::repeated("SignatureName"));
            }
        }
        p.signature_key
            .as_deref()
            .map(rules::check_signature_key)
            .transpose()?;
        let secret = p.signature_secret.map(|s| s.0);
        secret
            .as_deref()
            .map(rules::check_signature_secret)
            .transpose()?;
        let Some(signature) = self.signatures.get_mut(&p.signature_id) else {
            return Err(ApiError::not_found("Signature"));
        };
        signature.name = p.signature_name.unwrap_or(signature.name.clone());
        signature.key = p.signature_key.unwrap_or(signature.key.clone());
        signature.secret = secret.unwrap_or(signature.secret.clone());
        signature.modified = now();
        Ok(json!({ "SignatureId": p.signature_id, "SignatureName": signature.name }))
    }

    fn delete_signature(&mut self, p: wire::DeleteSignature) -> Answer {
        self.signatures
            .remove(&p.signature_id)
            .map(|_| json!({}))
            .ok_or_else(|| ApiError::not_found("Signature"))
    }

    fn describe_signatures(&mut self, p: wire::DescribeSignatures) -> Answer {
        let (number, size) = page_bounds(p.page_number, p.page_size)?;
        let matching: Vec<Value> = self
            .signatures
            .iter()
            .filter(|(id, s)| {
                p.signature_id.as_ref().is_none_or(|want| want == *id)
                    && p.signature_name.as_ref().is_none_or(|want| *want == s.name)
            })
            .map(|(id, s)| {
                json!({
                    "RegionId": self.region, "SignatureId": id, "SignatureName": s.name,
                    "SignatureKey": s.key, "SignatureSecret": s.secret,
                    "CreatedTime": s.created, "ModifiedTime": s.modified,
                })
            })
            .collect();
        Ok(json!({
            "PageNumber": number, "PageSize": size, "TotalCount": matching.len(),
            "SignatureInfos": { "SignatureInfo": page_of(&matching, number, size) },
        }))
    }
}
