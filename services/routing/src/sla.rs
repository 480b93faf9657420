//! SLA targets of each open ticket, measured in business minutes of the policy's calendar. The
//! clock pauses while the ticket waits on the customer: the business minutes left are kept and
//! the due time is computed afresh on resumption.

use crate::Map;

use business_hours::Calendar;
use helpdesk_proto::routing::v1::{BusinessCalendar, SlaKind, SlaPolicy, SlaTarget, TargetState, TicketSla, WorkItem};

use crate::time::{Millis, datetime, millis, timestamp};

const DEFAULT_WARNING_PERCENT: i64 = 75;

/// A tenant's calendars and policies.
#[derive(Default)]
pub(crate) struct SlaConfig {
    pub(crate) calendars: Map<String, (BusinessCalendar, Calendar)>,
    pub(crate) policies: Map<String, SlaPolicy>,
}

impl SlaConfig {
    /// The first policy, by position, whose conditions all match.
    fn policy_for(&self, item: &WorkItem) -> Option<&SlaPolicy> {
        self.policies
            .values()
            .filter(|policy| {
                (policy.priorities.is_empty() || policy.priorities.contains(&item.priority))
                    && (policy.channels.is_empty() || policy.channels.contains(&item.channel))
                    && (policy.customer_tiers.is_empty() || policy.customer_tiers.contains(&item.customer_tier))
                    && (policy.tags.is_empty() || policy.tags.iter().any(|tag| item.tags.contains(tag)))
                    && (policy.queues.is_empty() || policy.queues.contains(&item.queue_id))
            })
            .min_by_key(|policy| (policy.position, policy.id.clone()))
    }

    fn calendar(&self, policy: &SlaPolicy) -> Option<&Calendar> {
        self.calendars.get(&policy.calendar_id).map(|(_, calendar)| calendar)
    }
}

/// The targets of every open ticket of a tenant.
#[derive(Default)]
pub(crate) struct SlaBook {
    pub(crate) config: SlaConfig,
    pub(crate) tickets: Map<String, TicketSla>,
}

/// What a timer found when it fired.
pub(crate) struct Alert {
    pub(crate) target: SlaTarget,
    pub(crate) breached: bool,
}

impl SlaBook {
    /// The earliest due time of a running target, which orders the queue.
    pub(crate) fn next_due(&self, ticket: &str) -> Option<Millis> {
        self.running(ticket).filter_map(|target| target.due_at.as_ref().map(millis)).min()
    }

    /// When the ticket's timer must next fire: a warning not yet given, or a breach.
    pub(crate) fn next_fire(&self, ticket: &str) -> Option<Millis> {
        self.running(ticket)
            .filter_map(|target| if target.warned { target.due_at.as_ref() } else { target.warn_at.as_ref() })
            .map(millis)
            .min()
    }

    fn running(&self, ticket: &str) -> impl Iterator<Item = &SlaTarget> {
        self.tickets
            .get(ticket)
            .into_iter()
            .flat_map(|sla| sla.targets.iter())
            .filter(|target| target.state() == TargetState::Running)
    }

    pub(crate) fn remove(&mut self, ticket: &str) {
        self.tickets.remove(ticket);
    }

    /// Starts the first-response and resolution clocks of a new ticket.
    pub(crate) fn start(&mut self, item: &WorkItem, now: Millis) {
        let Some(policy) = self.config.policy_for(item).cloned() else { return };
        let mut sla =
            TicketSla { ticket_id: item.ticket_id.clone(), policy_id: policy.id.clone(), targets: Vec::new() };
        for (kind, minutes) in
            [(SlaKind::FirstResponse, policy.first_response_minutes), (SlaKind::Resolution, policy.resolution_minutes)]
        {
            if minutes > 0 {
                sla.targets.push(self.new_target(&policy, kind, i64::from(minutes), now));
            }
        }
        self.tickets.insert(item.ticket_id.clone(), sla);
    }

    fn new_target(&self, policy: &SlaPolicy, kind: SlaKind, minutes: i64, now: Millis) -> SlaTarget {
        let mut target = SlaTarget {
            kind: kind as i32,
            state: TargetState::Running as i32,
            target_minutes: minutes,
            remaining_minutes: minutes,
            started_at: Some(timestamp(now)),
            ..SlaTarget::default()
        };
        self.schedule(policy, &mut target, now);
        target
    }

    /// Sets the due and warning times from the business minutes left, counted from `now`.
    fn schedule(&self, policy: &SlaPolicy, target: &mut SlaTarget, now: Millis) {
        let calendar = self.config.calendar(policy);
        let percent =
            if policy.warning_percent > 0 { i64::from(policy.warning_percent) } else { DEFAULT_WARNING_PERCENT };
        let warn_left = target.target_minutes * (100 - percent) / 100;
        target.due_at = Some(timestamp(add(calendar, now, target.remaining_minutes)));
        target.warn_at = Some(timestamp(add(calendar, now, (target.remaining_minutes - warn_left).max(0))));
    }

    fn policy_of(&self, ticket: &str) -> Option<SlaPolicy> {
        let sla = self.tickets.get(ticket)?;
        self.config.policies.get(&sla.policy_id).cloned()
    }

    fn update(&mut self, ticket: &str, mut each: impl FnMut(&Self, &SlaPolicy, &mut SlaTarget)) {
        let Some(policy) = self.policy_of(ticket) else { return };
        let Some(mut sla) = self.tickets.remove(ticket) else { return };
        for target in &mut sla.targets {
            each(self, &policy, target);
        }
        self.tickets.insert(ticket.to_owned(), sla);
    }

    /// An agent answered publicly: first and next response are met.
    pub(crate) fn agent_replied(&mut self, ticket: &str, now: Millis) {
        self.update(ticket, |_, _, target| {
            let response = target.kind() == SlaKind::FirstResponse || target.kind() == SlaKind::NextResponse;
            let open = target.state() == TargetState::Running || target.state() == TargetState::Paused;
            if response && open {
                target.set_state(TargetState::Met);
                target.met_at = Some(timestamp(now));
            }
        });
    }

    /// The customer wrote after an agent's answer: the next-response clock starts.
    pub(crate) fn customer_replied(&mut self, ticket: &str, now: Millis) {
        let Some(policy) = self.policy_of(ticket) else { return };
        let Some(sla) = self.tickets.get(ticket) else { return };
        let answered =
            sla.targets.iter().any(|t| t.kind() == SlaKind::FirstResponse && t.state() != TargetState::Running);
        let waiting =
            sla.targets.iter().any(|t| t.kind() == SlaKind::NextResponse && t.state() == TargetState::Running);
        if policy.next_response_minutes <= 0 || !answered || waiting {
            return;
        }
        let target = self.new_target(&policy, SlaKind::NextResponse, i64::from(policy.next_response_minutes), now);
        if let Some(sla) = self.tickets.get_mut(ticket) {
            sla.targets.retain(|t| t.kind() != SlaKind::NextResponse || t.state() == TargetState::Breached);
            sla.targets.push(target);
        }
    }

    /// Waiting on the customer: running clocks stop with their business minutes left.
    pub(crate) fn pause(&mut self, ticket: &str, now: Millis) {
        self.update(ticket, |book, policy, target| {
            if target.state() == TargetState::Running {
                let due = target.due_at.as_ref().map_or(now, millis);
                target.remaining_minutes = between(book.config.calendar(policy), now, due);
                target.set_state(TargetState::Paused);
            }
        });
    }

    pub(crate) fn resume(&mut self, ticket: &str, now: Millis) {
        self.update(ticket, |book, policy, target| {
            if target.state() == TargetState::Paused {
                target.set_state(TargetState::Running);
                book.schedule(policy, target, now);
            }
        });
    }

    /// Solved: the resolution target is met and nothing runs any more.
    pub(crate) fn finish(&mut self, ticket: &str, now: Millis) {
        self.update(ticket, |_, _, target| {
            if target.state() == TargetState::Running || target.state() == TargetState::Paused {
                target.set_state(TargetState::Met);
                target.met_at = Some(timestamp(now));
            }
        });
    }

    /// Warnings and breaches due by `now`, each reported once.
    pub(crate) fn fire(&mut self, ticket: &str, now: Millis) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let Some(sla) = self.tickets.get_mut(ticket) else { return alerts };
        for target in &mut sla.targets {
            if target.state() != TargetState::Running {
                continue;
            }
            let due = target.due_at.as_ref().map_or(Millis::MAX, millis);
            let warn = target.warn_at.as_ref().map_or(Millis::MAX, millis);
            if due <= now {
                target.set_state(TargetState::Breached);
                target.breached_at = target.due_at;
                target.warned = true;
                alerts.push(Alert { target: *target, breached: true });
            } else if warn <= now && !target.warned {
                target.warned = true;
                alerts.push(Alert { target: *target, breached: false });
            }
        }
        alerts
    }
}

/// `minutes` business minutes after `start`; round the clock without a calendar.
fn add(calendar: Option<&Calendar>, start: Millis, minutes: i64) -> Millis {
    match calendar {
        Some(calendar) => {
            calendar.add(datetime(start), minutes).map(|instant| instant.timestamp_millis()).unwrap_or(Millis::MAX / 2)
        }
        None => start + minutes * 60_000,
    }
}

fn between(calendar: Option<&Calendar>, from: Millis, to: Millis) -> i64 {
    match calendar {
        Some(calendar) => calendar.between(datetime(from), datetime(to)).num_minutes(),
        None => ((to - from) / 60_000).max(0),
    }
}

#[cfg(test)]
mod tests {
    use business_hours::Shift;

    use super::*;

    /// Monday 2026-11-23 09:00 in Seoul (00:00 UTC).
    const MONDAY_0900_SEOUL: Millis = 1_795_392_000_000;

    fn book() -> SlaBook {
        let weekdays: [Vec<Shift>; 7] =
            std::array::from_fn(|day| if day < 5 { vec![Shift::new(540, 1080)] } else { vec![] });
        let calendar = Calendar::new("Asia/Seoul", weekdays, []).expect("valid");
        let mut book = SlaBook::default();
        book.config.calendars.insert("seoul".into(), (BusinessCalendar::default(), calendar));
        book.config.policies.insert(
            "p".into(),
            SlaPolicy {
                id: "p".into(),
                calendar_id: "seoul".into(),
                first_response_minutes: 240,
                next_response_minutes: 60,
                resolution_minutes: 1080,
                ..SlaPolicy::default()
            },
        );
        book
    }

    #[test]
    fn targets_count_business_hours_and_pause_while_waiting_on_the_customer() {
        let mut book = book();
        let item = WorkItem { ticket_id: "t".into(), ..WorkItem::default() };
        // Friday 16:00: four business hours end on Monday at 11:00.
        let friday_1600 = MONDAY_0900_SEOUL - 3 * 86_400_000 + 7 * 3_600_000;
        book.start(&item, friday_1600);
        let first = &book.tickets["t"].targets[0];
        assert_eq!(millis(first.due_at.as_ref().expect("due")), MONDAY_0900_SEOUL + 2 * 3_600_000);
        assert_eq!(millis(first.warn_at.as_ref().expect("warn")), MONDAY_0900_SEOUL + 3_600_000);
        // Paused at Friday 17:00 with three hours left, resumed Monday 10:00: due at 13:00.
        book.pause("t", friday_1600 + 3_600_000);
        book.resume("t", MONDAY_0900_SEOUL + 3_600_000);
        let first = &book.tickets["t"].targets[0];
        assert_eq!(millis(first.due_at.as_ref().expect("due")), MONDAY_0900_SEOUL + 4 * 3_600_000);
        assert_eq!(book.fire("t", MONDAY_0900_SEOUL + 3 * 3_600_000).len(), 1, "warning");
        assert!(book.fire("t", MONDAY_0900_SEOUL + 3 * 3_600_000).is_empty(), "once");
        let breach = book.fire("t", MONDAY_0900_SEOUL + 4 * 3_600_000);
        assert!(breach.len() == 1 && breach[0].breached);
    }

    #[test]
    fn next_response_starts_after_an_answer() {
        let mut book = book();
        let item = WorkItem { ticket_id: "t".into(), ..WorkItem::default() };
        book.start(&item, MONDAY_0900_SEOUL);
        book.customer_replied("t", MONDAY_0900_SEOUL + 60_000);
        assert_eq!(book.tickets["t"].targets.len(), 2, "no next response before the first answer");
        book.agent_replied("t", MONDAY_0900_SEOUL + 120_000);
        book.customer_replied("t", MONDAY_0900_SEOUL + 180_000);
        let next = book.tickets["t"].targets.iter().find(|t| t.kind() == SlaKind::NextResponse).expect("next");
        assert_eq!(millis(next.due_at.as_ref().expect("due")), MONDAY_0900_SEOUL + 180_000 + 3_600_000);
    }
}
