//! GatewayApp as a [`CredentialKind`]: a UUID-format AppKey, the AppSecret
//! rule, `app_id` in the Secret, unique AppKeys.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::status::{
    RolloutReport, never_earlier, own_conditions, previous_rotation, rotation_status,
};
use super::{CredentialKind, KindParts, intent_from, time};
use crate::api::Attributes;
use crate::api::names::labels;
use crate::api::{
    AppType, Creator, GatewayApp, GatewayAppStatus, Kind, RotationReason, RotationStatus,
};
use crate::engine::{Intent, KeyGenerator, Plan, PreviousStatus};
use crate::rules;

impl GatewayApp {
    pub fn effective_app_name(&self) -> String {
        self.spec
            .app_name
            .clone()
            .unwrap_or_else(|| rules::derived_name(&self.name_any()))
    }

    fn attributes(&self) -> Attributes {
        Attributes::App {
            name: self.effective_app_name(),
            creator: self.spec.creator.unwrap_or_default(),
            app_type: self.spec.app_type.unwrap_or_default(),
        }
    }

    /// The attributes the status records (none before the first issue).
    fn status_attributes(status: &GatewayAppStatus) -> Option<Attributes> {
        Some(Attributes::App {
            name: status.app_name.clone()?,
            creator: status.creator?,
            app_type: status.app_type?,
        })
    }
}

impl CredentialKind for GatewayApp {
    fn unique_keys(&self) -> BTreeSet<String> {
        let issued = self.issued_unique_key();
        self.spec.app_key.iter().cloned().chain(issued).collect()
    }

    fn issued_unique_key(&self) -> Option<String> {
        self.status.as_ref().and_then(|s| s.app_key.clone())
    }

    const KIND: Kind = Kind::GatewayApp;
    type Status = GatewayAppStatus;
    const OWNER_LABEL: &'static str = labels::GATEWAY_APP;

    /// AppKeys are unique (SPEC §2): the custom one asked for, else the one issued.
    fn unique_key_wanted(&self, intent: &Intent) -> Option<String> {
        intent
            .custom_key
            .clone()
            .or_else(|| self.status.as_ref().and_then(|s| s.app_key.clone()))
    }

    fn intent(&self) -> Intent {
        let spec = &self.spec;
        let keys = spec.data_keys();
        intent_from(
            self,
            spec,
            KindParts {
                key_label: "AppKey",
                key_changed_reason: RotationReason::AppKeyChanged,
                custom_key: spec.app_key.clone(),
                key_rule: &rules::APP_KEY,
                key_generator: KeyGenerator::Uuid,
                secret_rule: &rules::APP_SECRET,
                key_data_key: keys.app_key,
                secret_data_key: keys.app_secret,
                previous_data_key: keys.app_secret_previous,
                fixed_data: BTreeMap::from([(keys.app_id, self.uid().unwrap_or_default())]),
                attributes: self.attributes(),
                gateway: spec.gateway.as_ref().map(|g| (g.layout, g.name.clone())),
            },
        )
    }

    fn previous_status(&self) -> PreviousStatus {
        let status = self.status.clone().unwrap_or_default();
        PreviousStatus {
            attributes: Self::status_attributes(&status),
            ..previous_rotation(
                &status.rotation,
                status.app_key.clone(),
                status.register_time.as_ref(),
                status.update_time.as_ref(),
            )
        }
    }

    fn desired_status(
        &self,
        intent: &Intent,
        plan: &Plan,
        rollout: RolloutReport,
        now: Timestamp,
    ) -> GatewayAppStatus {
        let previous = self.status.clone().unwrap_or_default();
        let rotation = rotation_status(
            &previous.rotation,
            intent,
            plan,
            rollout,
            self.meta().generation,
            now,
        );
        match &plan.state {
            Some(state) => GatewayAppStatus {
                app_id: self.uid(),
                app_name: Some(self.effective_app_name()),
                app_key: state.key.clone(),
                creator: Some(self.spec.creator.unwrap_or(Creator::User)),
                app_type: Some(self.spec.app_type.unwrap_or(AppType::Apig)),
                register_time: time(state.register_time),
                update_time: never_earlier(state.update_time, previous.update_time.as_ref()),
                // Written by the gateway sync under its own field manager.
                gateway: None,
                rotation,
            },
            None => GatewayAppStatus {
                rotation,
                gateway: None,
                ..previous
            },
        }
    }

    /// The status as keysmith would write it: its own conditions only.
    fn current_status(&self) -> GatewayAppStatus {
        let mut status = self.status.clone().unwrap_or_default();
        status.rotation.conditions = own_conditions(&status.rotation.conditions);
        status.gateway = None;
        status
    }

    fn rollout(&self) -> Option<&crate::api::Rollout> {
        crate::api::CommonSpec::rollout(&self.spec)
    }

    fn cloud_sync(&self) -> Option<super::CloudSync> {
        super::CloudSync::of(
            self,
            self.spec.connection_ref.as_deref(),
            (
                self.effective_app_name(),
                self.spec.remark.clone().unwrap_or_default(),
            ),
            self.status.as_ref().and_then(|s| s.gateway.as_deref()),
            None,
        )
    }

    fn recorded_rotation(&self) -> Option<&RotationStatus> {
        self.status.as_ref().map(|s| &s.rotation)
    }
}
