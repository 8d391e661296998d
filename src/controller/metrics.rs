//! Prometheus metrics. Every label takes values from a fixed set (kind, a
//! fixed error or rotation reason) except the per-object gauges, which are
//! labelled by object like cert-manager's expiry gauges. Those are read from
//! the controllers' caches at scrape time (as kube-state-metrics does), so
//! they hold no copy of their own and vanish with the object.

use std::fmt;
use std::sync::RwLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::Store;

use crate::api::{ConditionType, Kind, RotationReason, WorkloadKind};
use crate::kinds::CredentialKind;

use super::error::ErrorLabel;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabels {
    pub kind: &'static str,
    pub target_kind: &'static str,
}

/// A cloud gateway request: bounded (two providers, their fixed operations,
/// HTTP statuses or a few words).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayRequestLabels {
    pub provider: &'static str,
    pub operation: &'static str,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayOperationLabels {
    pub provider: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RotationLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// What the per-object gauges show of one cached object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectState<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The Ready condition; `None` before the first status.
    pub ready: Option<bool>,
    /// Unix seconds.
    pub last_rotation: Option<f64>,
    pub next_rotation: Option<f64>,
}

/// Calls its argument once per cached object of one kind.
pub type StateSource =
    Box<dyn Fn(&mut dyn FnMut(ObjectState<'_>) -> fmt::Result) -> fmt::Result + Send + Sync>;

/// The per-object gauges, encoded from the sources (one per kind) on each scrape.
#[derive(Default)]
pub struct ObjectGauges {
    sources: RwLock<Vec<StateSource>>,
}

impl fmt::Debug for ObjectGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObjectGauges")
    }
}

impl ObjectGauges {
    pub fn add_source(&self, source: StateSource) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }
}

type Pick = fn(&ObjectState<'_>) -> Option<f64>;

/// Name, help, value, and whether the value is a whole number (as `ready` is).
const OBJECT_GAUGES: [(&str, &str, Pick, bool); 3] = [
    (
        "next_rotation_timestamp_seconds",
        "When the next scheduled rotation is due (Unix time), per object with a schedule",
        |s| s.next_rotation,
        false,
    ),
    (
        "last_rotation_timestamp_seconds",
        "When the credentials last changed (Unix time), per object",
        |s| s.last_rotation,
        false,
    ),
    (
        "ready",
        "1 if the object's Ready condition is True, else 0",
        |s| s.ready.map(|r| if r { 1.0 } else { 0.0 }),
        true,
    ),
];

impl Collector for ObjectGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        for (name, help, pick, whole) in OBJECT_GAUGES {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for source in sources.iter() {
                source(&mut |state| {
                    let Some(value) = pick(&state) else {
                        return Ok(());
                    };
                    let labels = [
                        ("kind", state.kind),
                        ("namespace", state.namespace),
                        ("name", state.name),
                    ];
                    let series = metric.encode_family(&labels)?;
                    if whole {
                        ConstGauge::new(value as i64).encode(series)
                    } else {
                        ConstGauge::new(value).encode(series)
                    }
                })?;
            }
        }
        Ok(())
    }
}

fn duration_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub rotations: Family<RotationLabels, Counter>,
    pub rollout_restarts: Family<RestartLabels, Counter>,
    pub gateway_requests: Family<GatewayRequestLabels, Counter>,
    pub gateway_request_duration: Family<GatewayOperationLabels, Histogram>,
    pub objects: std::sync::Arc<ObjectGauges>,
}

impl Metrics {
    /// Counts one cloud gateway request and its duration.
    pub fn record_gateway_request(
        &self,
        provider: &'static str,
        operation: &'static str,
        code: &str,
        elapsed: std::time::Duration,
    ) {
        self.gateway_requests
            .get_or_create(&GatewayRequestLabels {
                provider,
                operation,
                code: code.to_string(),
            })
            .inc();
        self.gateway_request_duration
            .get_or_create(&GatewayOperationLabels {
                provider,
                operation,
            })
            .observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let histograms = || duration_histogram as fn() -> Histogram;
        let mut metrics = Metrics {
            registry: Registry::with_prefix("keysmith"),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(histograms()),
            rotations: Family::default(),
            rollout_restarts: Family::default(),
            gateway_requests: Family::default(),
            gateway_request_duration: Family::new_with_constructor(histograms()),
            objects: std::sync::Arc::new(ObjectGauges::default()),
        };
        metrics.register();
        metrics.start_at_zero();
        metrics
    }
}

impl Metrics {
    /// Puts every metric into the registry, with its help text.
    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "gateway_requests",
            "Requests to cloud API gateways' management APIs, by provider, operation and code (HTTP status, or timeout/unreachable/no_answer)",
            self.gateway_requests.clone(),
        );
        registry.register(
            "gateway_request_duration_seconds",
            "Time one cloud gateway request took, by provider and operation",
            self.gateway_request_duration.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles run, by kind",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and a fixed error reason",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "rotations",
            "Credential sets issued, by kind and reason (Initial, Schedule, ResetRequest, ...)",
            self.rotations.clone(),
        );
        registry.register(
            "rollout_restarts",
            "Workload restarts for new credentials (spec.rollout), by kind and target kind",
            self.rollout_restarts.clone(),
        );
        registry.register_collector(Box::new(self.objects.clone()));
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Metrics {
    /// Every series with a fixed label set exists from the start, at 0, so
    /// alerts and dashboards work on a fresh install (Prometheus practice).
    fn start_at_zero(&self) {
        for kind in Kind::ALL {
            let kind = kind.as_str();
            let _ = self.reconciles.get_or_create(&KindLabels { kind });
            let _ = self.reconcile_duration.get_or_create(&KindLabels { kind });
            for reason in ErrorLabel::ALL.map(ErrorLabel::as_str) {
                let _ = self
                    .reconcile_errors
                    .get_or_create(&ErrorLabels { kind, reason });
            }
            for target in WorkloadKind::ALL {
                let _ = self.rollout_restarts.get_or_create(&RestartLabels {
                    kind,
                    target_kind: target.as_str(),
                });
            }
            for reason in RotationReason::ALL {
                let _ = self.rotations.get_or_create(&RotationLabels {
                    kind,
                    reason: reason.as_str(),
                });
            }
        }
    }

    /// One reconcile ran and took `elapsed`.
    pub fn record_reconcile(&self, kind: Kind, elapsed: std::time::Duration) {
        let labels = KindLabels {
            kind: kind.as_str(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// One reconcile failed; `reason` is the error's fixed label.
    pub fn record_error(&self, kind: Kind, reason: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: kind.as_str(),
                reason,
            })
            .inc();
    }

    /// A rollout target was restarted.
    pub fn record_restart(&self, kind: Kind, target: WorkloadKind) {
        self.rollout_restarts
            .get_or_create(&RestartLabels {
                kind: kind.as_str(),
                target_kind: target.as_str(),
            })
            .inc();
    }

    /// A credential set was issued.
    pub fn record_rotation(&self, kind: Kind, reason: RotationReason) {
        self.rotations
            .get_or_create(&RotationLabels {
                kind: kind.as_str(),
                reason: reason.as_str(),
            })
            .inc();
    }
}

/// The per-object gauges of one kind, read from its cache at scrape time.
pub fn object_states<K: CredentialKind>(reader: Store<K>) -> StateSource {
    Box::new(move |emit| {
        let seconds = |t: Option<&Time>| t.map(|t| t.0.as_second() as f64);
        for object in reader.state() {
            let rotation = object.recorded_rotation();
            emit(ObjectState {
                kind: K::KIND.as_str(),
                namespace: object.meta().namespace.as_deref().unwrap_or_default(),
                name: object.meta().name.as_deref().unwrap_or_default(),
                ready: rotation.and_then(|r| {
                    r.conditions
                        .iter()
                        .find(|c| c.type_ == ConditionType::Ready.as_str())
                        .map(|c| c.status == "True")
                }),
                last_rotation: rotation.and_then(|r| seconds(r.last_rotation_time.as_ref())),
                next_rotation: rotation.and_then(|r| seconds(r.next_rotation_time.as_ref())),
            })?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_series_starts_at_zero() {
        let text = Metrics::default().render();
        for kind in Kind::ALL {
            let kind = kind.as_str();
            assert!(
                text.contains(&format!("keysmith_reconciles_total{{kind=\"{kind}\"}} 0")),
                "{text}"
            );
            for reason in ErrorLabel::ALL.map(ErrorLabel::as_str) {
                assert!(text.contains(&format!(
                    "keysmith_reconcile_errors_total{{kind=\"{kind}\",reason=\"{reason}\"}} 0"
                )));
            }
            for reason in RotationReason::ALL {
                assert!(text.contains(&format!(
                    "keysmith_rotations_total{{kind=\"{kind}\",reason=\"{}\"}} 0",
                    reason.as_str()
                )));
            }
        }
    }

    #[test]
    fn per_object_gauges_come_from_the_sources_at_scrape_time() {
        let metrics = Metrics::default();
        metrics.objects.add_source(Box::new(|emit| {
            emit(ObjectState {
                kind: "GatewayApp",
                namespace: "ns",
                name: "scheduled",
                ready: Some(true),
                last_rotation: Some(100.0),
                next_rotation: Some(200.0),
            })?;
            emit(ObjectState {
                kind: "GatewayApp",
                namespace: "ns",
                name: "new",
                ready: None,
                last_rotation: None,
                next_rotation: None,
            })
        }));
        let text = metrics.render();
        let object = r#"{kind="GatewayApp",namespace="ns",name="scheduled"}"#;
        for line in [
            format!("keysmith_next_rotation_timestamp_seconds{object} 200.0"),
            format!("keysmith_last_rotation_timestamp_seconds{object} 100.0"),
            format!("keysmith_ready{object} 1"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(
            !text.contains(r#"name="new""#),
            "an object without a status has no series yet:\n{text}"
        );
    }
}
