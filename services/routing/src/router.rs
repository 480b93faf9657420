//! The routing service's core: tenants' routing state behind one lock, a decision per call made
//! in memory, made durable by group commit before the caller hears of it, then pushed to agents.
//! Background loops fire SLA timers, expire offers, mark idle agents away and overflow queues.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use helpdesk_proto::{
    events::v1::{Event, SlaAlert, TicketEscalated, TicketRouted, event::Payload},
    routing::v1::{AssignmentNotice, Presence, TicketSla, Trigger, WorkItem, WorkState},
};
use helpdesk_runtime::{batch::Batcher, db::Database, error::ServiceError, shutdown::Shutdown};
use prost::Message;
use tokio::sync::{Notify, broadcast};

use crate::{
    engine::{Changes, Tenant},
    escalation::{self, Occurrence},
    store::{self, ItemRow, Writes},
    time::{self, Millis, timestamp},
};

const MAX_BATCH: usize = 512;
/// Commits of one operation's writes before its caller gets the error.
const COMMIT_ATTEMPTS: u32 = 6;
/// Timers fired per pass, so one pass never holds the lock for long.
const FIRE_LIMIT: usize = 20_000;
const TICK: Duration = Duration::from_millis(100);
const SWEEP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    /// Online agents with no activity for this long become away.
    pub away_after: Duration,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self { away_after: Duration::from_secs(300) }
    }
}

/// How an operation's writes reach the database.
#[derive(Clone, Copy)]
enum Commit {
    /// Queued for group commit with other callers' writes.
    Grouped,
    /// Committed on their own, ahead of the queue: SLA timers must fire on time even when a
    /// peak keeps the group-commit queue full.
    Direct,
}

#[derive(Default)]
struct State {
    tenants: crate::Map<String, Tenant>,
    /// Each open ticket's next SLA firing time.
    timers: BTreeSet<(Millis, String, String)>,
    scheduled: crate::Map<(String, String), Millis>,
}

impl State {
    fn reschedule(&mut self, tenant: &str, ticket: &str, at: Option<Millis>) {
        let key = (tenant.to_owned(), ticket.to_owned());
        if let Some(previous) = self.scheduled.remove(&key) {
            self.timers.remove(&(previous, key.0.clone(), key.1.clone()));
        }
        if let Some(at) = at {
            self.timers.insert((at, key.0.clone(), key.1.clone()));
            self.scheduled.insert(key, at);
        }
    }
}

pub struct Router {
    db: Database,
    state: Mutex<State>,
    writes: Batcher<Arc<Writes>, ()>,
    watchers: Mutex<HashMap<(String, String), broadcast::Sender<AssignmentNotice>>>,
    /// Wakes the outbox relay and the ticketing sync after a commit.
    pub(crate) events_written: Arc<Notify>,
    pub(crate) sync_wake: Arc<Notify>,
    settings: RouterSettings,
}

impl Router {
    pub fn new(db: Database, events_written: Arc<Notify>, settings: RouterSettings) -> Arc<Self> {
        let writer = db.clone();
        let workers = match db.backend() {
            helpdesk_runtime::db::Backend::Sqlite => 1,
            helpdesk_runtime::db::Backend::Postgres => 4,
        };
        let writes = Batcher::spawn(MAX_BATCH, workers, move |batch: Vec<Arc<Writes>>| {
            let db = writer.clone();
            Box::pin(async move {
                let count = batch.len();
                match store::write(&db, &batch).await {
                    Ok(()) => (0..count).map(|_| Ok(())).collect(),
                    Err(error) => {
                        let error = helpdesk_runtime::db::classify(error);
                        (0..count).map(|_| Err(error.clone())).collect()
                    }
                }
            })
        });
        Arc::new(Self {
            db,
            state: Mutex::new(State::default()),
            writes,
            watchers: Mutex::new(HashMap::new()),
            events_written,
            sync_wake: Arc::new(Notify::new()),
            settings,
        })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads a tenant's state without changing it.
    pub(crate) fn read<T>(&self, tenant: &str, read: impl FnOnce(&Tenant) -> T) -> T {
        let state = self.lock();
        match state.tenants.get(tenant) {
            Some(tenant) => read(tenant),
            None => read(&Tenant::default()),
        }
    }

    /// Runs `op` on the tenant's state, persists what it changed, then pushes the notices. An
    /// `op` that fails must fail before it changes anything.
    pub(crate) async fn apply<T>(
        &self,
        tenant: &str,
        op: impl FnOnce(&mut Tenant, Millis, &mut Changes) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.apply_as(tenant, Commit::Grouped, op).await
    }

    async fn apply_as<T>(
        &self,
        tenant: &str,
        commit: Commit,
        op: impl FnOnce(&mut Tenant, Millis, &mut Changes) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let now = time::now();
        let (result, writes, notices) = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let tenant_state = state.tenants.entry(tenant.to_owned()).or_default();
            let mut changes = Changes::default();
            let result = op(tenant_state, now, &mut changes)?;
            reassignment_escalations(tenant_state, now, &mut changes);
            let mut writes = Writes::default();
            let mut timers = Vec::new();
            collect(tenant, tenant_state, &mut changes, now, &mut writes, &mut timers);
            for (ticket, at) in timers {
                state.reschedule(tenant, &ticket, at);
            }
            (result, writes, changes.notices)
        };
        if !writes.is_empty() {
            self.commit(writes, commit).await?;
            self.events_written.notify_one();
            self.sync_wake.notify_one();
        }
        self.push(tenant, notices);
        Ok(result)
    }

    /// Makes an operation's writes durable. Memory has already changed, so a failed commit is
    /// retried on its own for a while rather than leaving the database behind memory.
    async fn commit(&self, writes: Writes, commit: Commit) -> Result<(), ServiceError> {
        let writes = Arc::new(writes);
        if let Commit::Grouped = commit {
            match self.writes.submit(writes.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) => tracing::warn!(%error, "routing commit failed; retrying on its own"),
            }
        }
        let batch = [writes];
        let mut last = None;
        for attempt in 0..COMMIT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
            }
            match store::write(&self.db, &batch).await {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        let error = last.map(helpdesk_runtime::db::classify).unwrap_or_else(|| ServiceError::internal(&"no attempt"));
        tracing::error!(%error, "routing state is ahead of its database until the next change or restart");
        Err(error)
    }

    fn push(&self, tenant: &str, notices: Vec<(String, AssignmentNotice)>) {
        if notices.is_empty() {
            return;
        }
        let watchers = self.watchers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (agent, notice) in notices {
            if let Some(sender) = watchers.get(&(tenant.to_owned(), agent)) {
                let _ = sender.send(notice);
            }
        }
    }

    /// Whether the agent has a `WatchAssignments` stream open, which counts as activity.
    fn is_watching(&self, tenant: &str, agent: &str) -> bool {
        let watchers = self.watchers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        watchers.get(&(tenant.to_owned(), agent.to_owned())).is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Notices for one agent from now on.
    pub(crate) fn watch(&self, tenant: &str, agent: &str) -> broadcast::Receiver<AssignmentNotice> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        watchers.retain(|_, sender| sender.receiver_count() > 0);
        watchers.entry((tenant.to_owned(), agent.to_owned())).or_insert_with(|| broadcast::channel(256).0).subscribe()
    }

    /// Loads settings, presence, open work, SLA clocks and fired escalations.
    pub async fn load(&self) -> Result<(), ServiceError> {
        use helpdesk_proto::routing::v1::{Agent, BusinessCalendar, EscalationRule, Queue, SlaPolicy};
        let classify = helpdesk_runtime::db::classify;
        let settings = store::settings(&self.db).await.map_err(classify)?;
        let presence = store::presence(&self.db).await.map_err(classify)?;
        let items = store::open_items(&self.db).await.map_err(classify)?;
        let fired = store::fired(&self.db).await.map_err(classify)?;
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut ignored = Changes::default();
        for (tenant, kind, spec) in settings {
            let t = state.tenants.entry(tenant).or_default();
            let bytes = spec.as_slice();
            match kind.as_str() {
                store::AGENT => {
                    if let Ok(agent) = Agent::decode(bytes) {
                        t.upsert_agent(agent, 0, &mut ignored);
                    }
                }
                store::QUEUE => {
                    if let Ok(queue) = Queue::decode(bytes) {
                        t.upsert_queue(queue, 0, &mut ignored);
                    }
                }
                store::CALENDAR => {
                    if let Ok(calendar) = BusinessCalendar::decode(bytes)
                        && let Ok(parsed) = crate::validate::calendar(&calendar)
                    {
                        t.sla.config.calendars.insert(calendar.id.clone(), (calendar, parsed));
                    }
                }
                store::POLICY => {
                    if let Ok(policy) = SlaPolicy::decode(bytes) {
                        t.sla.config.policies.insert(policy.id.clone(), policy);
                    }
                }
                store::RULE => {
                    if let Ok(rule) = EscalationRule::decode(bytes) {
                        t.escalation.rules.insert(rule.id.clone(), rule);
                    }
                }
                _ => {}
            }
        }
        for (tenant, agent, presence, last_active) in presence {
            let presence =
                i32::try_from(presence).ok().and_then(|p| Presence::try_from(p).ok()).unwrap_or(Presence::Offline);
            state.tenants.entry(tenant).or_default().restore_presence(&agent, presence, last_active);
        }
        for (tenant, ticket, key) in fired {
            state.tenants.entry(tenant).or_default().escalation.fired.insert((ticket, key));
        }
        let mut timers = Vec::new();
        for row in items {
            let Ok(item) = WorkItem::decode(row.item.as_slice()) else { continue };
            let t = state.tenants.entry(row.tenant.clone()).or_default();
            if let Some(sla) = row.sla.and_then(|sla| TicketSla::decode(sla.as_slice()).ok()) {
                t.sla.tickets.insert(item.ticket_id.clone(), sla);
            }
            let ticket = item.ticket_id.clone();
            t.restore_item(item, row.version);
            timers.push((row.tenant, t.sla.next_fire(&ticket), ticket));
        }
        for (tenant, at, ticket) in timers {
            state.reschedule(&tenant, &ticket, at);
        }
        Ok(())
    }

    /// A stored item, also when it is done and no longer in memory.
    pub(crate) async fn item(&self, tenant: &str, ticket: &str) -> Result<(WorkItem, Option<TicketSla>), ServiceError> {
        let in_memory =
            self.read(tenant, |t| t.items.get(ticket).map(|item| (item.clone(), t.sla.tickets.get(ticket).cloned())));
        if let Some(found) = in_memory {
            return Ok(found);
        }
        let (item, sla) = store::item(&self.db, tenant, ticket)
            .await
            .map_err(helpdesk_runtime::db::classify)?
            .ok_or_else(|| ServiceError::not_found("work item"))?;
        let item = WorkItem::decode(item.as_slice()).map_err(|error| ServiceError::internal(&error))?;
        let sla = sla.and_then(|sla| TicketSla::decode(sla.as_slice()).ok());
        Ok((item, sla))
    }

    /// Fires every timer due by `now`; returns how late each fired, in milliseconds.
    pub async fn fire_due(&self, now: Millis) -> Result<Vec<Millis>, ServiceError> {
        let due: Vec<(Millis, String, String)> = {
            let mut state = self.lock();
            let mut due = Vec::new();
            while due.len() < FIRE_LIMIT {
                let Some(first) = state.timers.first().cloned() else { break };
                if first.0 > now {
                    break;
                }
                state.timers.pop_first();
                state.scheduled.remove(&(first.1.clone(), first.2.clone()));
                due.push(first);
            }
            due
        };
        let mut by_tenant: HashMap<String, Vec<String>> = HashMap::new();
        let mut lags = Vec::with_capacity(due.len());
        for (at, tenant, ticket) in due {
            lags.push(now - at);
            by_tenant.entry(tenant).or_default().push(ticket);
        }
        let mut failed = None;
        for (tenant, tickets) in by_tenant {
            // Fire as of `now`, the instant the timers were taken for.
            let fired = self
                .apply_as(&tenant, Commit::Direct, |t, _, changes| {
                    for ticket in tickets {
                        fire_ticket(t, &ticket, now, changes);
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = fired {
                failed = Some(error);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(lags),
        }
    }

    /// Runs the timer and sweep loops until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(TICK);
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.clone().wait() => return,
            }
            if let Err(error) = self.fire_due(time::now()).await {
                tracing::warn!(%error, "SLA timers will be retried");
            }
            if last_sweep.elapsed() >= SWEEP {
                last_sweep = tokio::time::Instant::now();
                if let Err(error) = self.sweep().await {
                    tracing::warn!(%error, "routing sweep will be retried");
                }
            }
        }
    }

    /// Lapsed offers go to the next agent, idle agents become away, waiting work overflows.
    async fn sweep(&self) -> Result<(), ServiceError> {
        let now = time::now();
        let idle_cutoff = now - self.settings.away_after.as_millis() as Millis;
        let tenants: Vec<String> = {
            let state = self.lock();
            state
                .tenants
                .iter()
                .filter(|(_, t)| {
                    !t.expired_offers(now).is_empty()
                        || !t.idle_agents(idle_cutoff).is_empty()
                        || !t.overflowing(now).is_empty()
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for tenant in tenants {
            self.apply(&tenant, |t, now, changes| {
                for (ticket, agent) in t.expired_offers(now) {
                    let _ = t.decline(&ticket, &agent, now, changes);
                }
                for agent in t.idle_agents(idle_cutoff) {
                    if !self.is_watching(&tenant, &agent) {
                        t.set_presence(&agent, Presence::Away, now, changes);
                    }
                }
                for (ticket, queue) in t.overflowing(now) {
                    t.requeue(&ticket, Some(&queue), now, changes);
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Tenants with at least one queue: those whose tickets routing takes.
    pub(crate) fn configured_tenants(&self) -> Vec<String> {
        self.lock().tenants.iter().filter(|(_, t)| !t.queues.is_empty()).map(|(id, _)| id.clone()).collect()
    }

    /// Open tickets of every tenant, for the benchmark and metrics.
    pub fn open_items(&self) -> usize {
        self.lock().tenants.values().map(|t| t.items.len()).sum()
    }

    pub fn pending_timers(&self) -> usize {
        self.lock().timers.len()
    }
}

/// Warnings and breaches of one ticket, and the escalations they trigger.
pub(crate) fn fire_ticket(tenant: &mut Tenant, ticket: &str, now: Millis, changes: &mut Changes) {
    let alerts = tenant.sla.fire(ticket, now);
    for alert in alerts {
        let kind = helpdesk_proto::routing::v1::SlaKind::try_from(alert.target.kind).ok();
        let (trigger, word) =
            if alert.breached { (Trigger::SlaBreach, "breached") } else { (Trigger::SlaWarning, "warning") };
        let kind_name = kind.map_or("target", |kind| kind.as_str_name()).trim_start_matches("SLA_KIND_").to_lowercase();
        let started = alert.target.started_at.as_ref().map_or(0, time::millis);
        let key = format!("sla:{kind_name}:{word}:{started}");
        let occurrence = Occurrence {
            trigger,
            sla_kind: kind,
            key: &key,
            reason: format!("SLA {kind_name} {word}"),
            triggered_by: "sla".to_owned(),
        };
        escalation::escalate(tenant, ticket, &occurrence, now, changes);
        changes.alerts.push((ticket.to_owned(), alert.target, alert.breached));
        changes.items.insert(ticket.to_owned());
    }
}

/// Items reassigned past a rule's limit escalate, once per rule.
fn reassignment_escalations(tenant: &mut Tenant, now: Millis, changes: &mut Changes) {
    let limits: Vec<i32> = tenant
        .escalation
        .rules
        .values()
        .filter(|rule| rule.enabled && rule.trigger() == Trigger::ReassignmentLimit)
        .map(|rule| rule.reassignment_limit)
        .collect();
    let Some(lowest) = limits.into_iter().min() else { return };
    let over: Vec<(String, i32)> = changes
        .items
        .iter()
        .filter_map(|ticket| tenant.items.get(ticket))
        .filter(|item| item.reassignments > lowest)
        .map(|item| (item.ticket_id.clone(), item.reassignments))
        .collect();
    for (ticket, count) in over {
        let occurrence = Occurrence {
            trigger: Trigger::ReassignmentLimit,
            sla_kind: None,
            key: "reassignments",
            reason: format!("reassigned {count} times"),
            triggered_by: "routing".to_owned(),
        };
        escalation::escalate(tenant, &ticket, &occurrence, now, changes);
    }
}

/// What ticketing should show for an item: assignee, queue and priority.
fn desired(item: &WorkItem) -> String {
    if item.state() == WorkState::Done {
        return String::new();
    }
    let assignee = if item.state() == WorkState::Assigned { item.assignee_id.as_str() } else { "" };
    format!("{assignee}\u{1f}{}\u{1f}{}", item.queue_id, item.priority)
}

/// Splits [`desired`] back into its parts.
pub(crate) fn parse_desired(desired: &str) -> Option<(String, String, i32)> {
    let mut parts = desired.split('\u{1f}');
    let (assignee, queue, priority) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    Some((assignee.to_owned(), queue.to_owned(), priority))
}

/// Turns an operation's changes into rows, events and notes, and the timers to reschedule.
fn collect(
    tenant_id: &str,
    tenant: &mut Tenant,
    changes: &mut Changes,
    now: Millis,
    writes: &mut Writes,
    timers: &mut Vec<(String, Option<Millis>)>,
) {
    let now_version = now.saturating_mul(1_000);
    for recorded in changes.escalations.drain(..) {
        let escalation = &recorded.escalation;
        let mut note = format!("Escalated ({}): {}", trigger_name(escalation.trigger), escalation.reason);
        if !escalation.actions.is_empty() {
            note.push_str(" → ");
            note.push_str(&escalation.actions.join(", "));
        }
        writes.notes.push((escalation.id.clone(), tenant_id.to_owned(), escalation.ticket_id.clone(), note));
        if recorded.notify {
            writes.events.push(event(
                tenant_id,
                &escalation.ticket_id,
                0,
                now,
                Payload::TicketEscalated(TicketEscalated { escalation: Some(escalation.clone()) }),
            ));
        }
        writes.escalations.push((tenant_id.to_owned(), recorded));
    }
    for (kind, id, spec) in changes.settings.drain(..) {
        writes.settings.push((tenant_id.to_owned(), kind, id, spec));
    }
    for (ticket, body) in changes.notes.drain(..) {
        writes.notes.push((uuid::Uuid::now_v7().to_string(), tenant_id.to_owned(), ticket, body));
    }
    let mut tickets: Vec<String> = changes.items.drain().collect();
    tickets.sort();
    for ticket in &tickets {
        // Its priority or SLA due time may have changed: file it again under its current key.
        tenant.reorder(ticket, |_| {});
        let Some(item) = tenant.items.get(ticket) else { continue };
        let version = tenant.versions.get(ticket).map_or(now_version, |previous| (previous + 1).max(now_version));
        tenant.versions.insert(ticket.clone(), version);
        let open = item.state() != WorkState::Done;
        if item.state() == WorkState::Assigned || item.state() == WorkState::Offered {
            // The earliest running SLA target goes with it, so that reports know the ticket has one.
            let routed =
                WorkItem { sla_due_at: tenant.sla.next_due(ticket).map(crate::time::timestamp), ..item.clone() };
            writes.events.push(event(
                tenant_id,
                ticket,
                version,
                now,
                Payload::TicketRouted(TicketRouted { item: Some(routed) }),
            ));
        }
        writes.items.push(ItemRow {
            tenant: tenant_id.to_owned(),
            ticket: ticket.clone(),
            open,
            version,
            item: item.encode_to_vec(),
            sla: tenant.sla.tickets.get(ticket).map(Message::encode_to_vec),
            desired: desired(item),
        });
        timers.push((ticket.clone(), if open { tenant.sla.next_fire(ticket) } else { None }));
        if !open {
            tenant.forget_done(ticket);
        }
    }
    for (ticket, target, breached) in changes.alerts.drain(..) {
        let payload = Payload::SlaAlert(SlaAlert { ticket_id: ticket.clone(), target: Some(target), breached });
        writes.events.push(event(tenant_id, &ticket, 0, now, payload));
    }
    for agent in changes.agents.drain() {
        if let Some(state) = tenant.agents.get(&agent) {
            writes.presence.push((tenant_id.to_owned(), agent, state.presence as i32, state.last_active));
        }
    }
}

fn trigger_name(trigger: i32) -> String {
    Trigger::try_from(trigger)
        .map_or("unknown", |trigger| trigger.as_str_name())
        .trim_start_matches("TRIGGER_")
        .to_lowercase()
        .replace('_', " ")
}

/// Routing's events are keyed by ticket under the `routing` aggregate. Their sequence is the
/// item's row version (increasing, not contiguous); alerts and escalations carry 0.
fn event(tenant: &str, ticket: &str, sequence: i64, now: Millis, payload: Payload) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.to_owned(),
        aggregate_type: "routing".to_owned(),
        aggregate_id: ticket.to_owned(),
        sequence,
        occurred_at: Some(timestamp(now)),
        actor_kind: helpdesk_proto::common::v1::AuthorKind::System as i32,
        actor_id: crate::SERVICE_SUBJECT.to_owned(),
        payload: Some(payload),
    }
}
