//! keysmith: API-gateway app credentials and signature keys, issued, validated
//! and rotated into Kubernetes Secrets.
//!
//! The layers, lowest first; each uses only those above it in this list
//! (`docs/architecture.md` draws the data flow and says where to change what):
//!
//! 1. [`api`] — the wire types of both kinds and every name keysmith writes:
//!    labels, annotations, data keys, kinds, condition types, reasons.
//! 2. [`rules`] — the gateways' format rules, as one table.
//! 3. [`admission`] — the admission rules per kind, rendered into the CRD
//!    schema and run offline by `keysmith validate`.
//! 4. [`engine`] — pure: one gathered snapshot, then named guards, triggers,
//!    outcome and rendering; whose a Secret is; the rollout, planned and
//!    settled. Knows no kind, no client and no Kubernetes type.
//! 5. [`kinds`] — the only place that names a kind: the trait each kind
//!    implements to turn its spec into the engine's intent and a plan into
//!    its status.
//! 6. [`providers`] — the cloud API gateways' management APIs (SPEC §11):
//!    one client per provider behind one trait, request signing, the shared
//!    HTTP transport. Knows no Kubernetes type.
//! 7. [`controller`] — the kube-runtime shell: watches, a reconcile of named
//!    steps (decide on a copy → observe → plan → apply Secret → roll out →
//!    apply status → emit), Secret and status I/O, own-write bookkeeping, events, metrics, errors.
//! 8. [`runtime`] — `keysmith run`: probes, metrics endpoint, leader
//!    election, memory, signals.
//! 9. [`cli`] — the command line.

pub mod admission;
pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod kinds;
pub mod providers;
pub mod rules;
pub mod runtime;
