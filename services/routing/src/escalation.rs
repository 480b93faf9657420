//! Escalation rules: a trigger (an SLA warning or breach, words in a customer's message, a flag on
//! the customer, too many reassignments, a VIP, an agent's request) and the actions agreed for it.
//! Each rule fires once per trigger occurrence, and every escalation is recorded.

use crate::{Map, Set};

use helpdesk_proto::{
    common::v1::Priority,
    routing::v1::{Escalation, EscalationRule, SlaKind, Trigger, WorkState},
};

use crate::{
    engine::{Changes, Tenant, raised},
    time::{Millis, timestamp},
};

/// Phrases of a customer asking for someone above the agent.
const SUPERVISOR_PHRASES: &[&str] = &[
    "supervisor",
    "your manager",
    "a manager",
    "speak to someone in charge",
    "escalate this",
    "책임자",
    "상급자",
    "관리자 바꿔",
    "관리자와",
    "매니저",
    "팀장",
    "윗사람",
];

/// Phrases of legal action or threats, in English and Korean.
const THREAT_PHRASES: &[&str] = &[
    "lawyer",
    "attorney",
    "lawsuit",
    "sue you",
    "legal action",
    "take you to court",
    "small claims",
    "consumer protection",
    "report you to",
    "소송",
    "변호사",
    "고소",
    "고발",
    "법적 조치",
    "법적조치",
    "법적 대응",
    "소비자원",
    "신고하겠",
    "가만두지 않",
];

/// Triggers found in a customer's words.
pub(crate) fn detect(text: &str) -> Vec<Trigger> {
    let text = text.to_lowercase();
    let mut found = Vec::new();
    if SUPERVISOR_PHRASES.iter().any(|phrase| text.contains(phrase)) {
        found.push(Trigger::SupervisorRequested);
    }
    if THREAT_PHRASES.iter().any(|phrase| text.contains(phrase)) {
        found.push(Trigger::ThreatDetected);
    }
    found
}

/// An escalation to persist, announce and note on the ticket.
pub(crate) struct Recorded {
    pub(crate) escalation: Escalation,
    /// Unique per ticket: the rule and the occurrence of its trigger.
    pub(crate) key: String,
    pub(crate) notify: bool,
}

#[derive(Default)]
pub(crate) struct EscalationBook {
    pub(crate) rules: Map<String, EscalationRule>,
    /// `(ticket, key)` of escalations already recorded.
    pub(crate) fired: Set<(String, String)>,
}

/// One occurrence of a trigger.
pub(crate) struct Occurrence<'a> {
    pub(crate) trigger: Trigger,
    pub(crate) sla_kind: Option<SlaKind>,
    /// Identifies the occurrence: the same occurrence never fires a rule twice.
    pub(crate) key: &'a str,
    pub(crate) reason: String,
    pub(crate) triggered_by: String,
}

/// Applies every enabled rule for the occurrence that has not fired for it yet. A manual
/// escalation is recorded even when no rule matches it.
pub(crate) fn escalate(
    tenant: &mut Tenant,
    ticket: &str,
    occurrence: &Occurrence<'_>,
    now: Millis,
    changes: &mut Changes,
) -> Option<Escalation> {
    let item = tenant.items.get(ticket).filter(|item| item.state() != WorkState::Done)?;
    let reassignments = item.reassignments;
    let mut rules: Vec<EscalationRule> = tenant
        .escalation
        .rules
        .values()
        .filter(|rule| rule.enabled && rule.trigger() == occurrence.trigger)
        .filter(|rule| {
            occurrence.sla_kind.is_none_or(|kind| rule.sla_kinds.is_empty() || rule.sla_kinds.contains(&(kind as i32)))
        })
        .filter(|rule| rule.trigger() != Trigger::ReassignmentLimit || reassignments > rule.reassignment_limit)
        .cloned()
        .collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    let mut last = None;
    if rules.is_empty() && occurrence.trigger == Trigger::Manual {
        last = Some(record(tenant, ticket, None, occurrence, Vec::new(), now, changes));
    }
    for rule in rules {
        let key = format!("{}:{}", rule.id, occurrence.key);
        if tenant.escalation.fired.contains(&(ticket.to_owned(), key)) {
            continue;
        }
        let actions = apply(tenant, ticket, &rule, now, changes);
        last = Some(record(tenant, ticket, Some(&rule), occurrence, actions, now, changes));
    }
    last
}

fn record(
    tenant: &mut Tenant,
    ticket: &str,
    rule: Option<&EscalationRule>,
    occurrence: &Occurrence<'_>,
    actions: Vec<String>,
    now: Millis,
    changes: &mut Changes,
) -> Escalation {
    let rule_id = rule.map(|rule| rule.id.clone()).unwrap_or_default();
    let key = format!("{rule_id}:{}", occurrence.key);
    tenant.escalation.fired.insert((ticket.to_owned(), key.clone()));
    let escalation = Escalation {
        id: uuid::Uuid::now_v7().to_string(),
        ticket_id: ticket.to_owned(),
        rule_id,
        trigger: occurrence.trigger as i32,
        reason: occurrence.reason.clone(),
        triggered_by: occurrence.triggered_by.clone(),
        actions,
        occurred_at: Some(timestamp(now)),
    };
    changes.escalations.push(Recorded {
        escalation: escalation.clone(),
        key,
        notify: rule.is_none_or(|rule| rule.notify),
    });
    changes.items.insert(ticket.to_owned());
    escalation
}

/// Carries out a rule's actions; returns what was done, for the record.
fn apply(tenant: &mut Tenant, ticket: &str, rule: &EscalationRule, now: Millis, changes: &mut Changes) -> Vec<String> {
    let mut done = Vec::new();
    if rule.raise_priority_to() != Priority::Unspecified {
        let current = tenant.items.get(ticket).map_or(Priority::Unspecified, |item| item.priority());
        let target = raised(current, rule.raise_priority_to());
        if target != current {
            tenant.reorder(ticket, |tenant| {
                if let Some(item) = tenant.items.get_mut(ticket) {
                    item.set_priority(target);
                }
            });
            done.push(format!("priority {}", target.as_str_name().trim_start_matches("PRIORITY_").to_lowercase()));
        }
    }
    if let Some(queue) = target_queue(tenant, rule) {
        let current = tenant.items.get(ticket).map(|item| item.queue_id.clone()).unwrap_or_default();
        if queue != current {
            let tier = tenant.queues.get(&queue).map(|q| q.spec.tier.clone()).unwrap_or_default();
            if let Some(item) = tenant.items.get_mut(ticket) {
                item.tier = if rule.move_to_tier.is_empty() { tier } else { rule.move_to_tier.clone() };
            }
            tenant.requeue(ticket, Some(&queue), now, changes);
            done.push(format!("queue {queue}"));
        }
    }
    if rule.assign_to_supervisor {
        // The agent holding the ticket, or the one it is offered to.
        let assignee = tenant.items.get(ticket).map(|item| crate::engine::holder(item).to_owned()).unwrap_or_default();
        let supervisor =
            tenant.agents.get(&assignee).map(|agent| agent.spec.supervisor_id.clone()).filter(|id| !id.is_empty());
        match supervisor {
            Some(supervisor) => {
                tenant.assign(ticket, &supervisor, now, changes);
                done.push(format!("assigned to supervisor {supervisor}"));
            }
            None => done.push("no supervisor to assign to".to_owned()),
        }
    }
    if rule.notify {
        done.push("notified".to_owned());
    }
    done
}

/// The named queue, or the first queue (by position) of the tier or team.
fn target_queue(tenant: &Tenant, rule: &EscalationRule) -> Option<String> {
    if !rule.move_to_queue_id.is_empty() {
        return tenant.queues.contains_key(&rule.move_to_queue_id).then(|| rule.move_to_queue_id.clone());
    }
    let matches = |queue: &&crate::engine::QueueState| {
        (!rule.move_to_tier.is_empty() && queue.spec.tier == rule.move_to_tier)
            || (rule.move_to_tier.is_empty() && !rule.move_to_team.is_empty() && queue.spec.team == rule.move_to_team)
    };
    tenant
        .queues
        .values()
        .filter(matches)
        .min_by_key(|queue| (queue.spec.position, queue.spec.id.clone()))
        .map(|queue| queue.spec.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_and_english_phrases_are_detected() {
        assert_eq!(detect("I want to speak to your MANAGER now"), [Trigger::SupervisorRequested]);
        assert_eq!(detect("환불 안 해주면 소송하겠습니다"), [Trigger::ThreatDetected]);
        assert_eq!(
            detect("책임자 바꿔주세요. 변호사와 상의하겠습니다"),
            [Trigger::SupervisorRequested, Trigger::ThreatDetected]
        );
        assert!(detect("배송이 언제 되나요? Where is my parcel?").is_empty());
    }
}
