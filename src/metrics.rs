//! Prometheus metrics. Every label takes values from a fixed set (kind, a
//! fixed error or rotation reason) except the per-object gauges, which are
//! labelled by object like cert-manager's expiry gauges and removed when the
//! object goes away.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
pub struct RotationLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
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
    pub next_rotation: Family<ObjectLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub last_rotation: Family<ObjectLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub ready: Family<ObjectLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("keysmith");
        let reconciles = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let rotations = Family::<RotationLabels, Counter>::default();
        let next_rotation = Family::default();
        let last_rotation = Family::default();
        let ready = Family::<ObjectLabels, Gauge>::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and a fixed error reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            reconcile_duration.clone(),
        );
        registry.register(
            "rotations",
            "Credential sets issued, by kind and reason (Initial, Schedule, ResetRequest, ...)",
            rotations.clone(),
        );
        registry.register(
            "next_rotation_timestamp_seconds",
            "When the next scheduled rotation is due (Unix time), per object with a schedule",
            next_rotation.clone(),
        );
        registry.register(
            "last_rotation_timestamp_seconds",
            "When the credentials last changed (Unix time), per object",
            last_rotation.clone(),
        );
        registry.register(
            "ready",
            "1 if the object's Ready condition is True, else 0",
            ready.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            rotations,
            next_rotation,
            last_rotation,
            ready,
        }
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

    /// Drops an object's per-object series (it was deleted).
    pub fn forget(&self, labels: &ObjectLabels) {
        self.next_rotation.remove(labels);
        self.last_rotation.remove(labels);
        self.ready.remove(labels);
    }
}
