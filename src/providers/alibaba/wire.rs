//! The CloudAPI (2016-07-14) actions keysmith uses, as typed request
//! parameters and response bodies. Names and shapes follow the official SDK
//! alibabacloud-cloudapi20160714 4.9.0: every action is `POST /` with its
//! parameters in the query string, the action and version in the
//! `x-acs-action` / `x-acs-version` headers, and a JSON answer in
//! PascalCase with a `RequestId`.
//!
//! Request types derive `Serialize` (the client turns them into query
//! parameters) and `Deserialize` (the conformance server reads them back from
//! the query). Types that carry a secret do not derive `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The API version every action names.
pub const VERSION: &str = "2016-07-14";
/// The largest `PageSize` the list actions take (assumed: Alibaba's
/// reference gives 100 as the maximum for DescribeAppAttributes).
pub const MAX_PAGE_SIZE: u32 = 100;

/// One action: its name (the `x-acs-action` header, the RAM action
/// `apigateway:<Name>`, the conformance server's operation), whether it
/// writes, and its answer.
pub trait Action: Serialize {
    const NAME: &'static str;
    const WRITES: bool;
    type Answer: DeserializeOwned;
}

/// A secret inside a wire type: serialized as the plain string, never shown
/// by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireSecret(pub String);

impl fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WireSecret(<{} bytes>)", self.0.len())
    }
}

/// The request's query parameters as strings, `None` fields left out.
pub fn to_params<T: Serialize>(request: &T) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(request) {
        for (name, value) in fields {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            params.insert(name, text);
        }
    }
    params
}

macro_rules! action {
    ($request:ident, $name:literal, $writes:literal, $answer:ty) => {
        impl Action for $request {
            const NAME: &'static str = $name;
            const WRITES: bool = $writes;
            type Answer = $answer;
        }
    };
}

/// Answers that carry nothing but the request id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ack {
    pub request_id: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateApp {
    pub app_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<WireSecret>,
}
action!(CreateApp, "CreateApp", true, CreateAppAnswer);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAppAnswer {
    pub request_id: String,
    /// Numeric at Alibaba (an integer in the JSON answer).
    pub app_id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyApp {
    pub app_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
action!(ModifyApp, "ModifyApp", true, Ack);

/// Replaces the pair named by `AppKey`: a new secret (generated unless
/// `NewAppSecret` is given) and, with `NewAppKey`, a new key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResetAppSecret {
    pub app_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_app_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_app_secret: Option<WireSecret>,
}
action!(ResetAppSecret, "ResetAppSecret", true, Ack);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteApp {
    pub app_id: u64,
}
action!(DeleteApp, "DeleteApp", true, Ack);

/// Adds a pair beside the app's others (overlap at the gateway).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAppKey {
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<WireSecret>,
}
action!(CreateAppKey, "CreateAppKey", true, Ack);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAppKey {
    pub app_id: String,
    pub app_key: String,
}
action!(DeleteAppKey, "DeleteAppKey", true, Ack);

/// The caller's own apps, paged: ids, names, descriptions — no keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAppAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}
action!(
    DescribeAppAttributes,
    "DescribeAppAttributes",
    false,
    DescribeAppAttributesAnswer
);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAppAttributesAnswer {
    pub request_id: String,
    pub page_number: u32,
    pub page_size: u32,
    pub total_count: u32,
    pub apps: AppAttributes,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppAttributes {
    #[serde(default)]
    pub app_attribute: Vec<AppAttribute>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppAttribute {
    pub app_id: u64,
    pub app_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub modified_time: String,
}

/// Every key pair of one app, with secrets (per app, not paged).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAppSecurities {
    pub app_id: u64,
}
action!(
    DescribeAppSecurities,
    "DescribeAppSecurities",
    false,
    DescribeAppSecuritiesAnswer
);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DescribeAppSecuritiesAnswer {
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// Alibaba's spelling.
    #[serde(rename = "AppSecuritys")]
    pub app_securitys: AppSecuritys,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppSecuritys {
    #[serde(default)]
    pub app_security: Vec<AppSecurity>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppSecurity {
    pub app_key: String,
    pub app_secret: WireSecret,
    #[serde(default)]
    pub app_code: String,
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub modified_time: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSignature {
    pub signature_name: String,
    pub signature_key: String,
    pub signature_secret: WireSecret,
}
action!(
    CreateSignature,
    "CreateSignature",
    true,
    CreateSignatureAnswer
);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSignatureAnswer {
    pub request_id: String,
    pub signature_id: String,
    pub signature_name: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifySignature {
    pub signature_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_secret: Option<WireSecret>,
}
action!(ModifySignature, "ModifySignature", true, Ack);

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSignature {
    pub signature_id: String,
}
action!(DeleteSignature, "DeleteSignature", true, Ack);

/// Backend signature keys, paged, with their keys and secrets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSignatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}
action!(
    DescribeSignatures,
    "DescribeSignatures",
    false,
    DescribeSignaturesAnswer
);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSignaturesAnswer {
    pub request_id: String,
    pub page_number: u32,
    pub page_size: u32,
    pub total_count: u32,
    pub signature_infos: SignatureInfos,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureInfos {
    #[serde(default)]
    pub signature_info: Vec<SignatureInfo>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignatureInfo {
    #[serde(default)]
    pub region_id: String,
    pub signature_id: String,
    pub signature_name: String,
    pub signature_key: String,
    pub signature_secret: WireSecret,
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub modified_time: String,
}

/// Alibaba's error body (any 4xx/5xx answer).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub host_id: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub recommend: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_pascal_case_strings_without_absent_fields() {
        let params = to_params(&DescribeAppAttributes {
            page_number: Some(2),
            page_size: Some(100),
            ..Default::default()
        });
        assert_eq!(params.len(), 2);
        assert_eq!(params["PageNumber"], "2");
        assert_eq!(params["PageSize"], "100");
        let params = to_params(&CreateApp {
            app_name: "orders".into(),
            description: None,
            app_key: Some("k".into()),
            app_secret: Some(WireSecret("s".into())),
        });
        assert_eq!(params["AppSecret"], "s");
        assert!(!params.contains_key("Description"));
    }

    #[test]
    fn a_wire_secret_hides_its_value() {
        let shown = format!("{:?}", WireSecret("TopSecret".into()));
        assert!(!shown.contains("TopSecret"));
    }
}
