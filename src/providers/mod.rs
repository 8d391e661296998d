//! The cloud API gateways' management APIs (SPEC §11): what keysmith asks of
//! a gateway, one module per provider behind [`GatewayApi`], and the HTTP
//! transport they share ([`http`]).
//!
//! This layer knows no Kubernetes type: the controller turns a connection
//! object into a [`Connection`] and calls these operations; each provider
//! module does its own request signing, wire types and error mapping.
//!
//! No secret value (access key secret, AppSecret, sign secret) ever reaches a
//! `Debug` output, an error message or a log line from here: values travel as
//! [`SecretValue`], and provider messages are redacted before they leave.

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub mod alibaba;
pub mod http;
pub mod huawei;

/// Which management API a connection speaks (SPEC §11.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    HuaweiApig,
    AlibabaApiGateway,
}

impl Provider {
    /// The fixed label of metrics and messages.
    pub fn label(self) -> &'static str {
        match self {
            Provider::HuaweiApig => "HuaweiAPIG",
            Provider::AlibabaApiGateway => "AlibabaAPIGateway",
        }
    }
}

/// A value that must never be shown: `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes>)", self.0.len())
    }
}

/// The access key a connection signs its requests with.
#[derive(Clone, Debug)]
pub struct AccessKey {
    pub id: String,
    pub secret: SecretValue,
}

/// Client-side limits of one connection (SPEC §11.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// One request, connect to last byte.
    pub timeout: Duration,
}

impl Default for Limits {
    /// Below both providers' documented per-account API quotas.
    fn default() -> Self {
        Limits {
            requests_per_second: 10.0,
            burst: 20,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a provider client needs to reach and sign for one gateway.
#[derive(Clone, Debug)]
pub struct Connection {
    pub provider: Provider,
    /// `https://…`; `http://` only for a loopback host (a test server).
    pub endpoint: String,
    pub region: String,
    /// Huawei: the project the instance lives in.
    pub project_id: Option<String>,
    /// Huawei: the APIG instance.
    pub instance_id: Option<String>,
    pub access_key: AccessKey,
    /// Extra PEM roots trusted beside the system's.
    pub ca_bundle: Option<Vec<u8>>,
    pub limits: Limits,
}

/// One AppKey/AppSecret pair as the gateway holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    pub key: String,
    /// `None` where the operation that listed the pair does not return secrets.
    pub secret: Option<SecretValue>,
}

/// An app as the gateway holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteApp {
    /// The gateway's own id of the app.
    pub id: String,
    pub name: String,
    pub remark: String,
    /// Every key pair of the app, the primary first. Huawei has exactly one;
    /// Alibaba may hold more (CreateAppKey), which is how it overlaps.
    pub keys: Vec<KeyPair>,
}

/// What keysmith wants an app to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppWrite {
    pub name: String,
    pub remark: String,
    pub key: String,
    pub secret: SecretValue,
}

/// A signature key as the gateway holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSignature {
    pub id: String,
    pub name: String,
    pub sign_type: String,
    pub key: String,
    /// `None` where the listing does not return secrets.
    pub secret: Option<SecretValue>,
}

/// What keysmith wants a signature key to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureWrite {
    pub name: String,
    /// keysmith's sign type (`hmac`, `basic`, `public_key`, `aes`); each
    /// provider maps it to its own and refuses what it cannot hold.
    pub sign_type: String,
    /// `aes` only: `aes-128-cfb` or `aes-256-cfb`.
    pub algorithm: Option<String>,
    pub key: String,
    pub secret: SecretValue,
}

/// One page of a paged list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The page to ask for next; `None` after the last.
    pub next: Option<u32>,
}

/// What a gateway call can end in. Each variant knows whether retrying can
/// help and whether the gateway may have acted before the answer was lost.
/// Messages are the provider's own, with every value keysmith sent removed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the request for good: a rule, a duplicate, a quota.
    #[error("{provider} refused {operation}: {code}: {message}")]
    Rejected {
        provider: &'static str,
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The access key is unknown, its signature wrong, or it lacks the right.
    #[error("{provider} did not accept the credentials for {operation}: {code}: {message}")]
    Unauthorized {
        provider: &'static str,
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The object (app, signature, instance) is not there.
    #[error("{provider} has no such object for {operation}: {code}: {message}")]
    NotFound {
        provider: &'static str,
        operation: &'static str,
        code: String,
        message: String,
    },
    /// Too many requests: wait (as long as the gateway asked, if it did).
    #[error("{provider} throttled {operation}")]
    Throttled {
        provider: &'static str,
        operation: &'static str,
        retry_after: Option<Duration>,
    },
    /// The gateway answered 5xx: it may or may not have acted.
    #[error("{provider} failed {operation}: HTTP {status}: {message}")]
    Unavailable {
        provider: &'static str,
        operation: &'static str,
        status: u16,
        message: String,
    },
    /// The request may have reached the gateway but no answer came back
    /// (timeout, connection dropped): it may have acted.
    #[error("{provider} gave no answer to {operation}: {reason}")]
    Uncertain {
        provider: &'static str,
        operation: &'static str,
        reason: String,
    },
    /// The request never left: no connection, bad endpoint, bad TLS.
    #[error("cannot reach {provider} for {operation}: {reason}")]
    Unreachable {
        provider: &'static str,
        operation: &'static str,
        reason: String,
    },
    /// The gateway answered something this client cannot read.
    #[error("{provider} answered {operation} with something unreadable: {reason}")]
    Protocol {
        provider: &'static str,
        operation: &'static str,
        reason: String,
    },
}

impl GatewayError {
    /// Retrying without a change to the resource or the connection cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            GatewayError::Rejected { .. } | GatewayError::Unauthorized { .. }
        )
    }

    /// The gateway may have performed the write although the call failed, so
    /// a retry must send the same value (SPEC §11.2, never two secrets).
    pub fn may_have_acted(&self) -> bool {
        matches!(
            self,
            GatewayError::Unavailable { .. } | GatewayError::Uncertain { .. }
        )
    }

    /// The provider's code, or a fixed word for errors without one; a
    /// bounded metric label.
    pub fn code(&self) -> &str {
        match self {
            GatewayError::Rejected { .. } => "rejected",
            GatewayError::Unauthorized { .. } => "unauthorized",
            GatewayError::NotFound { .. } => "not_found",
            GatewayError::Throttled { .. } => "throttled",
            GatewayError::Unavailable { .. } => "unavailable",
            GatewayError::Uncertain { .. } => "uncertain",
            GatewayError::Unreachable { .. } => "unreachable",
            GatewayError::Protocol { .. } => "protocol",
        }
    }
}

/// Removes every value from a provider's message before it is kept anywhere.
pub fn redact(message: &str, values: &[&str]) -> String {
    let mut out = message.to_string();
    for value in values.iter().filter(|v| v.len() >= 4) {
        out = out.replace(value, "<redacted>");
    }
    out
}

pub type Result<T> = std::result::Result<T, GatewayError>;

/// The operations keysmith uses on a cloud gateway (SPEC §11.2). Each
/// provider implements them with its own calls; `docs/gateways.md` lists
/// which call does what.
pub trait GatewayApi: Send + Sync {
    /// A read-only call that proves endpoint, credentials and coordinates.
    fn check(&self) -> impl Future<Output = Result<()>> + Send;
    /// Whether an app holds several key pairs (overlap at the gateway).
    fn holds_several_keys(&self) -> bool;
    /// Whether [`Self::list_apps`] returns each app's key pairs. Where it does
    /// not (Alibaba: no paged list carries AppKeys), a drift check of the
    /// keys costs one [`Self::find_app`] per app.
    fn list_carries_keys(&self) -> bool {
        true
    }

    /// The app of this exact name, if there is one.
    fn find_app(&self, name: &str) -> impl Future<Output = Result<Option<RemoteApp>>> + Send;
    /// One page of apps, with their key pairs (secrets where the list gives
    /// them; none where [`Self::list_carries_keys`] is false). Pages count
    /// from 1; [`Page::next`] names the one to ask for next.
    fn list_apps(&self, page: u32) -> impl Future<Output = Result<Page<RemoteApp>>> + Send;
    fn create_app(&self, app: &AppWrite) -> impl Future<Output = Result<RemoteApp>> + Send;
    /// Name and remark.
    fn update_app(&self, id: &str, app: &AppWrite) -> impl Future<Output = Result<()>> + Send;
    /// Replace the primary pair's key and secret (`current_key` is what the
    /// gateway holds now).
    fn reset_secret(
        &self,
        id: &str,
        current_key: &str,
        key: &str,
        secret: &SecretValue,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Add a pair beside the others (only where [`Self::holds_several_keys`]).
    fn add_key(
        &self,
        id: &str,
        key: &str,
        secret: &SecretValue,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Remove one pair (only where [`Self::holds_several_keys`]).
    fn remove_key(&self, id: &str, key: &str) -> impl Future<Output = Result<()>> + Send;
    fn delete_app(&self, id: &str) -> impl Future<Output = Result<()>> + Send;

    fn find_signature(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<RemoteSignature>>> + Send;
    fn list_signatures(
        &self,
        page: u32,
    ) -> impl Future<Output = Result<Page<RemoteSignature>>> + Send;
    fn create_signature(
        &self,
        signature: &SignatureWrite,
    ) -> impl Future<Output = Result<RemoteSignature>> + Send;
    /// Name, key and secret.
    fn update_signature(
        &self,
        id: &str,
        signature: &SignatureWrite,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_signature(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A client of whichever provider a connection names: the one type the
/// controller holds (the trait's async methods are not object-safe).
#[derive(Clone)]
pub enum Client {
    Huawei(huawei::client::HuaweiClient),
    Alibaba(alibaba::AlibabaClient),
}

/// Calls `$call` on the client inside, whichever provider it is.
macro_rules! each_provider {
    ($client:expr, $inner:ident => $call:expr) => {
        match $client {
            Client::Huawei($inner) => $call,
            Client::Alibaba($inner) => $call,
        }
    };
}

impl Client {
    /// A client for `connection` (no call is made).
    pub fn connect(connection: &Connection) -> Result<Client> {
        match connection.provider {
            Provider::AlibabaApiGateway => {
                Ok(Client::Alibaba(alibaba::AlibabaClient::new(connection)?))
            }
            Provider::HuaweiApig => Ok(Client::Huawei(huawei::client::HuaweiClient::new(
                connection,
            )?)),
        }
    }
}

impl Client {
    /// Reports every request to `observer` (metrics).
    pub fn observe(&mut self, observer: http::Observer) {
        each_provider!(self, c => c.observe(observer))
    }

    /// The gateway's own rules for an app, checked before any call: the
    /// breach (parameter and rule) in words, if one is broken.
    pub fn check_app_rules(&self, app: &AppWrite) -> std::result::Result<(), String> {
        match self {
            Client::Huawei(_) => huawei::rules::check_app(app).map_err(|b| b.to_string()),
            Client::Alibaba(_) => alibaba::rules::check_app(app).map_err(|b| b.to_string()),
        }
    }

    /// The gateway's own rules for a signature key, checked before any call.
    pub fn check_signature_rules(
        &self,
        signature: &SignatureWrite,
    ) -> std::result::Result<(), String> {
        match self {
            Client::Huawei(_) => {
                huawei::rules::check_signature(signature).map_err(|b| b.to_string())
            }
            Client::Alibaba(_) => {
                alibaba::rules::check_signature(signature).map_err(|b| b.to_string())
            }
        }
    }
}

impl GatewayApi for Client {
    async fn check(&self) -> Result<()> {
        each_provider!(self, c => c.check().await)
    }
    fn holds_several_keys(&self) -> bool {
        each_provider!(self, c => c.holds_several_keys())
    }
    fn list_carries_keys(&self) -> bool {
        each_provider!(self, c => c.list_carries_keys())
    }
    async fn find_app(&self, name: &str) -> Result<Option<RemoteApp>> {
        each_provider!(self, c => c.find_app(name).await)
    }
    async fn list_apps(&self, page: u32) -> Result<Page<RemoteApp>> {
        each_provider!(self, c => c.list_apps(page).await)
    }
    async fn create_app(&self, app: &AppWrite) -> Result<RemoteApp> {
        each_provider!(self, c => c.create_app(app).await)
    }
    async fn update_app(&self, id: &str, app: &AppWrite) -> Result<()> {
        each_provider!(self, c => c.update_app(id, app).await)
    }
    async fn reset_secret(
        &self,
        id: &str,
        current_key: &str,
        key: &str,
        secret: &SecretValue,
    ) -> Result<()> {
        each_provider!(self, c => c.reset_secret(id, current_key, key, secret).await)
    }
    async fn add_key(&self, id: &str, key: &str, secret: &SecretValue) -> Result<()> {
        each_provider!(self, c => c.add_key(id, key, secret).await)
    }
    async fn remove_key(&self, id: &str, key: &str) -> Result<()> {
        each_provider!(self, c => c.remove_key(id, key).await)
    }
    async fn delete_app(&self, id: &str) -> Result<()> {
        each_provider!(self, c => c.delete_app(id).await)
    }
    async fn find_signature(&self, name: &str) -> Result<Option<RemoteSignature>> {
        each_provider!(self, c => c.find_signature(name).await)
    }
    async fn list_signatures(&self, page: u32) -> Result<Page<RemoteSignature>> {
        each_provider!(self, c => c.list_signatures(page).await)
    }
    async fn create_signature(&self, signature: &SignatureWrite) -> Result<RemoteSignature> {
        each_provider!(self, c => c.create_signature(signature).await)
    }
    async fn update_signature(&self, id: &str, signature: &SignatureWrite) -> Result<()> {
        each_provider!(self, c => c.update_signature(id, signature).await)
    }
    async fn delete_signature(&self, id: &str) -> Result<()> {
        each_provider!(self, c => c.delete_signature(id).await)
    }
}
