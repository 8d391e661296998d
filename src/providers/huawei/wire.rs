//! The JSON bodies of the APIG v2 operations keysmith uses, named as the
//! official SDK's models name them (`huaweicloudsdkapig/v2/model/`). The
//! conformance server serializes the same types, and the SDK's models parse
//! them (tests/conformance_huawei.rs).
//!
//! Secret fields are [`Secret`]: serialized as the plain string the API
//! wants, shown by `Debug` only as a length.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret on the wire (AppSecret, sign_secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// `AppCreate`: the body of CreateAnAppV2 and UpdateAppV2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<Secret>,
}

/// `AppResetCreate`: the body of ResettingAppSecretV2 (no secret: the
/// gateway generates one).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AppResetCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<Secret>,
}

/// An app as the answers of create, show, update, reset and list carry it
/// (`AppInfo`; the list adds `bind_num`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub update_time: Option<String>,
    #[serde(default)]
    pub app_key: Option<String>,
    #[serde(default)]
    pub app_secret: Option<Secret>,
    #[serde(default)]
    pub register_time: Option<String>,
    #[serde(default)]
    pub status: Option<i32>,
    #[serde(default)]
    pub app_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_num: Option<i32>,
}

/// ListAppsV2's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppList {
    pub total: u32,
    pub size: u32,
    #[serde(default)]
    pub apps: Vec<AppInfo>,
}

/// `BaseSignature`: the body of CreateSignatureKeyV2 and UpdateSignatureKeyV2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaseSignature {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algorithm: Option<String>,
}

/// A signature key as create, update and list answer it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignatureInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub sign_type: Option<String>,
    #[serde(default)]
    pub sign_key: Option<String>,
    #[serde(default)]
    pub sign_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algorithm: Option<String>,
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default)]
    pub update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_num: Option<i32>,
}

/// ListSignatureKeysV2's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignatureList {
    pub total: u32,
    pub size: u32,
    #[serde(default)]
    pub signs: Vec<SignatureInfo>,
}

/// The part of ShowDetailsOfInstanceV2's answer `check()` reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Every error answer: `{"error_code": "APIG.3004", "error_msg": "..."}`
/// (the gateway in front adds `request_id`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
