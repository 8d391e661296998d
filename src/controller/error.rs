//! The errors of a reconcile, one type per step. Each knows whether it is
//! permanent (the object or the cluster must change first: retry rarely) or
//! transient (retry soon), and has a fixed short label for metrics and logs.
//! None carries a secret value.

use std::time::Duration;

use crate::engine::PlanError;

/// Observing the world: the object itself, the output Secret, the source.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("{0} has no namespace")]
    NoNamespace(String),
    /// Reading the object itself, when the cache lags our own status write.
    #[error("reading {object}: {source}")]
    ReadObject {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Applying the output Secret.
#[derive(Debug, thiserror::Error)]
#[error("writing Secret {namespace}/{name}: {source}")]
pub struct ApplySecretError {
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

impl ApplySecretError {
    /// Refused for good: invalid or forbidden.
    pub fn is_permanent(&self) -> bool {
        refused(&self.source)
    }

    /// What the apiserver said (its Status message), or the error itself.
    pub fn apiserver_message(&self) -> String {
        match &self.source {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        }
    }
}

/// Writing the status (and re-reading the object when the cache lags).
#[derive(Debug, thiserror::Error)]
pub enum ApplyStatusError {
    #[error("reading {object}: {source}")]
    Read {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {object}: {source}")]
    Write {
        object: String,
        #[source]
        source: kube::Error,
    },
}

/// A failed reconcile: which step, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    ApplySecret(#[from] ApplySecretError),
    #[error(transparent)]
    ApplyStatus(#[from] ApplyStatusError),
    /// Releasing or recording the cloud gateway cleanup of a deleted resource.
    #[error("gateway cleanup: {0}")]
    Cleanup(#[source] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a permanent error waits before one more try (a change to the
/// object triggers a pass sooner).
pub const PERMANENT_RETRY: Duration = Duration::from_secs(300);
/// How long a transient error (a conflict, a busy apiserver) waits first
/// (`super::backoff` doubles it per failure in a row).
pub const TRANSIENT_RETRY: Duration = Duration::from_secs(5);

/// What failed in a reconcile, as metrics and logs name it: a fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorLabel {
    NoNamespace,
    ReadSecret,
    Generate,
    WriteSecret,
    ReadObject,
    WriteStatus,
    GatewayCleanup,
}

impl ErrorLabel {
    /// Every label (metrics start at 0 for each).
    pub const ALL: [ErrorLabel; 7] = [
        ErrorLabel::NoNamespace,
        ErrorLabel::ReadSecret,
        ErrorLabel::Generate,
        ErrorLabel::WriteSecret,
        ErrorLabel::ReadObject,
        ErrorLabel::WriteStatus,
        ErrorLabel::GatewayCleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorLabel::NoNamespace => "NoNamespace",
            ErrorLabel::ReadSecret => "ReadSecret",
            ErrorLabel::Generate => "Generate",
            ErrorLabel::WriteSecret => "WriteSecret",
            ErrorLabel::ReadObject => "ReadObject",
            ErrorLabel::WriteStatus => "WriteStatus",
            ErrorLabel::GatewayCleanup => "GatewayCleanup",
        }
    }
}

impl Error {
    /// A fixed, short name for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        self.label().as_str()
    }

    fn label(&self) -> ErrorLabel {
        match self {
            Error::Observe(ObserveError::NoNamespace(_)) => ErrorLabel::NoNamespace,
            Error::Observe(ObserveError::ReadSecret { .. }) => ErrorLabel::ReadSecret,
            Error::Plan(PlanError::Generate(_)) => ErrorLabel::Generate,
            Error::ApplySecret(_) => ErrorLabel::WriteSecret,
            Error::Observe(ObserveError::ReadObject { .. })
            | Error::ApplyStatus(ApplyStatusError::Read { .. }) => ErrorLabel::ReadObject,
            Error::ApplyStatus(ApplyStatusError::Write { .. }) => ErrorLabel::WriteStatus,
            Error::Cleanup(_) => ErrorLabel::GatewayCleanup,
        }
    }

    /// Retrying soon cannot help: the request itself is refused.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Observe(ObserveError::NoNamespace(_)) => true,
            Error::ApplySecret(error) => error.is_permanent(),
            Error::Observe(
                ObserveError::ReadSecret { source, .. } | ObserveError::ReadObject { source, .. },
            )
            | Error::ApplyStatus(
                ApplyStatusError::Read { source, .. } | ApplyStatusError::Write { source, .. },
            ) => refused(source),
            Error::Cleanup(source) => refused(source),
            Error::Plan(_) => false,
        }
    }
}

/// Invalid (400, 422) or forbidden (403): the same request fails the same way.
fn refused(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("refused", "Invalid")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn refused_writes_are_permanent_and_conflicts_transient() {
        let write = |code| {
            Error::ApplySecret(ApplySecretError {
                namespace: "ns".into(),
                name: "s".into(),
                source: api_error(code),
            })
        };
        assert!(write(422).is_permanent());
        assert!(write(403).is_permanent());
        assert!(!write(409).is_permanent());
        assert!(!write(500).is_permanent());
        assert_eq!(write(422).metric_label(), "WriteSecret");
        assert!(Error::Observe(ObserveError::NoNamespace("GatewayApp/x".into())).is_permanent());
    }
}
