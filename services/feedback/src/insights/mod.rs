//! Insights: ticketing's, routing's and feedback's events are recorded once each in the event
//! log (the history projections are rebuilt from), then folded into in-memory facts that every
//! report scans. Each replica follows the log by position, so all replicas answer alike however
//! the bus spread the events among them.

mod facts;
pub(crate) mod reports;

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use futures::StreamExt;
use helpdesk_events::{EventBus, EventStream};
use helpdesk_proto::{
    events::v1::{Event, event::Payload},
    ticketing::v1::Ticket,
};
use helpdesk_runtime::{
    ServiceError,
    db::{Database, classify, positional, serialize_on},
    shutdown::Shutdown,
};
use prost::Message;

use crate::Map;
use facts::TenantFacts;
use reports::{Scope, Table};

/// Rows read from the log per query.
const BATCH: i64 = 20_000;

#[derive(Default)]
struct State {
    tenants: Map<String, TenantFacts>,
    /// The last log position applied. Writers to the log take turns (see [`Insights::record`]),
    /// so positions commit in order and everything up to here is applied.
    applied_upto: i64,
}

pub struct Insights {
    db: Database,
    state: RwLock<State>,
    /// One reader of the log at a time, so that each position is applied once.
    follow: tokio::sync::Mutex<()>,
}

/// What a rebuild did.
pub struct Rebuilt {
    pub events: i64,
    pub tickets: i64,
    pub seconds: f64,
}

fn db_error(error: sqlx::Error) -> ServiceError {
    classify(error)
}

impl Insights {
    pub(crate) fn new(db: Database) -> Self {
        Self { db, state: RwLock::default(), follow: tokio::sync::Mutex::new(()) }
    }

    /// Records `events` in the log (once each, by id) and applies what is new. This is ingestion:
    /// the bus consumer calls it with each batch it receives.
    pub async fn record(&self, events: &[Event]) -> Result<(), ServiceError> {
        let kept: Vec<Event> = events.iter().filter_map(compact).collect();
        if !kept.is_empty() {
            let mut tx = self.db.writer().begin().await.map_err(db_error)?;
            // PostgreSQL hands out positions before commit; with one writer at a time across the
            // replicas, a lower position never commits after a higher one was read.
            serialize_on(&mut tx, "feedback-event-log").await.map_err(db_error)?;
            for chunk in kept.chunks(500) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|row| {
                        let first = row * 3 + 1;
                        format!(
                            "({}, {}, {})",
                            positional(&tx, first),
                            positional(&tx, first + 1),
                            positional(&tx, first + 2)
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO event_log (tenant_id, event_id, payload) VALUES {} ON CONFLICT (event_id) DO NOTHING",
                    rows.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for event in chunk {
                    query = query.bind(&event.tenant_id).bind(&event.id).bind(event.encode_to_vec());
                }
                query.execute(&mut *tx).await.map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)?;
        }
        self.catch_up().await.map(|_| ())
    }

    /// Applies the log's events this replica has not applied yet; returns how many.
    pub async fn catch_up(&self) -> Result<u64, ServiceError> {
        let _one_reader = self.follow.lock().await;
        let mut applied = 0;
        loop {
            let after = self.read().applied_upto;
            let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
                "SELECT position, tenant_id, payload FROM event_log WHERE position > $1 ORDER BY position LIMIT $2",
            )
            .bind(after)
            .bind(BATCH)
            .fetch_all(self.db.reader())
            .await
            .map_err(db_error)?;
            let mut fresh = Vec::with_capacity(rows.len());
            for (position, tenant, payload) in &rows {
                fresh.push((*position, tenant.clone(), decode(payload)));
            }
            applied += fresh.len() as u64;
            let mut state = self.write();
            for (position, tenant, event) in fresh {
                if let Some(event) = event {
                    state.tenants.entry(tenant).or_default().apply(&event);
                }
                state.applied_upto = position;
            }
            if (rows.len() as i64) < BATCH {
                return Ok(applied);
            }
        }
    }

    /// Forgets every projection and folds the whole event log again.
    pub async fn rebuild_all(&self) -> Result<Rebuilt, ServiceError> {
        let started = Instant::now();
        {
            let _one_reader = self.follow.lock().await;
            *self.write() = State::default();
        }
        let events = self.catch_up().await? as i64;
        let tickets = self.read().tenants.values().map(|facts| facts.tickets.len() as i64).sum();
        Ok(Rebuilt { events, tickets, seconds: started.elapsed().as_secs_f64() })
    }

    /// Rebuilds one tenant's projections from its events in the log, then swaps them in.
    pub async fn rebuild(&self, tenant: &str) -> Result<Rebuilt, ServiceError> {
        let started = Instant::now();
        let _one_reader = self.follow.lock().await;
        // Up to what this replica has applied; later positions are left to the next catch-up.
        let upto = self.read().applied_upto;
        let mut facts = TenantFacts::default();
        let (mut after, mut events) = (0_i64, 0_i64);
        loop {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT position, payload FROM event_log WHERE tenant_id = $1 AND position > $2 AND position <= $3 \
                 ORDER BY position LIMIT $4",
            )
            .bind(tenant)
            .bind(after)
            .bind(upto)
            .bind(BATCH)
            .fetch_all(self.db.reader())
            .await
            .map_err(db_error)?;
            for (position, payload) in &rows {
                after = *position;
                if let Some(event) = decode(payload) {
                    facts.apply(&event);
                    events += 1;
                }
            }
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        let tickets = facts.tickets.len() as i64;
        self.write().tenants.insert(tenant.to_owned(), facts);
        Ok(Rebuilt { events, tickets, seconds: started.elapsed().as_secs_f64() })
    }

    /// Runs a report for `tenant` off the async threads: a large tenant's scan takes milliseconds.
    pub async fn report(self: &Arc<Self>, tenant: &str, scope: Scope) -> Result<(Scope, Table), ServiceError> {
        let insights = self.clone();
        let tenant = tenant.to_owned();
        tokio::task::spawn_blocking(move || {
            let state = insights.read();
            let table = match state.tenants.get(&tenant) {
                Some(facts) => reports::run(&scope, facts),
                None => reports::run(&scope, &TenantFacts::default()),
            };
            (scope, table)
        })
        .await
        .map_err(|error| ServiceError::internal(&error))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A log row's event; `None` (logged) for a row that does not decode, which is skipped rather
/// than stall every projection behind it.
fn decode(payload: &[u8]) -> Option<Event> {
    Event::decode(payload).inspect_err(|error| tracing::error!(%error, "undecodable event log row skipped")).ok()
}

/// The event as the log keeps it: without the text and details no report reads, or `None` for
/// events no projection uses.
fn compact(event: &Event) -> Option<Event> {
    fn strip(ticket: &mut Ticket) {
        ticket.description.clear();
        ticket.custom_fields.clear();
        ticket.external_refs.clear();
        ticket.linked_ticket_ids.clear();
        ticket.requester_flag = None;
    }
    let mut event = event.clone();
    match event.payload.as_mut()? {
        Payload::TicketCreated(created) => created.ticket.as_mut().map(strip)?,
        Payload::TicketUpdated(updated) => {
            updated.changed_fields.clear();
            updated.ticket.as_mut().map(strip)?
        }
        Payload::MessageAdded(added) => {
            let message = added.message.as_mut()?;
            message.body_text.clear();
            message.body_html.clear();
            message.attachments.clear();
        }
        Payload::TicketRouted(routed) => routed.item.as_mut()?.declined_by.clear(),
        Payload::SurveyAnswered(answered) => {
            let response = answered.response.as_mut()?;
            response.comment.clear();
            response.answers.clear();
        }
        Payload::TicketStatusChanged(_)
        | Payload::TicketAssigned(_)
        | Payload::TicketMerged(_)
        | Payload::SlaAlert(_)
        | Payload::FollowUpOpened(_)
        | Payload::FollowUpClosed(_) => {}
        Payload::CustomerFlagged(_) | Payload::TicketEscalated(_) | Payload::CredentialRevoked(_) => return None,
    }
    Some(event)
}

/// Every event on the bus, on a durable consumer the replicas share.
pub(crate) async fn subscribe(bus: &dyn EventBus) -> Result<EventStream, helpdesk_events::BusError> {
    bus.subscribe("feedback-insights", None).await
}

/// Records the bus's events in batches, acknowledging each batch once it is committed; and
/// follows the log for what other replicas recorded.
pub(crate) async fn run(insights: Arc<Insights>, events: EventStream, shutdown: Shutdown) {
    let mut batches = events.ready_chunks(500);
    let mut follow = tokio::time::interval(Duration::from_millis(500));
    'batches: loop {
        let batch = tokio::select! {
            batch = batches.next() => batch,
            _ = follow.tick() => {
                if let Err(error) = insights.catch_up().await {
                    tracing::warn!(error = %error.message, "following the event log will be retried");
                }
                continue;
            }
            () = shutdown.clone().wait() => return,
        };
        let Some(batch) = batch else { return };
        let deliveries: Vec<_> = batch
            .into_iter()
            .filter_map(|delivery| {
                delivery.inspect_err(|error| tracing::warn!(%error, "undeliverable event skipped")).ok()
            })
            .collect();
        let events: Vec<Event> = deliveries.iter().map(|delivery| delivery.event.clone()).collect();
        let mut attempt = 0;
        while let Err(error) = insights.record(&events).await {
            attempt += 1;
            if !error.kind.is_transient() && attempt >= 5 {
                // One event the log refuses must not hold up the rest: record them one by one,
                // and the one that keeps failing becomes a dead letter.
                for delivery in deliveries {
                    helpdesk_events::handle_delivery(delivery, &shutdown, |event| {
                        let insights = insights.clone();
                        async move { insights.record(std::slice::from_ref(&event)).await }
                    })
                    .await;
                }
                continue 'batches;
            }
            tracing::warn!(error = %error.message, attempt, "recording events will be retried");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200 * attempt.min(25))) => {}
                () = shutdown.clone().wait() => return,
            }
        }
        for delivery in deliveries {
            if let Err(error) = delivery.ack().await {
                tracing::warn!(%error, "event acknowledgement failed; it will be redelivered");
            }
        }
    }
}
