//! What a resource keeps at a cloud gateway, behind the app operations the
//! sync speaks: a GatewayApp's app, or a SignatureKey's signature key (as
//! an app with one key pair whose remark is empty). One sync, two kinds of
//! remote object; the provider clients keep their own operations for each.

use crate::providers::{
    self, AppWrite, GatewayApi, GatewayError, KeyPair, Page, RemoteApp, RemoteSignature, Result,
    SecretValue, SignatureWrite,
};

pub use crate::kinds::SignatureShape;

/// The client, seen through the kind of object a resource keeps.
pub struct Target<'a> {
    pub client: &'a providers::Client,
    /// `Some` for a SignatureKey.
    pub signature: Option<&'a SignatureShape>,
}

impl Target<'_> {
    /// The gateway's own rules for what the resource wants there.
    pub fn check_rules(&self, want: &AppWrite) -> std::result::Result<(), String> {
        match self.signature {
            None => self.client.check_app_rules(want),
            Some(shape) => self
                .client
                .check_signature_rules(&as_signature(shape, want)),
        }
    }
}

fn as_signature(shape: &SignatureShape, want: &AppWrite) -> SignatureWrite {
    SignatureWrite {
        name: want.name.clone(),
        sign_type: shape.sign_type.clone(),
        algorithm: shape.algorithm.clone(),
        key: want.key.clone(),
        secret: want.secret.clone(),
    }
}

/// A signature key as the sync sees remote objects.
fn as_app(signature: RemoteSignature) -> RemoteApp {
    RemoteApp {
        id: signature.id,
        name: signature.name,
        remark: String::new(),
        keys: vec![KeyPair {
            key: signature.key,
            secret: signature.secret,
        }],
    }
}

fn unsupported(operation: &'static str) -> GatewayError {
    GatewayError::Rejected {
        provider: "keysmith",
        operation,
        code: "NotSupported".into(),
        message: "a signature key holds one key pair".into(),
    }
}

impl GatewayApi for Target<'_> {
    async fn check(&self) -> Result<()> {
        self.client.check().await
    }
    fn holds_several_keys(&self) -> bool {
        self.signature.is_none() && self.client.holds_several_keys()
    }
    fn list_carries_keys(&self) -> bool {
        self.signature.is_some() || self.client.list_carries_keys()
    }
    async fn find_app(&self, name: &str) -> Result<Option<RemoteApp>> {
        match self.signature {
            None => self.client.find_app(name).await,
            Some(_) => Ok(self.client.find_signature(name).await?.map(as_app)),
        }
    }
    async fn list_apps(&self, page: u32) -> Result<Page<RemoteApp>> {
        match self.signature {
            None => self.client.list_apps(page).await,
            Some(_) => {
                let listed = self.client.list_signatures(page).await?;
                Ok(Page {
                    items: listed.items.into_iter().map(as_app).collect(),
                    next: listed.next,
                })
            }
        }
    }
    async fn create_app(&self, app: &AppWrite) -> Result<RemoteApp> {
        match self.signature {
            None => self.client.create_app(app).await,
            Some(shape) => Ok(as_app(
                self.client
                    .create_signature(&as_signature(shape, app))
                    .await?,
            )),
        }
    }
    async fn update_app(&self, id: &str, app: &AppWrite) -> Result<()> {
        match self.signature {
            None => self.client.update_app(id, app).await,
            Some(shape) => {
                self.client
                    .update_signature(id, &as_signature(shape, app))
                    .await
            }
        }
    }
    async fn reset_secret(
        &self,
        id: &str,
        current_key: &str,
        key: &str,
        secret: &SecretValue,
    ) -> Result<()> {
        match self.signature {
            None => self.client.reset_secret(id, current_key, key, secret).await,
            Some(shape) => {
                let want = AppWrite {
                    name: shape.name.clone(),
                    remark: String::new(),
                    key: key.to_string(),
                    secret: secret.clone(),
                };
                self.client
                    .update_signature(id, &as_signature(shape, &want))
                    .await
            }
        }
    }
    async fn add_key(&self, id: &str, key: &str, secret: &SecretValue) -> Result<()> {
        match self.signature {
            None => self.client.add_key(id, key, secret).await,
            Some(_) => Err(unsupported("add_key")),
        }
    }
    async fn remove_key(&self, id: &str, key: &str) -> Result<()> {
        match self.signature {
            None => self.client.remove_key(id, key).await,
            Some(_) => Err(unsupported("remove_key")),
        }
    }
    async fn delete_app(&self, id: &str) -> Result<()> {
        match self.signature {
            None => self.client.delete_app(id).await,
            Some(_) => self.client.delete_signature(id).await,
        }
    }
    async fn find_signature(&self, name: &str) -> Result<Option<RemoteSignature>> {
        self.client.find_signature(name).await
    }
    async fn list_signatures(&self, page: u32) -> Result<Page<RemoteSignature>> {
        self.client.list_signatures(page).await
    }
    async fn create_signature(&self, signature: &SignatureWrite) -> Result<RemoteSignature> {
        self.client.create_signature(signature).await
    }
    async fn update_signature(&self, id: &str, signature: &SignatureWrite) -> Result<()> {
        self.client.update_signature(id, signature).await
    }
    async fn delete_signature(&self, id: &str) -> Result<()> {
        self.client.delete_signature(id).await
    }
}
