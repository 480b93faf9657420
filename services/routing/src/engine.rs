//! The routing state of one tenant, in memory: agents with their presence and load, queues in
//! priority order, and the work items. Every decision is made here, synchronously and without
//! I/O; the caller persists what [`Changes`] records and pushes the notices.

use std::{cmp::Reverse, collections::BTreeSet};

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    routing::v1::{Agent, AssignmentNotice, ChannelLoad, NoticeKind, Presence, Queue, Strategy, WorkItem, WorkState},
};

use crate::{
    Map, Set,
    sla::SlaBook,
    time::{Millis, timestamp},
};

/// How many waiting items an agent's pull looks at per queue before giving up on that queue.
const PULL_SCAN_LIMIT: usize = 2_000;

/// Default time an agent has to accept a chat or phone offer.
pub(crate) const DEFAULT_OFFER_SECONDS: i64 = 30;

/// Weight of the newest handle time in a queue's moving average.
const HANDLE_TIME_WEIGHT: f64 = 0.1;

/// Chat and phone are offered and handed back when the agent leaves; the rest is assigned.
pub(crate) fn is_live(channel: i32) -> bool {
    matches!(Channel::try_from(channel), Ok(Channel::Chat | Channel::Phone))
}

/// Queue order: higher priority, then earlier SLA due time, then older.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct QueueKey {
    priority: Reverse<i32>,
    due: Millis,
    enqueued: Millis,
    ticket: String,
}

impl QueueKey {
    fn of(item: &WorkItem, due: Option<Millis>) -> Self {
        Self {
            priority: Reverse(item.priority),
            due: due.unwrap_or(Millis::MAX),
            enqueued: item.enqueued_at.as_ref().map_or(0, crate::time::millis),
            ticket: item.ticket_id.clone(),
        }
    }
}

pub(crate) struct AgentState {
    pub(crate) spec: Agent,
    pub(crate) presence: Presence,
    pub(crate) last_active: Millis,
    /// Tickets assigned or offered to the agent, by channel.
    active: Map<i32, Set<String>>,
    /// When the agent was last given work, for round-robin.
    last_assigned: u64,
    /// Queues whose requirements the agent meets.
    queues: Vec<String>,
    slot: usize,
}

impl AgentState {
    fn capacity(&self, channel: i32) -> usize {
        self.spec
            .capacities
            .iter()
            .find(|capacity| capacity.channel == channel)
            .map_or(0, |capacity| capacity.capacity.max(0) as usize)
    }

    fn active(&self, channel: i32) -> usize {
        self.active.get(&channel).map_or(0, Set::len)
    }

    fn has_room(&self, channel: i32) -> bool {
        self.active(channel) < self.capacity(channel)
    }

    fn utilization(&self) -> f64 {
        let (mut used, mut total) = (0usize, 0usize);
        for capacity in &self.spec.capacities {
            used += self.active(capacity.channel);
            total += capacity.capacity.max(0) as usize;
        }
        if total == 0 { 1.0 } else { used as f64 / total as f64 }
    }

    fn speaks(&self, language: &str) -> bool {
        language.is_empty() || self.spec.languages.iter().any(|spoken| spoken.eq_ignore_ascii_case(language))
    }

    /// The agent with presence and current load filled in.
    pub(crate) fn view(&self) -> Agent {
        let mut agent = self.spec.clone();
        agent.presence = self.presence as i32;
        agent.last_active_at = Some(timestamp(self.last_active));
        agent.load = self
            .spec
            .capacities
            .iter()
            .map(|capacity| ChannelLoad {
                channel: capacity.channel,
                active: self.active(capacity.channel) as i32,
                capacity: capacity.capacity,
            })
            .collect();
        agent
    }
}

/// Channels are numbered below this (the `Channel` enum).
const CHANNELS: usize = 8;

/// What a routing decision reads about an agent, packed so that scanning a queue's agents
/// touches one small struct each, without hashing: with a thousand agents the scan is the hot
/// path of every decision. Mirrors [`AgentState`] (see [`Tenant::sync_slot`]).
#[derive(Debug, Clone, Default)]
struct Slot {
    online: bool,
    capacity: [u16; CHANNELS],
    active: [u16; CHANNELS],
    /// Bits of the tenant's language numbers (see [`Tenant::language_bit`]).
    languages: u64,
    last_assigned: u64,
    utilization: f32,
}

pub(crate) struct QueueState {
    pub(crate) spec: Queue,
    waiting: BTreeSet<QueueKey>,
    /// The slots of the agents who meet the queue's requirements, with their skill score for it.
    slots: Vec<(usize, i32)>,
    /// Moving average of handle times, in seconds; `None` until a ticket completes.
    handle_seconds: Option<f64>,
    /// `(channel, language)` of work that found no free agent here. Until one of the queue's
    /// agents gains room (which always runs [`Tenant::pull_for`]), such work cannot find one
    /// either, so it joins the queue without scanning the agents: at peak, when every agent is
    /// busy, that scan would otherwise run for every new ticket.
    blocked: Set<(i32, String)>,
}

impl QueueState {
    fn admits(&self, agent: &Agent) -> bool {
        let spec = &self.spec;
        let skilled = spec.required_skills.iter().all(|required| {
            agent
                .skills
                .iter()
                .any(|skill| skill.name.eq_ignore_ascii_case(&required.name) && skill.level >= required.level)
        });
        let language =
            spec.language.is_empty() || agent.languages.iter().any(|l| l.eq_ignore_ascii_case(&spec.language));
        let channel = spec.channels.is_empty()
            || spec
                .channels
                .iter()
                .any(|channel| agent.capacities.iter().any(|c| c.channel == *channel && c.capacity > 0));
        let team = spec.team.is_empty() || spec.team == agent.team;
        let tier = spec.tier.is_empty() || spec.tier == agent.tier;
        skilled && language && channel && team && tier
    }

    fn accepts(&self, item: &WorkItem) -> bool {
        let spec = &self.spec;
        (spec.channels.is_empty() || spec.channels.contains(&item.channel))
            && (spec.language.is_empty() || item.language.is_empty() || spec.language == item.language)
            && (spec.match_tags.is_empty() || spec.match_tags.iter().any(|tag| item.tags.contains(tag)))
    }
}

/// What one operation changed, for the caller to persist and announce.
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) items: Set<String>,
    pub(crate) agents: Set<String>,
    pub(crate) notices: Vec<(String, AssignmentNotice)>,
    /// Escalations, internal notes and events produced along the way.
    pub(crate) escalations: Vec<crate::escalation::Recorded>,
    pub(crate) alerts: Vec<(String, helpdesk_proto::routing::v1::SlaTarget, bool)>,
    /// Internal notes for tickets: `(ticket, body)`.
    pub(crate) notes: Vec<(String, String)>,
    /// Configuration rows to save: `(kind, id, encoded spec)`.
    pub(crate) settings: Vec<(&'static str, String, Vec<u8>)>,
}

impl Changes {
    fn notify(&mut self, agent: &str, kind: NoticeKind, item: &WorkItem) {
        self.notices.push((agent.to_owned(), AssignmentNotice { kind: kind as i32, item: Some(item.clone()) }));
    }
}

#[derive(Default)]
pub(crate) struct Tenant {
    pub(crate) agents: Map<String, AgentState>,
    pub(crate) queues: Map<String, QueueState>,
    /// Work not yet done.
    pub(crate) items: Map<String, WorkItem>,
    pub(crate) sla: SlaBook,
    pub(crate) escalation: crate::escalation::EscalationBook,
    /// Version of each item's persisted row; bumped by every change.
    pub(crate) versions: Map<String, i64>,
    assignments: u64,
    slots: Vec<Slot>,
    slot_agents: Vec<String>,
    /// The queue and key under which each waiting item is filed: the key's inputs (priority, SLA
    /// due time) change, so it is removed by what it was filed as, never recomputed.
    filed: Map<String, (String, QueueKey)>,
    /// A number per language, for the slots' language bits.
    languages: Map<String, u32>,
}

impl Tenant {
    pub(crate) fn upsert_agent(&mut self, spec: Agent, now: Millis, changes: &mut Changes) {
        let id = spec.id.clone();
        for language in &spec.languages {
            let next = self.languages.len() as u32;
            self.languages.entry(language.clone()).or_insert(next);
        }
        let slot = match self.agents.get(&id) {
            Some(agent) => agent.slot,
            None => {
                self.slots.push(Slot::default());
                self.slot_agents.push(id.clone());
                self.slots.len() - 1
            }
        };
        let queues: Vec<String> =
            self.queues.iter().filter(|(_, queue)| queue.admits(&spec)).map(|(id, _)| id.clone()).collect();
        for queue in self.queues.values_mut() {
            queue.slots.retain(|(other, _)| *other != slot);
        }
        for queue in &queues {
            if let Some(state) = self.queues.get_mut(queue) {
                state.slots.push((slot, skill_score(&state.spec, &spec)));
            }
        }
        match self.agents.get_mut(&id) {
            Some(agent) => {
                agent.spec = spec;
                agent.queues = queues;
            }
            None => {
                let agent = AgentState {
                    spec,
                    presence: Presence::Offline,
                    last_active: now,
                    active: Map::default(),
                    last_assigned: 0,
                    queues,
                    slot,
                };
                self.agents.insert(id.clone(), agent);
            }
        }
        self.sync_slot(&id);
        changes.agents.insert(id.clone());
        self.pull_for(&id, now, changes);
    }

    /// Restores presence from storage without side effects.
    pub(crate) fn restore_presence(&mut self, agent: &str, presence: Presence, last_active: Millis) {
        if let Some(state) = self.agents.get_mut(agent) {
            state.presence = presence;
            state.last_active = last_active;
        }
        self.sync_slot(agent);
    }

    /// Copies what decisions read about an agent into its slot.
    fn sync_slot(&mut self, id: &str) {
        let Some(agent) = self.agents.get(id) else { return };
        let languages =
            agent.spec.languages.iter().filter_map(|l| self.language_bit(l)).fold(0, |bits, bit| bits | bit);
        let Some(slot) = self.slots.get_mut(agent.slot) else { return };
        slot.online = agent.presence == Presence::Online;
        slot.capacity = [0; CHANNELS];
        slot.active = [0; CHANNELS];
        for capacity in &agent.spec.capacities {
            if let Some(channel) = channel_index(capacity.channel) {
                slot.capacity[channel] = capacity.capacity.clamp(0, i32::from(u16::MAX)) as u16;
            }
        }
        for (channel, tickets) in &agent.active {
            if let Some(channel) = channel_index(*channel) {
                slot.active[channel] = tickets.len().min(usize::from(u16::MAX)) as u16;
            }
        }
        slot.languages = languages;
        slot.last_assigned = agent.last_assigned;
        slot.utilization = agent.utilization() as f32;
    }

    /// The bit of a language in the slots; languages past the 64th share the last bit, so for
    /// them a decision also checks the agent's list.
    fn language_bit(&self, language: &str) -> Option<u64> {
        self.languages.get(language).map(|number| 1u64 << (*number).min(63))
    }

    pub(crate) fn upsert_queue(&mut self, spec: Queue, now: Millis, changes: &mut Changes) {
        let id = spec.id.clone();
        let mut state = match self.queues.remove(&id) {
            Some(mut existing) => {
                existing.spec = spec;
                existing
            }
            None => QueueState {
                spec,
                waiting: BTreeSet::new(),
                slots: Vec::new(),
                handle_seconds: None,
                blocked: Set::default(),
            },
        };
        state.blocked.clear();
        let admitted: Vec<String> =
            self.agents.iter().filter(|(_, agent)| state.admits(&agent.spec)).map(|(id, _)| id.clone()).collect();
        state.slots = admitted
            .iter()
            .filter_map(|id| self.agents.get(id))
            .map(|agent| (agent.slot, skill_score(&state.spec, &agent.spec)))
            .collect();
        for agent in self.agents.values_mut() {
            agent.queues.retain(|queue| *queue != id);
        }
        for agent in &admitted {
            if let Some(agent) = self.agents.get_mut(agent) {
                agent.queues.push(id.clone());
            }
        }
        self.queues.insert(id.clone(), state);
        // Unrouted work may match the new queue.
        let unrouted: Vec<String> = self
            .items
            .values()
            .filter(|item| item.state() == WorkState::Unrouted)
            .map(|item| item.ticket_id.clone())
            .collect();
        for ticket in unrouted {
            if let Some(mut item) = self.items.remove(&ticket) {
                if let Some(queue) = self.pick_queue(&item) {
                    item.queue_id = queue;
                    item.queued_at = Some(timestamp(now));
                    item.set_state(WorkState::Waiting);
                    changes.items.insert(ticket.clone());
                }
                self.items.insert(ticket.clone(), item);
                self.place(&ticket, now, changes);
            }
        }
        for agent in admitted {
            self.pull_for(&agent, now, changes);
        }
    }

    /// The first queue, by position, that takes the item.
    pub(crate) fn pick_queue(&self, item: &WorkItem) -> Option<String> {
        self.queues
            .values()
            .filter(|queue| queue.accepts(item))
            .min_by_key(|queue| (queue.spec.position, queue.spec.id.clone()))
            .map(|queue| queue.spec.id.clone())
    }

    /// Adds new work: into its queue, then to an agent if one is free. A known ticket is left as
    /// it is, so a replayed event or retried call changes nothing.
    pub(crate) fn enqueue(&mut self, mut item: WorkItem, now: Millis, changes: &mut Changes) -> bool {
        if self.items.contains_key(&item.ticket_id) {
            return false;
        }
        if item.queue_id.is_empty() || !self.queues.contains_key(&item.queue_id) {
            item.queue_id = self.pick_queue(&item).unwrap_or_default();
        }
        item.set_state(if item.queue_id.is_empty() { WorkState::Unrouted } else { WorkState::Waiting });
        item.enqueued_at = Some(timestamp(now));
        item.queued_at = Some(timestamp(now));
        let ticket = item.ticket_id.clone();
        self.items.insert(ticket.clone(), item);
        changes.items.insert(ticket.clone());
        self.place(&ticket, now, changes);
        true
    }

    fn key(&self, item: &WorkItem) -> QueueKey {
        QueueKey::of(item, self.sla.next_due(&item.ticket_id))
    }

    /// A waiting item goes to the best free agent, or waits in its queue.
    fn place(&mut self, ticket: &str, now: Millis, changes: &mut Changes) {
        let Some(item) = self.items.get(ticket) else { return };
        if item.state() != WorkState::Waiting {
            return;
        }
        let blocked = (item.channel, item.language.clone());
        let known_busy = item.declined_by.is_empty()
            && self.queues.get(&item.queue_id).is_some_and(|queue| queue.blocked.contains(&blocked));
        match if known_busy { None } else { self.best_agent(item) } {
            Some(agent) => self.give(ticket, &agent, now, changes),
            None => {
                if item.declined_by.is_empty()
                    && let Some(queue) = self.queues.get_mut(&item.queue_id)
                {
                    queue.blocked.insert(blocked);
                }
                self.file(ticket);
            }
        }
    }

    fn eligible(agent: &AgentState, item: &WorkItem) -> bool {
        agent.presence == Presence::Online
            && agent.has_room(item.channel)
            && agent.speaks(&item.language)
            && !item.declined_by.contains(&agent.spec.id)
    }

    /// The free agent the queue's strategy prefers for `item`.
    pub(crate) fn best_agent(&self, item: &WorkItem) -> Option<String> {
        let queue = self.queues.get(&item.queue_id)?;
        let channel = channel_index(item.channel)?;
        let language = match item.language.as_str() {
            "" => None,
            // Nobody speaks a language no agent lists.
            language => Some(self.language_bit(language)?),
        };
        let strategy = Strategy::try_from(queue.spec.strategy).unwrap_or(Strategy::RoundRobin);
        let mut best: Option<((i64, u64), usize)> = None;
        for &(index, score) in &queue.slots {
            let slot = &self.slots[index];
            if !slot.online || slot.active[channel] >= slot.capacity[channel] {
                continue;
            }
            if let Some(bit) = language
                && (slot.languages & bit == 0
                    || (bit == 1 << 63
                        && !self.agents.get(&self.slot_agents[index]).is_some_and(|a| a.speaks(&item.language))))
            {
                continue;
            }
            if !item.declined_by.is_empty() && item.declined_by.contains(&self.slot_agents[index]) {
                continue;
            }
            // Lowest key wins; ties go to whoever was given work longest ago.
            let rank = match strategy {
                Strategy::LeastLoaded => (f64::from(slot.utilization) * 1e9) as i64,
                Strategy::BestSkill => -i64::from(score),
                Strategy::RoundRobin | Strategy::Unspecified => 0,
            };
            let key = (rank, slot.last_assigned);
            if best.as_ref().is_none_or(|(best, _)| key < *best) {
                best = Some((key, index));
            }
        }
        best.map(|(_, index)| self.slot_agents[index].clone())
    }

    /// Offers live work, assigns the rest.
    fn give(&mut self, ticket: &str, agent_id: &str, now: Millis, changes: &mut Changes) {
        let Some(item) = self.items.get_mut(ticket) else { return };
        let Some(agent) = self.agents.get_mut(agent_id) else { return };
        self.assignments += 1;
        agent.last_assigned = self.assignments;
        agent.active.entry(item.channel).or_default().insert(ticket.to_owned());
        let slot = agent.slot;
        if let Some(slot) = self.slots.get_mut(slot)
            && let Some(channel) = channel_index(item.channel)
        {
            slot.active[channel] = slot.active[channel].saturating_add(1);
            slot.last_assigned = self.assignments;
            slot.utilization = agent.utilization() as f32;
        }
        if is_live(item.channel) {
            let timeout = self
                .queues
                .get(&item.queue_id)
                .map(|queue| i64::from(queue.spec.offer_timeout_seconds))
                .filter(|seconds| *seconds > 0)
                .unwrap_or(DEFAULT_OFFER_SECONDS);
            item.set_state(WorkState::Offered);
            item.offered_to = agent_id.to_owned();
            item.offer_expires_at = Some(timestamp(now + timeout * 1000));
            changes.notify(agent_id, NoticeKind::Offered, item);
        } else {
            Self::mark_assigned(item, agent_id, now);
            changes.notify(agent_id, NoticeKind::Assigned, item);
        }
        changes.items.insert(ticket.to_owned());
    }

    fn mark_assigned(item: &mut WorkItem, agent: &str, now: Millis) {
        if !item.assignee_id.is_empty() && item.assignee_id != agent {
            item.reassignments += 1;
        }
        item.set_state(WorkState::Assigned);
        item.assignee_id = agent.to_owned();
        item.offered_to.clear();
        item.offer_expires_at = None;
        item.assigned_at = Some(timestamp(now));
    }

    /// Takes the item out of its queue and off its agent; it keeps its fields.
    fn detach(&mut self, ticket: &str) {
        self.unfile(ticket);
        let Some(item) = self.items.get(ticket) else { return };
        let holders = [item.assignee_id.clone(), item.offered_to.clone()];
        let channel = item.channel;
        for holder in holders {
            if let Some(agent) = self.agents.get_mut(&holder)
                && let Some(tickets) = agent.active.get_mut(&channel)
                && tickets.remove(ticket)
            {
                self.sync_slot(&holder);
            }
        }
    }

    /// Re-sorts a waiting item after its priority or SLA due time changed.
    pub(crate) fn reorder(&mut self, ticket: &str, update: impl FnOnce(&mut Self)) {
        let was_filed = self.unfile(ticket);
        update(self);
        if was_filed {
            self.file(ticket);
        }
    }

    /// Files a waiting item in its queue under its current key.
    fn file(&mut self, ticket: &str) {
        let Some(item) = self.items.get(ticket) else { return };
        if item.state() != WorkState::Waiting {
            return;
        }
        let key = self.key(item);
        let queue = item.queue_id.clone();
        if let Some(state) = self.queues.get_mut(&queue) {
            state.waiting.insert(key.clone());
            self.filed.insert(ticket.to_owned(), (queue, key));
        }
    }

    /// Takes an item out of the queue it is filed in; whether it was filed.
    fn unfile(&mut self, ticket: &str) -> bool {
        let Some((queue, key)) = self.filed.remove(ticket) else { return false };
        if let Some(state) = self.queues.get_mut(&queue) {
            state.waiting.remove(&key);
        }
        true
    }

    /// Gives a freed or newly online agent the most urgent work they can take.
    pub(crate) fn pull_for(&mut self, agent_id: &str, now: Millis, changes: &mut Changes) {
        let Some(agent) = self.agents.get(agent_id) else { return };
        if agent.presence != Presence::Online {
            return;
        }
        for queue in &agent.queues {
            if let Some(queue) = self.queues.get_mut(queue) {
                queue.blocked.clear();
            }
        }
        loop {
            let Some(agent) = self.agents.get(agent_id) else { return };
            let mut best: Option<QueueKey> = None;
            for queue in agent.queues.iter().filter_map(|id| self.queues.get(id)) {
                let fits = queue.waiting.iter().take(PULL_SCAN_LIMIT).find(|key| {
                    best.as_ref().is_none_or(|best| *key < best)
                        && self
                            .items
                            .get(&key.ticket)
                            .is_some_and(|item| item.state() == WorkState::Waiting && Self::eligible(agent, item))
                });
                if let Some(key) = fits {
                    best = Some(key.clone());
                }
            }
            let Some(key) = best else { return };
            self.detach(&key.ticket);
            self.give(&key.ticket, agent_id, now, changes);
        }
    }

    fn offered(&self, ticket: &str, agent: &str) -> Result<(), &'static str> {
        let item = self.items.get(ticket).ok_or("no open work for this ticket")?;
        if item.state() != WorkState::Offered || item.offered_to != agent {
            return Err("the ticket is not offered to this agent");
        }
        Ok(())
    }

    pub(crate) fn accept(
        &mut self,
        ticket: &str,
        agent: &str,
        now: Millis,
        changes: &mut Changes,
    ) -> Result<(), &'static str> {
        self.offered(ticket, agent)?;
        let Some(item) = self.items.get_mut(ticket) else { return Ok(()) };
        Self::mark_assigned(item, agent, now);
        changes.notify(agent, NoticeKind::Assigned, item);
        changes.items.insert(ticket.to_owned());
        Ok(())
    }

    /// A declined or lapsed offer goes to the next agent; the declining agent is not asked again.
    pub(crate) fn decline(
        &mut self,
        ticket: &str,
        agent: &str,
        now: Millis,
        changes: &mut Changes,
    ) -> Result<(), &'static str> {
        self.offered(ticket, agent)?;
        self.detach(ticket);
        if let Some(item) = self.items.get_mut(ticket) {
            item.declined_by.push(agent.to_owned());
            item.offered_to.clear();
            item.offer_expires_at = None;
            item.set_state(WorkState::Waiting);
            changes.notify(agent, NoticeKind::Withdrawn, item);
        }
        changes.items.insert(ticket.to_owned());
        self.place(ticket, now, changes);
        self.pull_for(agent, now, changes);
        Ok(())
    }

    /// Offers whose time ran out.
    pub(crate) fn expired_offers(&self, now: Millis) -> Vec<(String, String)> {
        self.items
            .values()
            .filter(|item| {
                item.state() == WorkState::Offered
                    && item.offer_expires_at.as_ref().is_some_and(|at| crate::time::millis(at) <= now)
            })
            .map(|item| (item.ticket_id.clone(), item.offered_to.clone()))
            .collect()
    }

    /// Assigns to a named agent, bypassing queue order and capacity (a supervisor's decision).
    pub(crate) fn assign(&mut self, ticket: &str, agent: &str, now: Millis, changes: &mut Changes) {
        let previous = self
            .items
            .get(ticket)
            .map(|item| holder(item).to_owned())
            .filter(|previous| !previous.is_empty() && previous != agent);
        self.detach(ticket);
        let Some(item) = self.items.get_mut(ticket) else { return };
        if let Some(previous) = &previous {
            changes.notify(previous, NoticeKind::Withdrawn, item);
        }
        Self::mark_assigned(item, agent, now);
        changes.notify(agent, NoticeKind::Assigned, item);
        let channel = item.channel;
        if let Some(state) = self.agents.get_mut(agent) {
            self.assignments += 1;
            state.last_assigned = self.assignments;
            state.active.entry(channel).or_default().insert(ticket.to_owned());
            self.sync_slot(agent);
        }
        changes.items.insert(ticket.to_owned());
        if let Some(previous) = previous {
            self.pull_for(&previous, now, changes);
        }
    }

    /// Back into its queue (or another), counted as a reassignment when it had an agent.
    pub(crate) fn requeue(&mut self, ticket: &str, queue: Option<&str>, now: Millis, changes: &mut Changes) {
        let Some(item) = self.items.get(ticket) else { return };
        let holder = holder(item).to_owned();
        self.detach(ticket);
        let Some(item) = self.items.get_mut(ticket) else { return };
        if !holder.is_empty() {
            changes.notify(&holder, NoticeKind::Withdrawn, item);
            item.reassignments += 1;
        }
        if let Some(queue) = queue {
            item.queue_id = queue.to_owned();
            item.queued_at = Some(timestamp(now));
        }
        item.assignee_id.clear();
        item.offered_to.clear();
        item.offer_expires_at = None;
        item.set_state(if item.queue_id.is_empty() { WorkState::Unrouted } else { WorkState::Waiting });
        changes.items.insert(ticket.to_owned());
        self.place(ticket, now, changes);
        if !holder.is_empty() {
            self.pull_for(&holder, now, changes);
        }
    }

    /// Solved or closed: frees the agent and feeds the queue's handle time.
    pub(crate) fn complete(&mut self, ticket: &str, now: Millis, changes: &mut Changes) {
        let Some(item) = self.items.get(ticket) else { return };
        let assignee = holder(item).to_owned();
        let handled = item.assigned_at.as_ref().map(|at| (now - crate::time::millis(at)) as f64 / 1000.0);
        let queue = item.queue_id.clone();
        self.detach(ticket);
        if let (Some(seconds), Some(queue)) = (handled, self.queues.get_mut(&queue)) {
            let seconds = seconds.max(1.0);
            queue.handle_seconds = Some(match queue.handle_seconds {
                Some(average) => average + HANDLE_TIME_WEIGHT * (seconds - average),
                None => seconds,
            });
        }
        if let Some(item) = self.items.get_mut(ticket) {
            item.set_state(WorkState::Done);
            item.offered_to.clear();
        }
        changes.items.insert(ticket.to_owned());
        if !assignee.is_empty() {
            self.pull_for(&assignee, now, changes);
        }
    }

    /// Presence change. Offline hands live work back; online pulls work.
    pub(crate) fn set_presence(&mut self, agent_id: &str, presence: Presence, now: Millis, changes: &mut Changes) {
        let Some(agent) = self.agents.get_mut(agent_id) else { return };
        agent.presence = presence;
        agent.last_active = now;
        let live: Vec<String> = agent
            .active
            .iter()
            .filter(|(channel, _)| is_live(**channel))
            .flat_map(|(_, tickets)| tickets.iter().cloned())
            .collect();
        self.sync_slot(agent_id);
        changes.agents.insert(agent_id.to_owned());
        match presence {
            Presence::Online => self.pull_for(agent_id, now, changes),
            Presence::Offline => {
                for ticket in live {
                    self.requeue(&ticket, None, now, changes);
                }
            }
            Presence::Away | Presence::Unspecified => {}
        }
    }

    /// Counts as activity; brings an automatically-away agent back online.
    pub(crate) fn touch(&mut self, agent_id: &str, now: Millis, changes: &mut Changes) {
        let Some(agent) = self.agents.get_mut(agent_id) else { return };
        agent.last_active = now;
        if agent.presence == Presence::Away {
            self.set_presence(agent_id, Presence::Online, now, changes);
        }
    }

    /// Online agents idle since before `cutoff`.
    pub(crate) fn idle_agents(&self, cutoff: Millis) -> Vec<String> {
        self.agents
            .values()
            .filter(|agent| agent.presence == Presence::Online && agent.last_active < cutoff)
            .map(|agent| agent.spec.id.clone())
            .collect()
    }

    /// Waiting items past their queue's overflow time, with the queue they move to.
    pub(crate) fn overflowing(&self, now: Millis) -> Vec<(String, String)> {
        let mut moves = Vec::new();
        for queue in self.queues.values() {
            let spec = &queue.spec;
            if spec.overflow_queue_id.is_empty() || spec.overflow_after_seconds <= 0 {
                continue;
            }
            let cutoff = now - i64::from(spec.overflow_after_seconds) * 1000;
            for key in &queue.waiting {
                let queued = self
                    .items
                    .get(&key.ticket)
                    .filter(|item| item.state() == WorkState::Waiting)
                    .and_then(|item| item.queued_at.as_ref())
                    .map(crate::time::millis);
                if queued.is_some_and(|queued| queued <= cutoff) {
                    moves.push((key.ticket.clone(), spec.overflow_queue_id.clone()));
                }
            }
        }
        moves
    }

    /// Position (1 = next) among the waiting items of its queue, and that queue's wait estimate.
    pub(crate) fn position(&self, ticket: &str) -> Option<(usize, f64)> {
        let item = self.items.get(ticket)?;
        if item.state() != WorkState::Waiting {
            return Some((0, 0.0));
        }
        let (queue, key) = self.filed.get(ticket)?;
        let queue = self.queues.get(queue)?;
        let ahead = queue.waiting.range(..key.clone()).count();
        Some((ahead + 1, self.expected_wait(queue, ahead + 1)))
    }

    /// The agents who meet the queue's requirements.
    fn queue_agents<'a>(&'a self, queue: &'a QueueState) -> impl Iterator<Item = &'a AgentState> + 'a {
        queue.slots.iter().filter_map(|(slot, _)| self.agents.get(&self.slot_agents[*slot]))
    }

    /// Seconds until the `position`-th waiting ticket is taken: each free or freeing slot of the
    /// queue's online agents serves one ticket per average handle time.
    fn expected_wait(&self, queue: &QueueState, position: usize) -> f64 {
        let handle = queue.handle_seconds.unwrap_or_else(|| default_handle_seconds(&queue.spec));
        let channels: Vec<i32> =
            if queue.spec.channels.is_empty() { (0..CHANNELS as i32).collect() } else { queue.spec.channels.clone() };
        let (mut slots, mut free) = (0usize, 0usize);
        for agent in self.queue_agents(queue) {
            if agent.presence != Presence::Online {
                continue;
            }
            for channel in &channels {
                slots += agent.capacity(*channel);
                free += agent.capacity(*channel).saturating_sub(agent.active(*channel));
            }
        }
        if slots == 0 {
            // Nobody is online: at least a full handle time per ticket ahead, from whoever comes.
            return handle * position as f64;
        }
        // Free slots take the first tickets at once; each slot then serves one per handle time.
        let beyond_free = position.saturating_sub(free);
        handle * (beyond_free as f64 / slots as f64).ceil()
    }

    pub(crate) fn queue_stats(&self, queue_id: &str) -> Option<helpdesk_proto::routing::v1::QueueStats> {
        let queue = self.queues.get(queue_id)?;
        let online: Vec<&AgentState> =
            self.queue_agents(queue).filter(|agent| agent.presence == Presence::Online).collect();
        let available =
            online.iter().filter(|agent| agent.spec.capacities.iter().any(|c| agent.has_room(c.channel))).count();
        let oldest = queue.waiting.iter().map(|key| key.enqueued).min().map(timestamp);
        Some(helpdesk_proto::routing::v1::QueueStats {
            queue_id: queue_id.to_owned(),
            waiting: queue.waiting.len() as i32,
            agents_online: online.len() as i32,
            agents_available: available as i32,
            average_handle_seconds: queue.handle_seconds.unwrap_or_else(|| default_handle_seconds(&queue.spec)),
            expected_wait_seconds: self.expected_wait(queue, queue.waiting.len() + 1),
            oldest_waiting_since: oldest,
        })
    }

    /// Drops a done item from memory once its changes are recorded.
    pub(crate) fn forget_done(&mut self, ticket: &str) {
        if self.items.get(ticket).is_some_and(|item| item.state() == WorkState::Done) {
            self.unfile(ticket);
            self.items.remove(ticket);
            self.sla.remove(ticket);
            self.versions.remove(ticket);
        }
    }

    /// Re-inserts a stored item at start-up, restoring agent load and queue order.
    pub(crate) fn restore_item(&mut self, item: WorkItem, version: i64) {
        let ticket = item.ticket_id.clone();
        let holder = holder(&item).to_owned();
        if let Some(agent) = self.agents.get_mut(&holder)
            && (item.state() == WorkState::Assigned || item.state() == WorkState::Offered)
        {
            agent.active.entry(item.channel).or_default().insert(ticket.clone());
            self.sync_slot(&holder);
        }
        self.versions.insert(ticket.clone(), version);
        self.items.insert(ticket.clone(), item);
        self.file(&ticket);
    }
}

/// The agent holding the item: the one it is offered to, or its assignee.
pub(crate) fn holder(item: &WorkItem) -> &str {
    if item.offered_to.is_empty() { &item.assignee_id } else { &item.offered_to }
}

fn channel_index(channel: i32) -> Option<usize> {
    usize::try_from(channel).ok().filter(|channel| *channel < CHANNELS)
}

/// The agent's levels in the queue's skills, added up: what best-skill routing maximizes.
fn skill_score(queue: &Queue, agent: &Agent) -> i32 {
    queue
        .required_skills
        .iter()
        .filter_map(|required| agent.skills.iter().find(|skill| skill.name.eq_ignore_ascii_case(&required.name)))
        .map(|skill| skill.level)
        .sum()
}

/// Before any ticket completes: a typical handle time for the queue's channels.
fn default_handle_seconds(queue: &Queue) -> f64 {
    let live = !queue.channels.is_empty() && queue.channels.iter().all(|channel| is_live(*channel));
    if live { 300.0 } else { 3600.0 }
}

/// Priority one step up, or `at_least` if higher.
pub(crate) fn raised(current: Priority, at_least: Priority) -> Priority {
    current.max(at_least).clamp(Priority::Low, Priority::Urgent)
}

#[cfg(test)]
mod tests {
    use helpdesk_proto::routing::v1::{ChannelCapacity, Skill};

    use super::*;

    fn agent(id: &str, languages: &[&str], chat: i32, email: i32, skills: &[(&str, i32)]) -> Agent {
        Agent {
            id: id.into(),
            name: id.into(),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            capacities: vec![
                ChannelCapacity { channel: Channel::Chat as i32, capacity: chat },
                ChannelCapacity { channel: Channel::Email as i32, capacity: email },
            ],
            skills: skills.iter().map(|(name, level)| Skill { name: (*name).into(), level: *level }).collect(),
            ..Agent::default()
        }
    }

    fn queue(id: &str, strategy: Strategy, skills: &[(&str, i32)]) -> Queue {
        Queue {
            id: id.into(),
            name: id.into(),
            strategy: strategy as i32,
            required_skills: skills.iter().map(|(name, level)| Skill { name: (*name).into(), level: *level }).collect(),
            ..Queue::default()
        }
    }

    fn item(ticket: &str, channel: Channel, language: &str, priority: Priority) -> WorkItem {
        WorkItem {
            ticket_id: ticket.into(),
            channel: channel as i32,
            language: language.into(),
            priority: priority as i32,
            ..WorkItem::default()
        }
    }

    fn tenant(agents: Vec<Agent>, queues: Vec<Queue>) -> Tenant {
        let mut tenant = Tenant::default();
        let mut changes = Changes::default();
        for queue in queues {
            tenant.upsert_queue(queue, 0, &mut changes);
        }
        for agent in agents {
            let id = agent.id.clone();
            tenant.upsert_agent(agent, 0, &mut changes);
            tenant.set_presence(&id, Presence::Online, 0, &mut changes);
        }
        tenant
    }

    #[test]
    fn capacity_language_and_skills_are_respected() {
        let mut tenant = tenant(
            vec![agent("ko-1", &["ko"], 0, 2, &[("billing", 5)]), agent("en-1", &["en"], 0, 1, &[("billing", 2)])],
            vec![queue("billing", Strategy::RoundRobin, &[("billing", 3)])],
        );
        let mut changes = Changes::default();
        for n in 0..4 {
            tenant.enqueue(item(&format!("t{n}"), Channel::Email, "ko", Priority::Normal), n, &mut changes);
        }
        let assigned: Vec<_> = (0..4).map(|n| tenant.items[&format!("t{n}")].assignee_id.clone()).collect();
        assert_eq!(assigned, ["ko-1", "ko-1", "", ""], "the English agent lacks the skill level and language");
        assert_eq!(tenant.position("t3").map(|(position, _)| position), Some(2));
        // Both of the Korean agent's slots are busy, and each frees up after a handle time
        // (default 1 h for email): the second in line waits one.
        assert_eq!(tenant.position("t3").map(|(_, seconds)| seconds), Some(3600.0));
        assert_eq!(tenant.queue_stats("billing").map(|stats| stats.waiting), Some(2));
    }

    #[test]
    fn urgent_work_is_taken_first_when_an_agent_frees_up() {
        let mut tenant = tenant(vec![agent("a", &["en"], 0, 1, &[])], vec![queue("q", Strategy::RoundRobin, &[])]);
        let mut changes = Changes::default();
        tenant.enqueue(item("first", Channel::Email, "en", Priority::Normal), 1, &mut changes);
        tenant.enqueue(item("normal", Channel::Email, "en", Priority::Normal), 2, &mut changes);
        tenant.enqueue(item("urgent", Channel::Email, "en", Priority::Urgent), 3, &mut changes);
        tenant.complete("first", 10_000, &mut changes);
        assert_eq!(tenant.items["urgent"].assignee_id, "a");
        assert_eq!(tenant.items["normal"].state(), WorkState::Waiting);
    }

    #[test]
    fn strategies_choose_differently() {
        let agents =
            || vec![agent("novice", &["en"], 0, 5, &[("tech", 2)]), agent("expert", &["en"], 0, 5, &[("tech", 9)])];
        let mut best = tenant(agents(), vec![queue("q", Strategy::BestSkill, &[("tech", 1)])]);
        let mut changes = Changes::default();
        for n in 0..3 {
            best.enqueue(item(&format!("t{n}"), Channel::Email, "en", Priority::Normal), n, &mut changes);
        }
        assert!((0..3).all(|n| best.items[&format!("t{n}")].assignee_id == "expert"));

        let mut round = tenant(agents(), vec![queue("q", Strategy::RoundRobin, &[("tech", 1)])]);
        for n in 0..4 {
            round.enqueue(item(&format!("t{n}"), Channel::Email, "en", Priority::Normal), n, &mut changes);
        }
        let experts = (0..4).filter(|n| round.items[&format!("t{n}")].assignee_id == "expert").count();
        assert_eq!(experts, 2, "round robin alternates");
    }

    #[test]
    fn a_waiting_ticket_whose_due_time_moved_is_taken_once_and_leaves_the_queue() {
        let mut tenant = tenant(vec![agent("a", &["en"], 0, 1, &[])], vec![queue("q", Strategy::RoundRobin, &[])]);
        let policy = helpdesk_proto::routing::v1::SlaPolicy {
            id: "p".into(),
            first_response_minutes: 10,
            resolution_minutes: 100,
            ..Default::default()
        };
        tenant.sla.config.policies.insert("p".into(), policy);
        let mut changes = Changes::default();
        for n in 0..2 {
            let work = item(&format!("t{n}"), Channel::Email, "en", Priority::Normal);
            tenant.sla.start(&work, n);
            tenant.enqueue(work, n, &mut changes);
        }
        // t1 waits; its first response breaches, which moves its due time to the resolution target.
        assert_eq!(tenant.sla.fire("t1", 11 * 60_000).len(), 1);
        tenant.complete("t0", 12 * 60_000, &mut changes);
        assert_eq!(tenant.items["t1"].assignee_id, "a");
        let stats = tenant.queue_stats("q").expect("queue");
        assert_eq!((stats.waiting, tenant.agents["a"].active(Channel::Email as i32)), (0, 1));
    }

    #[test]
    fn declined_offers_go_to_the_next_agent_and_offline_hands_chats_back() {
        let mut tenant = tenant(
            vec![agent("a", &["en"], 1, 0, &[]), agent("b", &["en"], 1, 0, &[])],
            vec![queue("q", Strategy::RoundRobin, &[])],
        );
        let mut changes = Changes::default();
        tenant.enqueue(item("chat", Channel::Chat, "en", Priority::Normal), 1, &mut changes);
        let first = tenant.items["chat"].offered_to.clone();
        tenant.decline("chat", &first, 2, &mut changes).expect("offered");
        let second = tenant.items["chat"].offered_to.clone();
        assert!(!second.is_empty() && second != first);
        tenant.accept("chat", &second, 3, &mut changes).expect("offered");
        assert_eq!(tenant.items["chat"].state(), WorkState::Assigned);
        tenant.set_presence(&second, Presence::Offline, 4, &mut changes);
        // The first agent declined it, so it waits for someone else.
        assert_eq!(tenant.items["chat"].state(), WorkState::Waiting);
        assert_eq!(tenant.items["chat"].reassignments, 1);
    }
}
