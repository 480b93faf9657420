//! The projections: one compact fact per ticket and per survey response, folded from events.
//! Each event is applied exactly once (the log guarantees it), in log order; events that arrive
//! before their ticket's creation fill in a fact that counts once the creation arrives.

use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{Event, event::Payload},
    ticketing::v1::{Status, Visibility},
};

use crate::{Map, Set};

/// Unix seconds of an optional timestamp.
fn seconds(timestamp: Option<&pbjson_types::Timestamp>) -> Option<i64> {
    timestamp.map(|timestamp| timestamp.seconds)
}

/// Names (agents, teams, tags, subject terms) stored once per tenant and referred to by number;
/// 0 is "none".
#[derive(Default)]
pub(crate) struct Names {
    ids: Map<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    pub(crate) fn id(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        self.names.push(name.into());
        let id = self.names.len() as u32;
        self.ids.insert(name.into(), id);
        id
    }

    pub(crate) fn find(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        id.checked_sub(1).and_then(|at| self.names.get(at as usize)).map_or("", |name| name)
    }
}

#[derive(Default, Clone)]
pub(crate) struct TicketFact {
    /// Unix seconds; 0 until the ticket's creation is seen.
    pub created: i64,
    pub first_response: Option<i64>,
    pub first_solved: Option<i64>,
    /// The latest solve, cleared when the ticket reopens.
    pub solved: Option<i64>,
    pub channel: i32,
    pub agent: u32,
    pub team: u32,
    pub tags: Box<[u32]>,
    /// Key words of the subject, for trends.
    pub terms: Box<[u32]>,
    pub reopens: u16,
    /// Public agent replies before the first solve: one means first-contact resolution.
    pub replies_before_solve: u16,
    pub has_sla: bool,
    pub sla_breached: bool,
    pub merged: bool,
}

#[derive(Clone)]
pub(crate) struct ResponseFact {
    /// Unix seconds when first answered.
    pub at: i64,
    pub kind: i32,
    pub score: i32,
    pub revision: i32,
    pub agent: u32,
    pub team: u32,
    pub channel: i32,
    pub tags: Box<[u32]>,
    /// The mean of the answers about the agent, when there were any.
    pub agent_rating: Option<f32>,
    pub follow_up: Option<u32>,
}

#[derive(Default)]
pub(crate) struct TenantFacts {
    pub tickets: Vec<TicketFact>,
    ticket_index: Map<Box<str>, u32>,
    pub responses: Vec<ResponseFact>,
    response_index: Map<Box<str>, u32>,
    /// Follow-ups by number, and those closed.
    pub follow_ups: Names,
    pub closed_follow_ups: Set<u32>,
    pub agents: Names,
    pub teams: Names,
    pub tags: Names,
    pub terms: Names,
}

impl TenantFacts {
    fn ticket(&mut self, id: &str) -> &mut TicketFact {
        let next = self.tickets.len() as u32;
        let at = *self.ticket_index.entry(id.into()).or_insert(next);
        if at == next {
            self.tickets.push(TicketFact::default());
        }
        &mut self.tickets[at as usize]
    }

    fn names(names: &mut Names, values: &[String]) -> Box<[u32]> {
        let mut ids: Vec<u32> =
            values.iter().map(|value| names.id(&value.to_lowercase())).filter(|id| *id != 0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into()
    }

    pub(crate) fn apply(&mut self, event: &Event) {
        let at = seconds(event.occurred_at.as_ref()).unwrap_or(0);
        let Some(payload) = &event.payload else { return };
        match payload {
            Payload::TicketCreated(created) => {
                let Some(ticket) = &created.ticket else { return };
                // A carrier of feedback's own message is no request: without a creation it never
                // counts.
                if ticket.tags.iter().any(|tag| tag == crate::CARRIER_TAG) {
                    return;
                }
                let tags = Self::names(&mut self.tags, &ticket.tags);
                let terms = subject_terms(&ticket.subject).into_iter().map(|term| self.terms.id(&term)).collect();
                let (agent, team) = (self.agents.id(&ticket.assignee_id), self.teams.id(&ticket.group));
                let fact = self.ticket(&ticket.id);
                fact.created = seconds(ticket.created_at.as_ref()).unwrap_or(at);
                fact.channel = ticket.channel;
                fact.tags = tags;
                fact.terms = terms;
                if agent != 0 {
                    fact.agent = agent;
                }
                if team != 0 {
                    fact.team = team;
                }
            }
            Payload::TicketUpdated(updated) => {
                let Some(ticket) = &updated.ticket else { return };
                let tags = Self::names(&mut self.tags, &ticket.tags);
                let (agent, team) = (self.agents.id(&ticket.assignee_id), self.teams.id(&ticket.group));
                let fact = self.ticket(&ticket.id);
                fact.tags = tags;
                fact.channel = ticket.channel;
                fact.agent = agent;
                fact.team = team;
            }
            Payload::TicketStatusChanged(change) => {
                let fact = self.ticket(&change.ticket_id);
                let (from, to) = (change.from, change.to);
                let done = |status: i32| status == Status::Solved as i32 || status == Status::Closed as i32;
                if to == Status::Solved as i32 || (to == Status::Closed as i32 && fact.solved.is_none()) {
                    fact.first_solved.get_or_insert(at);
                    fact.solved = Some(at);
                } else if done(from) && !done(to) {
                    fact.reopens = fact.reopens.saturating_add(1);
                    fact.solved = None;
                }
            }
            Payload::MessageAdded(added) => {
                let Some(message) = &added.message else { return };
                // Survey links and announcements are the platform's messages, not a response.
                let by_agent = message.author_kind == AuthorKind::Agent as i32
                    && message.visibility != Visibility::Internal as i32
                    && !message.author_id.starts_with("service:");
                if !by_agent {
                    return;
                }
                let sent = seconds(message.created_at.as_ref()).unwrap_or(at);
                let fact = self.ticket(&added.ticket_id);
                if fact.first_response.is_none_or(|first| sent < first) {
                    fact.first_response = Some(sent);
                }
                if fact.first_solved.is_none() {
                    fact.replies_before_solve = fact.replies_before_solve.saturating_add(1);
                }
            }
            Payload::TicketAssigned(assigned) => {
                let (agent, team) = (self.agents.id(&assigned.assignee_id), self.teams.id(&assigned.group));
                let fact = self.ticket(&assigned.ticket_id);
                fact.agent = agent;
                if team != 0 {
                    fact.team = team;
                }
            }
            Payload::TicketMerged(merged) => self.ticket(&merged.source_ticket_id).merged = true,
            Payload::TicketRouted(routed) => {
                let Some(item) = &routed.item else { return };
                let agent = self.agents.id(&item.assignee_id);
                let fact = self.ticket(&item.ticket_id);
                if agent != 0 {
                    fact.agent = agent;
                }
                fact.has_sla |= item.sla_due_at.is_some();
            }
            Payload::SlaAlert(alert) => {
                let fact = self.ticket(&alert.ticket_id);
                fact.has_sla = true;
                fact.sla_breached |= alert.breached;
            }
            Payload::SurveyAnswered(answered) => {
                let Some(response) = &answered.response else { return };
                let fact = ResponseFact {
                    at: seconds(response.submitted_at.as_ref()).unwrap_or(at),
                    kind: response.kind,
                    score: response.score,
                    revision: response.revision,
                    agent: self.agents.id(&response.agent_id),
                    team: self.teams.id(&response.team),
                    channel: response.channel,
                    tags: Self::names(&mut self.tags, &response.tags),
                    agent_rating: response.agent_rating.map(|rating| rating as f32),
                    follow_up: (!response.follow_up_id.is_empty()).then(|| self.follow_ups.id(&response.follow_up_id)),
                };
                let next = self.responses.len() as u32;
                let at = *self.response_index.entry(response.id.as_str().into()).or_insert(next);
                if at == next {
                    self.responses.push(fact);
                } else if self.responses[at as usize].revision <= fact.revision {
                    self.responses[at as usize] = fact;
                }
            }
            Payload::FollowUpOpened(opened) => {
                if let Some(follow_up) = &opened.follow_up {
                    self.follow_ups.id(&follow_up.id);
                }
            }
            Payload::FollowUpClosed(closed) => {
                if let Some(follow_up) = &closed.follow_up {
                    let id = self.follow_ups.id(&follow_up.id);
                    self.closed_follow_ups.insert(id);
                }
            }
            Payload::CustomerFlagged(_) | Payload::TicketEscalated(_) | Payload::CredentialRevoked(_) => {}
        }
    }
}

/// Words that say nothing about a ticket's topic, in English and Korean.
const NOISE: &[&str] = &[
    "a",
    "an",
    "the",
    "i",
    "me",
    "my",
    "you",
    "your",
    "we",
    "our",
    "it",
    "is",
    "are",
    "was",
    "be",
    "am",
    "to",
    "of",
    "in",
    "on",
    "for",
    "and",
    "or",
    "with",
    "at",
    "by",
    "from",
    "this",
    "that",
    "so",
    "if",
    "please",
    "hi",
    "hello",
    "thanks",
    "thank",
    "can",
    "do",
    "does",
    "not",
    "no",
    "how",
    "what",
    "when",
    "why",
    "re",
    "fw",
    "fwd",
    "help",
    "issue",
    "question",
    "problem",
    "문의",
    "요청",
    "질문",
    "안녕하세요",
    "아직",
    "계속",
    "너무",
    "정말",
    "지금",
    "오늘",
];

/// Korean particles, longest first: 배송이 and 배송은 are both about 배송.
const PARTICLES: &[&str] = &[
    "으로", "에서", "에게", "께서", "까지", "부터", "이랑", "하고", "이", "가", "을", "를", "은", "는", "에", "의",
    "도", "로", "와", "과", "만",
];

/// Endings of Korean predicates (됩니다, 안 와요, 했나요): what happened, not what it is about.
const PREDICATE_ENDINGS: &[&str] = &["요", "다", "까", "죠", "네", "함"];

/// A Korean word without its particle, or nothing for a predicate or a lone syllable.
fn korean_stem(word: &str) -> Option<&str> {
    if PREDICATE_ENDINGS.iter().any(|ending| word.ends_with(ending)) {
        return None;
    }
    let stem =
        PARTICLES.iter().find_map(|particle| word.strip_suffix(particle)).filter(|stem| stem.chars().count() >= 2);
    Some(stem.unwrap_or(word)).filter(|stem| stem.chars().count() >= 2)
}

/// The key words of a subject, as people would name a topic: English words and Korean words
/// without their particles, without noise, numbers, predicates or repeats.
pub(crate) fn subject_terms(subject: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in subject.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        let word = word.to_lowercase();
        let term = if helpdesk_text::has_hangul(&word) {
            korean_stem(&word)
        } else {
            Some(word.as_str()).filter(|word| word.chars().count() >= 3 && !word.chars().all(|c| c.is_ascii_digit()))
        };
        if let Some(term) = term
            && !NOISE.contains(&term)
            && !terms.iter().any(|seen| seen == term)
        {
            terms.push(term.to_owned());
        }
    }
    terms.truncate(12);
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::{
        events::v1::{MessageAdded, TicketCreated, TicketStatusChanged},
        ticketing::v1::{Message, Ticket},
    };

    fn event(at: i64, payload: Payload) -> Event {
        Event {
            occurred_at: Some(pbjson_types::Timestamp { seconds: at, nanos: 0 }),
            payload: Some(payload),
            ..Event::default()
        }
    }

    fn status(from: Status, to: Status) -> Payload {
        Payload::TicketStatusChanged(TicketStatusChanged { ticket_id: "t1".into(), from: from as i32, to: to as i32 })
    }

    fn reply(author: &str, at: i64) -> Payload {
        Payload::MessageAdded(MessageAdded {
            ticket_id: "t1".into(),
            message: Some(Message {
                author_kind: AuthorKind::Agent as i32,
                author_id: author.into(),
                visibility: Visibility::Public as i32,
                created_at: Some(pbjson_types::Timestamp { seconds: at, nanos: 0 }),
                ..Message::default()
            }),
        })
    }

    #[test]
    fn a_ticket_fact_follows_its_lifecycle() {
        let mut facts = TenantFacts::default();
        // Routing's view may arrive first; the fact waits for the creation.
        facts.apply(&event(5, reply("agent-1", 160)));
        assert_eq!(facts.tickets[0].created, 0);
        let ticket = Ticket {
            id: "t1".into(),
            subject: "Refund for order 1234".into(),
            tags: vec!["Billing".into()],
            created_at: Some(pbjson_types::Timestamp { seconds: 100, nanos: 0 }),
            ..Ticket::default()
        };
        facts.apply(&event(100, Payload::TicketCreated(TicketCreated { ticket: Some(ticket) })));
        facts.apply(&event(170, reply("service:feedback", 170)));
        facts.apply(&event(200, status(Status::Open, Status::Solved)));
        facts.apply(&event(300, status(Status::Solved, Status::Open)));
        facts.apply(&event(400, status(Status::Open, Status::Solved)));
        let fact = &facts.tickets[0];
        assert_eq!(
            (fact.created, fact.first_response, fact.first_solved, fact.solved),
            (100, Some(160), Some(200), Some(400))
        );
        assert_eq!((fact.reopens, fact.replies_before_solve), (1, 1));
        assert_eq!(facts.tags.name(fact.tags[0]), "billing");
        let terms: Vec<&str> = fact.terms.iter().map(|term| facts.terms.name(*term)).collect();
        assert_eq!(terms, ["refund", "order"]);
    }

    #[test]
    fn korean_subjects_give_words_without_particles_or_predicates() {
        assert_eq!(subject_terms("환불 지연 문의"), ["환불", "지연"]);
        assert_eq!(subject_terms("배송이 아직 안 왔어요"), ["배송"]);
        assert_eq!(subject_terms("로그인이 안 됩니다"), ["로그인"]);
        assert_eq!(subject_terms("카드 이중 결제를 취소해 주세요"), ["카드", "이중", "결제", "취소해"]);
    }
}
