//! Ticketing's events drive routing: new tickets are queued, replies move SLA clocks and may
//! escalate, status changes pause, resume or finish the work, and changes made by people in
//! ticketing (an assignee, a group, a priority) are followed. Handlers are idempotent by state, so
//! the bus redelivering an event changes nothing; an event is acknowledged once its effects are
//! durable.

use std::sync::Arc;

use futures::StreamExt;
use helpdesk_events::{BusError, EventBus, EventStream, handle_delivery, next_delivery};
use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{Event, event::Payload},
    routing::v1::{RouteTicketRequest, Trigger},
    ticketing::v1::{
        FlagKind, GetCustomerRequest, ListTicketsRequest, Status, Ticket, TicketOrder, Visibility,
        customer_service_client::CustomerServiceClient, ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_runtime::{error::ServiceError, shutdown::Shutdown};

use crate::{
    SERVICE_SUBJECT, ServiceLink,
    escalation::{self, Occurrence},
    router::Router,
};

/// Ticket and customer events, on durable consumers named for routing.
pub(crate) async fn subscribe(bus: &dyn EventBus) -> Result<EventStream, BusError> {
    let tickets = bus.subscribe("routing-tickets", Some("*.ticket.>")).await?;
    let customers = bus.subscribe("routing-customers", Some("*.customer.>")).await?;
    Ok(futures::stream::select(tickets, customers).boxed())
}

pub(crate) async fn run(router: Arc<Router>, link: ServiceLink, mut events: EventStream, shutdown: Shutdown) {
    loop {
        let Some(delivery) = next_delivery(&mut events, &shutdown).await else { return };
        handle_delivery(delivery, &shutdown, |event| {
            let (router, link) = (router.clone(), link.clone());
            async move { handle(&router, &link, &event).await }
        })
        .await;
    }
}

/// Routes open, unassigned tickets that routing does not know: tickets created before the
/// tenant's queues existed, or whose event became a dead letter. Retries until ticketing answers.
pub(crate) async fn reconcile(router: Arc<Router>, link: ServiceLink, shutdown: Shutdown) {
    for tenant in router.configured_tenants() {
        let mut attempt = 0u32;
        while let Err(error) = reconcile_tenant(&router, &link, &tenant).await {
            attempt += 1;
            tracing::warn!(%error, tenant, attempt, "catching up with ticketing will be retried");
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt.min(30)))) => {}
                () = shutdown.clone().wait() => return,
            }
        }
    }
}

async fn reconcile_tenant(router: &Router, link: &ServiceLink, tenant: &str) -> Result<(), ServiceError> {
    let mut client = TicketServiceClient::new(link.channel.clone());
    let mut page_token = String::new();
    let mut routed = 0usize;
    loop {
        let request = ListTicketsRequest {
            statuses: vec![Status::New as i32, Status::Open as i32],
            unassigned: true,
            order: TicketOrder::CreatedAsc as i32,
            page_size: 200,
            page_token,
            ..Default::default()
        };
        let page = client
            .list_tickets(link.request(tenant, request)?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?
            .into_inner();
        for ticket in &page.tickets {
            if !router.read(tenant, |t| t.items.contains_key(&ticket.id)) {
                route(router, link, tenant, ticket).await?;
                routed += 1;
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if routed > 0 {
        tracing::info!(tenant, routed, "routed tickets whose events were missed");
    }
    Ok(())
}

async fn handle(router: &Router, link: &ServiceLink, event: &Event) -> Result<(), ServiceError> {
    if event.actor_id == SERVICE_SUBJECT {
        return Ok(());
    }
    let tenant = event.tenant_id.as_str();
    match &event.payload {
        Some(Payload::TicketCreated(created)) => {
            let Some(ticket) = &created.ticket else { return Ok(()) };
            route(router, link, tenant, ticket).await
        }
        Some(Payload::MessageAdded(added)) => {
            let Some(message) = &added.message else { return Ok(()) };
            if message.visibility() == Visibility::Internal {
                return Ok(());
            }
            let ticket = added.ticket_id.as_str();
            let customer = message.author_kind() == AuthorKind::Customer;
            let text = format!("{} {}", message.body_text, message.body_html);
            let key = format!("message:{}", message.id);
            router
                .apply(tenant, |t, now, changes| {
                    if !t.items.contains_key(ticket) {
                        return Ok(());
                    }
                    if customer {
                        t.sla.customer_replied(ticket, now);
                        for trigger in escalation::detect(&text) {
                            let occurrence = Occurrence {
                                trigger,
                                sla_kind: None,
                                key: &key,
                                reason: "customer's message".to_owned(),
                                triggered_by: format!("message:{}", message.id),
                            };
                            escalation::escalate(t, ticket, &occurrence, now, changes);
                        }
                    } else if message.author_kind() == AuthorKind::Agent {
                        t.sla.agent_replied(ticket, now);
                    }
                    changes.items.insert(ticket.to_owned());
                    Ok(())
                })
                .await
        }
        Some(Payload::TicketStatusChanged(changed)) => {
            let ticket = changed.ticket_id.as_str();
            let (from, to) = (changed.from(), changed.to());
            router
                .apply(tenant, |t, now, changes| {
                    if !t.items.contains_key(ticket) {
                        return Ok(());
                    }
                    if to == Status::Pending {
                        t.sla.pause(ticket, now);
                    } else if matches!(to, Status::Solved | Status::Closed) {
                        t.sla.finish(ticket, now);
                        t.complete(ticket, now, changes);
                    } else if from == Status::Pending {
                        t.sla.resume(ticket, now);
                    }
                    changes.items.insert(ticket.to_owned());
                    Ok(())
                })
                .await
        }
        Some(Payload::TicketAssigned(assigned)) => {
            let ticket = assigned.ticket_id.as_str();
            let assignee = assigned.assignee_id.as_str();
            router
                .apply(tenant, |t, now, changes| {
                    let Some(item) = t.items.get(ticket) else { return Ok(()) };
                    if item.assignee_id == assignee {
                        return Ok(());
                    }
                    if assignee.is_empty() {
                        t.requeue(ticket, None, now, changes);
                    } else {
                        t.assign(ticket, assignee, now, changes);
                    }
                    Ok(())
                })
                .await
        }
        Some(Payload::TicketUpdated(updated)) => {
            let Some(ticket) = &updated.ticket else { return Ok(()) };
            let id = ticket.id.as_str();
            router
                .apply(tenant, |t, now, changes| {
                    let Some(item) = t.items.get(id) else { return Ok(()) };
                    let moved = !ticket.group.is_empty()
                        && ticket.group != item.queue_id
                        && t.queues.contains_key(&ticket.group);
                    let (priority, tags) = (ticket.priority, ticket.tags.clone());
                    if item.priority != priority || item.tags != tags {
                        t.reorder(id, |t| {
                            if let Some(item) = t.items.get_mut(id) {
                                item.priority = priority;
                                item.tags = tags;
                            }
                        });
                        changes.items.insert(id.to_owned());
                    }
                    if moved {
                        t.requeue(id, Some(&ticket.group), now, changes);
                    }
                    Ok(())
                })
                .await
        }
        Some(Payload::CustomerFlagged(flagged)) => {
            let Some(flag) = &flagged.flag else { return Ok(()) };
            if !serious(flag.kind()) {
                return Ok(());
            }
            let customer = flagged.customer_id.as_str();
            let key = flag_key(flag);
            router
                .apply(tenant, |t, now, changes| {
                    let tickets: Vec<String> = t
                        .items
                        .values()
                        .filter(|item| item.requester_id == customer)
                        .map(|item| item.ticket_id.clone())
                        .collect();
                    for ticket in tickets {
                        let occurrence = flag_occurrence(&key, &flag.reason);
                        escalation::escalate(t, &ticket, &occurrence, now, changes);
                    }
                    Ok(())
                })
                .await
        }
        _ => Ok(()),
    }
}

/// One flagging of a customer, whichever event reports it first.
fn flag_key(flag: &helpdesk_proto::ticketing::v1::CustomerFlag) -> String {
    format!("flag:{}", flag.flagged_at.as_ref().map_or(0, |at| at.seconds))
}

fn serious(kind: FlagKind) -> bool {
    matches!(kind, FlagKind::Abusive | FlagKind::LegalThreat)
}

fn flag_occurrence<'a>(key: &'a str, reason: &str) -> Occurrence<'a> {
    Occurrence {
        trigger: Trigger::CustomerFlagged,
        sla_kind: None,
        key,
        reason: if reason.is_empty() { "customer flagged".to_owned() } else { format!("customer flagged: {reason}") },
        triggered_by: "customer".to_owned(),
    }
}

/// Queues a new ticket with what the requester's profile says about language, tier and VIP.
async fn route(router: &Router, link: &ServiceLink, tenant: &str, ticket: &Ticket) -> Result<(), ServiceError> {
    if ticket.status() != Status::New && ticket.status() != Status::Open {
        return Ok(());
    }
    let customer = match ticket.requester_id.is_empty() {
        true => None,
        false => {
            let request = GetCustomerRequest { id: ticket.requester_id.clone() };
            CustomerServiceClient::new(link.channel.clone())
                .get_customer(link.request(tenant, request)?)
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    };
    let language = customer
        .as_ref()
        .map(|customer| customer.language.split('-').next().unwrap_or_default().to_ascii_lowercase())
        .unwrap_or_default();
    let request = RouteTicketRequest {
        ticket_id: ticket.id.clone(),
        channel: ticket.channel,
        priority: ticket.priority,
        language,
        tags: ticket.tags.clone(),
        queue_id: if router.read(tenant, |t| t.queues.contains_key(&ticket.group)) {
            ticket.group.clone()
        } else {
            String::new()
        },
        requester_id: ticket.requester_id.clone(),
        customer_tier: customer.as_ref().map(|c| c.tier.clone()).unwrap_or_default(),
        vip: customer.as_ref().is_some_and(|c| c.vip),
        text: format!("{}\n{}", ticket.subject, ticket.description),
    };
    router.route_ticket(tenant, request).await?;
    let flag = ticket
        .requester_flag
        .as_ref()
        .or(customer.as_ref().and_then(|customer| customer.flag.as_ref()))
        .filter(|flag| serious(flag.kind()));
    if !ticket.assignee_id.is_empty() || flag.is_some() {
        let (id, assignee) = (ticket.id.as_str(), ticket.assignee_id.as_str());
        router
            .apply(tenant, |t, now, changes| {
                if !assignee.is_empty() && t.items.get(id).is_some_and(|item| item.assignee_id != assignee) {
                    t.assign(id, assignee, now, changes);
                }
                if let Some(flag) = flag {
                    escalation::escalate(t, id, &flag_occurrence(&flag_key(flag), &flag.reason), now, changes);
                }
                Ok(())
            })
            .await?;
    }
    Ok(())
}
