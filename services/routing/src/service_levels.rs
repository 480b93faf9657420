//! Service levels as admins configure them (business calendars, SLA policies, escalation rules)
//! and escalations: by hand, with a reason, or recorded by the rules.

use helpdesk_proto::routing::v1::{BusinessCalendar, Escalation, EscalationRule, SlaPolicy, Trigger};
use helpdesk_runtime::error::ServiceError;
use prost::Message;

use crate::{
    escalation::{self, Occurrence},
    router::Router,
    store, validate,
    work_items::open_item,
};

impl Router {
    pub async fn upsert_calendar(
        &self,
        tenant: &str,
        calendar: BusinessCalendar,
    ) -> Result<BusinessCalendar, ServiceError> {
        let parsed = validate::calendar(&calendar)?;
        self.apply(tenant, |t, _, changes| {
            changes.settings.push((store::CALENDAR, calendar.id.clone(), calendar.encode_to_vec()));
            t.sla.config.calendars.insert(calendar.id.clone(), (calendar.clone(), parsed));
            Ok(calendar)
        })
        .await
    }

    pub fn calendars(&self, tenant: &str) -> Vec<BusinessCalendar> {
        let mut calendars =
            self.read(tenant, |t| t.sla.config.calendars.values().map(|(spec, _)| spec.clone()).collect::<Vec<_>>());
        calendars.sort_by(|a, b| a.id.cmp(&b.id));
        calendars
    }

    pub async fn upsert_policy(&self, tenant: &str, policy: SlaPolicy) -> Result<SlaPolicy, ServiceError> {
        self.apply(tenant, |t, _, changes| {
            validate::policy(&policy, t)?;
            changes.settings.push((store::POLICY, policy.id.clone(), policy.encode_to_vec()));
            t.sla.config.policies.insert(policy.id.clone(), policy.clone());
            Ok(policy)
        })
        .await
    }

    pub fn policies(&self, tenant: &str) -> Vec<SlaPolicy> {
        let mut policies = self.read(tenant, |t| t.sla.config.policies.values().cloned().collect::<Vec<_>>());
        policies.sort_by(|a, b| (a.position, &a.id).cmp(&(b.position, &b.id)));
        policies
    }

    pub async fn upsert_rule(&self, tenant: &str, rule: EscalationRule) -> Result<EscalationRule, ServiceError> {
        self.apply(tenant, |t, _, changes| {
            validate::rule(&rule, t)?;
            changes.settings.push((store::RULE, rule.id.clone(), rule.encode_to_vec()));
            t.escalation.rules.insert(rule.id.clone(), rule.clone());
            Ok(rule)
        })
        .await
    }

    pub fn rules(&self, tenant: &str) -> Vec<EscalationRule> {
        let mut rules = self.read(tenant, |t| t.escalation.rules.values().cloned().collect::<Vec<_>>());
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        rules
    }

    /// A manual escalation by `who`, recorded even when no rule matches it.
    pub async fn escalate_manually(
        &self,
        tenant: &str,
        ticket: &str,
        reason: &str,
        who: &str,
    ) -> Result<Escalation, ServiceError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 2_000 {
            return Err(ServiceError::invalid_field("reason", "give a reason of 1 to 2000 characters"));
        }
        let key = format!("manual:{}", uuid::Uuid::now_v7());
        self.apply(tenant, |t, now, changes| {
            open_item(t, ticket)?;
            let occurrence = Occurrence {
                trigger: Trigger::Manual,
                sla_kind: None,
                key: &key,
                reason: reason.to_owned(),
                triggered_by: format!("agent:{who}"),
            };
            escalation::escalate(t, ticket, &occurrence, now, changes)
                .ok_or_else(|| ServiceError::failed_precondition("the ticket is not open"))
        })
        .await
    }

    pub async fn escalations(&self, tenant: &str, ticket: &str) -> Result<Vec<Escalation>, ServiceError> {
        store::escalations(self.database(), tenant, ticket).await.map_err(helpdesk_runtime::db::classify)
    }
}
