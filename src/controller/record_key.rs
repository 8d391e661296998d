//! The key of keysmith's seals (`engine::seal`), kept in a Secret of
//! keysmith's own: read at start, or created once with 32 bytes from the
//! OS CSPRNG. Replicas share it (a create that loses the race reads the
//! winner's). Whoever can read that Secret can forge seals: keep its
//! namespace's Secrets to keysmith alone (docs/security.md).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use rand::TryRng as _;

use crate::api::names::labels;
use crate::engine::RecordKey;

/// The data key holding the key material.
pub const DATA_KEY: &str = "key";

/// Where the record key lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordKeySecret {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordKeyError {
    #[error("reading the record key Secret {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the record key Secret {namespace}/{name}: {source}")]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the record key Secret {namespace}/{name} has no key {DATA_KEY} of at least 32 bytes")]
    Unusable { namespace: String, name: String },
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

impl RecordKeyError {
    /// The apiserver could not answer yet (worth asking again).
    pub fn is_transient(&self) -> bool {
        match self {
            RecordKeyError::Read { source, .. } | RecordKeyError::Create { source, .. } => {
                super::unavailable(source)
            }
            RecordKeyError::Unusable { .. } | RecordKeyError::Rng(_) => false,
        }
    }
}

/// The record key: read, or created when missing.
pub async fn load(client: &Client, at: &RecordKeySecret) -> Result<RecordKey, RecordKeyError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &at.namespace);
    let found = match read(&api, at).await? {
        Some(secret) => secret,
        None => match create(&api, at).await {
            Ok(secret) => secret,
            Err(RecordKeyError::Create {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 409 => read(&api, at).await?.ok_or_else(|| unusable(at))?,
            Err(error) => return Err(error),
        },
    };
    let material = found.data.as_ref().and_then(|d| d.get(DATA_KEY));
    material
        .and_then(|m| RecordKey::new(&m.0))
        .ok_or_else(|| unusable(at))
}

fn unusable(at: &RecordKeySecret) -> RecordKeyError {
    RecordKeyError::Unusable {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
    }
}

async fn read(api: &Api<Secret>, at: &RecordKeySecret) -> Result<Option<Secret>, RecordKeyError> {
    api.get_opt(&at.name)
        .await
        .map_err(|source| RecordKeyError::Read {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            source,
        })
}

async fn create(api: &Api<Secret>, at: &RecordKeySecret) -> Result<Secret, RecordKeyError> {
    let mut material = vec![0u8; 32];
    crate::engine::generate::os_rng()
        .try_fill_bytes(&mut material)
        .map_err(|e| RecordKeyError::Rng(e.to_string()))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(at.name.clone()),
            namespace: Some(at.namespace.clone()),
            labels: Some(
                [(
                    labels::MANAGED_BY.to_string(),
                    labels::MANAGED_BY_VALUE.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(DATA_KEY.to_string(), ByteString(material))].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .map_err(|source| RecordKeyError::Create {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            source,
        })
}
