//! Work items: a ticket's place in routing. Routing it, assigning, transferring or putting it
//! back, and the wait a customer can expect, in their language.

use helpdesk_proto::{
    common::v1::Priority,
    routing::v1::{self as proto, Trigger, WaitEstimate, WorkItem, WorkState},
};
use helpdesk_runtime::error::ServiceError;

use crate::{
    escalation::{self, Occurrence},
    router::Router,
    validate::{self, unknown},
};

impl Router {
    /// Enqueues a ticket (idempotent) and starts its SLA clocks.
    pub async fn route_ticket(
        &self,
        tenant: &str,
        request: proto::RouteTicketRequest,
    ) -> Result<WorkItem, ServiceError> {
        validate::id("ticket_id", &request.ticket_id)?;
        if !request.queue_id.is_empty() && self.read(tenant, |t| !t.queues.contains_key(&request.queue_id)) {
            return Err(unknown("queue_id", "queue"));
        }
        let language = if request.language.is_empty() {
            detect_language(&request.text).to_owned()
        } else {
            request.language.to_ascii_lowercase()
        };
        let item = WorkItem {
            ticket_id: request.ticket_id.clone(),
            queue_id: request.queue_id.clone(),
            priority: match Priority::try_from(request.priority) {
                Ok(Priority::Unspecified) => Priority::Normal as i32,
                Ok(priority) => priority as i32,
                Err(_) => return Err(ServiceError::invalid_field("priority", "must be a known priority")),
            },
            channel: request.channel,
            language,
            tags: request.tags.clone(),
            requester_id: request.requester_id.clone(),
            customer_tier: request.customer_tier.clone(),
            vip: request.vip,
            ..WorkItem::default()
        };
        let ticket = request.ticket_id.clone();
        self.apply(tenant, |t, now, changes| {
            // SLA first: its due time orders the queue.
            if !t.items.contains_key(&ticket) {
                t.sla.start(&WorkItem { queue_id: t.pick_queue(&item).unwrap_or_default(), ..item.clone() }, now);
            }
            if t.enqueue(item, now, changes) {
                if request.vip {
                    let occurrence = Occurrence {
                        trigger: Trigger::VipCustomer,
                        sla_kind: None,
                        key: "vip",
                        reason: "VIP customer".to_owned(),
                        triggered_by: "customer".to_owned(),
                    };
                    escalation::escalate(t, &ticket, &occurrence, now, changes);
                }
                for trigger in escalation::detect(&request.text) {
                    let occurrence = Occurrence {
                        trigger,
                        sla_kind: None,
                        key: "ticket",
                        reason: "phrases in the ticket".to_owned(),
                        triggered_by: "ticket".to_owned(),
                    };
                    escalation::escalate(t, &ticket, &occurrence, now, changes);
                }
            }
            Ok(t.items.get(&ticket).cloned().unwrap_or_default())
        })
        .await
    }

    pub async fn work_item(&self, tenant: &str, ticket: &str) -> Result<WorkItem, ServiceError> {
        Ok(self.item(tenant, ticket).await?.0)
    }

    pub async fn ticket_sla(&self, tenant: &str, ticket: &str) -> Result<proto::TicketSla, ServiceError> {
        let (_, sla) = self.item(tenant, ticket).await?;
        Ok(sla_or_none(ticket, sla))
    }

    pub async fn estimate_wait(&self, tenant: &str, ticket: &str) -> Result<WaitEstimate, ServiceError> {
        let (item, _) = self.item(tenant, ticket).await?;
        Ok(self.wait(tenant, &item))
    }

    /// The work item, its SLA clocks and its expected wait, read once.
    pub async fn ticket_routing(&self, tenant: &str, ticket: &str) -> Result<proto::TicketRouting, ServiceError> {
        let (item, sla) = self.item(tenant, ticket).await?;
        let wait = self.wait(tenant, &item);
        Ok(proto::TicketRouting { work_item: Some(item), sla: Some(sla_or_none(ticket, sla)), wait: Some(wait) })
    }

    fn wait(&self, tenant: &str, item: &WorkItem) -> WaitEstimate {
        let ticket = item.ticket_id.as_str();
        let (position, seconds) = self.read(tenant, |t| t.position(ticket)).unwrap_or((0, 0.0));
        WaitEstimate {
            ticket_id: ticket.to_owned(),
            queue_id: item.queue_id.clone(),
            position: position as i32,
            expected_wait_seconds: seconds,
            expected_wait_text: if position == 0 { String::new() } else { wait_text(seconds, &item.language) },
        }
    }

    pub async fn assign(&self, tenant: &str, ticket: &str, agent: &str) -> Result<WorkItem, ServiceError> {
        self.apply(tenant, |t, now, changes| {
            open_item(t, ticket)?;
            if !t.agents.contains_key(agent) {
                return Err(unknown("agent_id", "agent"));
            }
            t.assign(ticket, agent, now, changes);
            Ok(t.items.get(ticket).cloned().unwrap_or_default())
        })
        .await
    }

    /// Hands the ticket to an agent or a queue; the note goes on the ticket as an internal note.
    pub async fn transfer(
        &self,
        tenant: &str,
        request: &proto::TransferTicketRequest,
        who: &str,
    ) -> Result<WorkItem, ServiceError> {
        let ticket = request.ticket_id.as_str();
        let (agent, queue) = (request.to_agent_id.as_str(), request.to_queue_id.as_str());
        if agent.is_empty() == queue.is_empty() {
            return Err(ServiceError::invalid_field("to_agent_id", "give exactly one of to_agent_id and to_queue_id"));
        }
        if request.note.chars().count() > 10_000 {
            return Err(ServiceError::invalid_field("note", "at most 10000 characters"));
        }
        self.apply(tenant, |t, now, changes| {
            open_item(t, ticket)?;
            if !agent.is_empty() && !t.agents.contains_key(agent) {
                return Err(unknown("to_agent_id", "agent"));
            }
            if !queue.is_empty() && !t.queues.contains_key(queue) {
                return Err(unknown("to_queue_id", "queue"));
            }
            if agent.is_empty() {
                t.requeue(ticket, Some(queue), now, changes);
            } else {
                t.assign(ticket, agent, now, changes);
            }
            let to = if agent.is_empty() { format!("queue {queue}") } else { format!("agent {agent}") };
            let note = request.note.trim();
            let body = if note.is_empty() {
                format!("Transferred to {to} by {who}.")
            } else {
                format!("Transferred to {to} by {who}: {note}")
            };
            changes.notes.push((ticket.to_owned(), body));
            Ok(t.items.get(ticket).cloned().unwrap_or_default())
        })
        .await
    }

    pub async fn unassign(&self, tenant: &str, ticket: &str) -> Result<WorkItem, ServiceError> {
        self.apply(tenant, |t, now, changes| {
            open_item(t, ticket)?;
            t.requeue(ticket, None, now, changes);
            Ok(t.items.get(ticket).cloned().unwrap_or_default())
        })
        .await
    }
}

/// The ticket's SLA clocks; no targets where no policy applies.
fn sla_or_none(ticket: &str, sla: Option<proto::TicketSla>) -> proto::TicketSla {
    sla.unwrap_or_else(|| proto::TicketSla { ticket_id: ticket.to_owned(), ..Default::default() })
}

/// Korean when the text has Hangul, English otherwise.
pub(crate) fn detect_language(text: &str) -> &'static str {
    if helpdesk_text::has_hangul(text) { "ko" } else { "en" }
}

pub(crate) fn open_item(t: &crate::engine::Tenant, ticket: &str) -> Result<(), ServiceError> {
    match t.items.get(ticket) {
        Some(item) if item.state() != WorkState::Done => Ok(()),
        _ => Err(unknown("ticket_id", "open work item")),
    }
}

/// "about 2 hours" / "약 2시간", rounded up to a unit a customer reads easily.
pub(crate) fn wait_text(seconds: f64, language: &str) -> String {
    let minutes = (seconds / 60.0).ceil().max(1.0) as i64;
    let korean = language == "ko";
    if minutes < 60 {
        let rounded = if minutes <= 5 { minutes } else { (minutes + 4) / 5 * 5 };
        return if korean { format!("약 {rounded}분") } else { format!("about {rounded} minute{}", plural(rounded)) };
    }
    let hours = (minutes + 59) / 60;
    if hours < 48 {
        return if korean { format!("약 {hours}시간") } else { format!("about {hours} hour{}", plural(hours)) };
    }
    let days = (hours + 23) / 24;
    if korean { format!("약 {days}일") } else { format!("about {days} days") }
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally_in_korean_and_english() {
        assert_eq!(wait_text(90.0, "en"), "about 2 minutes");
        assert_eq!(wait_text(7_000.0, "en"), "about 2 hours");
        assert_eq!(wait_text(7_000.0, "ko"), "약 2시간");
        assert_eq!(wait_text(1_380.0, "ko"), "약 25분");
        assert_eq!(detect_language("배송 문의"), "ko");
        assert_eq!(detect_language("Where is my order?"), "en");
    }
}
