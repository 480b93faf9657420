//! Checks on everything routing is configured with, each naming the field at fault.

use business_hours::{Calendar, CalendarError, DAY_MINUTES, Shift};
use chrono::NaiveDate;
use helpdesk_proto::{
    common::v1::{Channel, Priority},
    routing::v1::{Agent, BusinessCalendar, EscalationRule, Queue, SlaPolicy, Strategy, Trigger},
};
use helpdesk_runtime::error::{ErrorKind, ServiceError};

use crate::engine::Tenant;

const MAX_ID: usize = 128;
const MAX_LIST: usize = 100;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ServiceError {
    ServiceError::invalid_field(field, reason)
}

/// A reference to something the tenant does not have, naming the field that made it.
pub(crate) fn unknown(field: &str, what: &str) -> ServiceError {
    ServiceError::new(ErrorKind::NotFound, format!("{what} not found")).with_field(field)
}

pub(crate) fn id(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() || value.len() > MAX_ID {
        return Err(invalid(field, format!("must be 1 to {MAX_ID} characters")));
    }
    if !value.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')) {
        return Err(invalid(field, "may hold letters, digits and - _ . : @ only"));
    }
    Ok(())
}

fn channel(field: &str, value: i32) -> Result<(), ServiceError> {
    match Channel::try_from(value) {
        Ok(Channel::Unspecified) | Err(_) => Err(invalid(field, "must be a known channel")),
        Ok(_) => Ok(()),
    }
}

fn language(field: &str, value: &str) -> Result<(), ServiceError> {
    let ok = (2..=8).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphabetic() || c == '-');
    if ok { Ok(()) } else { Err(invalid(field, "must be a BCP 47 language such as ko or en")) }
}

fn short_list(field: &str, len: usize) -> Result<(), ServiceError> {
    if len > MAX_LIST { Err(invalid(field, format!("at most {MAX_LIST} entries"))) } else { Ok(()) }
}

pub(crate) fn agent(agent: &mut Agent) -> Result<(), ServiceError> {
    id("agent.id", &agent.id)?;
    if agent.name.trim().is_empty() {
        agent.name = agent.id.clone();
    }
    short_list("agent.skills", agent.skills.len())?;
    for (index, skill) in agent.skills.iter().enumerate() {
        if skill.name.trim().is_empty() {
            return Err(invalid(format!("agent.skills[{index}].name"), "must not be empty"));
        }
        if !(1..=10).contains(&skill.level) {
            return Err(invalid(format!("agent.skills[{index}].level"), "must be 1 to 10"));
        }
    }
    for (index, spoken) in agent.languages.iter_mut().enumerate() {
        language(&format!("agent.languages[{index}]"), spoken)?;
        *spoken = spoken.to_ascii_lowercase();
    }
    if agent.capacities.is_empty() {
        return Err(invalid("agent.capacities", "list at least one channel with its capacity"));
    }
    for (index, capacity) in agent.capacities.iter().enumerate() {
        channel(&format!("agent.capacities[{index}].channel"), capacity.channel)?;
        if !(1..=1000).contains(&capacity.capacity) {
            return Err(invalid(format!("agent.capacities[{index}].capacity"), "must be 1 to 1000"));
        }
        if agent.capacities[..index].iter().any(|earlier| earlier.channel == capacity.channel) {
            return Err(invalid(format!("agent.capacities[{index}].channel"), "listed twice"));
        }
    }
    if agent.supervisor_id == agent.id {
        return Err(invalid("agent.supervisor_id", "an agent cannot supervise themselves"));
    }
    agent.presence = 0;
    agent.last_active_at = None;
    agent.load.clear();
    Ok(())
}

pub(crate) fn queue(queue: &mut Queue, tenant: &Tenant) -> Result<(), ServiceError> {
    id("queue.id", &queue.id)?;
    if queue.name.trim().is_empty() {
        queue.name = queue.id.clone();
    }
    queue.description = queue.description.trim().to_owned();
    if queue.description.chars().count() > 500 {
        return Err(invalid("queue.description", "at most 500 characters"));
    }
    for (index, value) in queue.channels.iter().enumerate() {
        channel(&format!("queue.channels[{index}]"), *value)?;
    }
    if !queue.language.is_empty() {
        language("queue.language", &queue.language)?;
        queue.language = queue.language.to_ascii_lowercase();
    }
    for (index, skill) in queue.required_skills.iter().enumerate() {
        if skill.name.trim().is_empty() {
            return Err(invalid(format!("queue.required_skills[{index}].name"), "must not be empty"));
        }
        if !(1..=10).contains(&skill.level) {
            return Err(invalid(format!("queue.required_skills[{index}].level"), "must be 1 to 10"));
        }
    }
    if Strategy::try_from(queue.strategy).is_err() {
        return Err(invalid("queue.strategy", "must be round_robin, least_loaded or best_skill"));
    }
    if queue.offer_timeout_seconds < 0 || queue.offer_timeout_seconds > 3600 {
        return Err(invalid("queue.offer_timeout_seconds", "must be 0 (default 30) to 3600"));
    }
    if queue.overflow_after_seconds < 0 {
        return Err(invalid("queue.overflow_after_seconds", "must not be negative"));
    }
    if !queue.overflow_queue_id.is_empty() {
        if queue.overflow_after_seconds == 0 {
            return Err(invalid("queue.overflow_after_seconds", "set how long a ticket waits before it overflows"));
        }
        // Follow the chain from the overflow queue: it must end without coming back.
        let mut next = queue.overflow_queue_id.clone();
        let mut seen = vec![queue.id.clone()];
        loop {
            if seen.contains(&next) {
                return Err(invalid("queue.overflow_queue_id", format!("overflow would loop back through `{next}`")));
            }
            let Some(state) = tenant.queues.get(&next) else {
                if seen.len() == 1 {
                    return Err(invalid("queue.overflow_queue_id", "unknown queue"));
                }
                break;
            };
            seen.push(next.clone());
            if state.spec.overflow_queue_id.is_empty() {
                break;
            }
            next = state.spec.overflow_queue_id.clone();
        }
    }
    Ok(())
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
fn wall_time(field: &str, value: &str) -> Result<u16, ServiceError> {
    let parsed = value.split_once(':').and_then(|(hours, minutes)| {
        let (hours, minutes) = (hours.parse::<u32>().ok()?, minutes.parse::<u32>().ok()?);
        let total = hours.checked_mul(60)?.checked_add(minutes)?;
        (minutes < 60 && total <= u32::from(DAY_MINUTES)).then_some(total as u16)
    });
    parsed.ok_or_else(|| invalid(field, "must be a wall time HH:MM between 00:00 and 24:00"))
}

pub(crate) fn calendar(calendar: &BusinessCalendar) -> Result<Calendar, ServiceError> {
    id("calendar.id", &calendar.id)?;
    let mut week: [Vec<Shift>; 7] = Default::default();
    let mut origin: [Vec<usize>; 7] = Default::default();
    for (index, shift) in calendar.shifts.iter().enumerate() {
        if !(1..=7).contains(&shift.weekday) {
            return Err(invalid(format!("calendar.shifts[{index}].weekday"), "must be 1 (Monday) to 7 (Sunday)"));
        }
        let start = wall_time(&format!("calendar.shifts[{index}].start"), &shift.start)?;
        let end = wall_time(&format!("calendar.shifts[{index}].end"), &shift.end)?;
        let day = (shift.weekday - 1) as usize;
        week[day].push(Shift::new(start, end));
        origin[day].push(index);
    }
    let mut holidays = Vec::with_capacity(calendar.holidays.len());
    for (index, holiday) in calendar.holidays.iter().enumerate() {
        let date = NaiveDate::parse_from_str(&holiday.date, "%Y-%m-%d")
            .map_err(|_| invalid(format!("calendar.holidays[{index}].date"), "must be a date such as 2026-09-25"))?;
        holidays.push(date);
    }
    Calendar::new(&calendar.time_zone, week, holidays).map_err(|error| match error {
        CalendarError::UnknownTimeZone(_) => {
            invalid("calendar.time_zone", "must be an IANA time zone such as Asia/Seoul")
        }
        CalendarError::InvalidShift { weekday, index } => invalid(
            format!("calendar.shifts[{}]", origin[weekday.num_days_from_monday() as usize][index]),
            "must start before it ends",
        ),
        CalendarError::OverlappingShifts { weekday, first, second } => {
            let day = &origin[weekday.num_days_from_monday() as usize];
            invalid(
                format!("calendar.shifts[{}]", day[second].max(day[first])),
                format!("overlaps shift {}", day[first].min(day[second])),
            )
        }
        CalendarError::NeverOpen => invalid("calendar.shifts", "list at least one shift"),
    })
}

pub(crate) fn policy(policy: &SlaPolicy, tenant: &Tenant) -> Result<(), ServiceError> {
    id("policy.id", &policy.id)?;
    for (index, priority) in policy.priorities.iter().enumerate() {
        if Priority::try_from(*priority).is_err() || *priority == 0 {
            return Err(invalid(format!("policy.priorities[{index}]"), "must be a known priority"));
        }
    }
    for (index, value) in policy.channels.iter().enumerate() {
        channel(&format!("policy.channels[{index}]"), *value)?;
    }
    if !policy.calendar_id.is_empty() && !tenant.sla.config.calendars.contains_key(&policy.calendar_id) {
        return Err(invalid("policy.calendar_id", "unknown calendar"));
    }
    for (field, minutes) in [
        ("policy.first_response_minutes", policy.first_response_minutes),
        ("policy.next_response_minutes", policy.next_response_minutes),
        ("policy.resolution_minutes", policy.resolution_minutes),
    ] {
        if minutes < 0 {
            return Err(invalid(field, "must not be negative (0 for no target)"));
        }
        if minutes > 525_600 {
            return Err(invalid(field, "must be at most a year of business minutes"));
        }
    }
    if policy.first_response_minutes == 0 && policy.next_response_minutes == 0 && policy.resolution_minutes == 0 {
        return Err(invalid("policy.first_response_minutes", "set at least one target"));
    }
    if !(0..100).contains(&policy.warning_percent) {
        return Err(invalid("policy.warning_percent", "must be 1 to 99 (0 for 75)"));
    }
    Ok(())
}

pub(crate) fn rule(rule: &EscalationRule, tenant: &Tenant) -> Result<(), ServiceError> {
    id("rule.id", &rule.id)?;
    match Trigger::try_from(rule.trigger) {
        Ok(Trigger::Unspecified) | Err(_) => return Err(invalid("rule.trigger", "must be a known trigger")),
        Ok(Trigger::ReassignmentLimit) if rule.reassignment_limit < 1 => {
            return Err(invalid("rule.reassignment_limit", "must be at least 1"));
        }
        Ok(_) => {}
    }
    if Priority::try_from(rule.raise_priority_to).is_err() {
        return Err(invalid("rule.raise_priority_to", "must be a known priority"));
    }
    if !rule.move_to_queue_id.is_empty() && !tenant.queues.contains_key(&rule.move_to_queue_id) {
        return Err(invalid("rule.move_to_queue_id", "unknown queue"));
    }
    let acts = rule.raise_priority_to > 0
        || !rule.move_to_queue_id.is_empty()
        || !rule.move_to_tier.is_empty()
        || !rule.move_to_team.is_empty()
        || rule.assign_to_supervisor
        || rule.notify;
    if !acts {
        return Err(invalid("rule", "give at least one action"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use helpdesk_proto::routing::v1::{Holiday, WeeklyShift};

    use super::*;

    fn shift(weekday: i32, start: &str, end: &str) -> WeeklyShift {
        WeeklyShift { weekday, start: start.into(), end: end.into() }
    }

    fn field_of(error: ServiceError) -> String {
        error.field_violations[0].field.clone()
    }

    #[test]
    fn calendars_name_the_field_at_fault() {
        let mut calendar = BusinessCalendar {
            id: "seoul".into(),
            time_zone: "Asia/Seoul".into(),
            shifts: vec![shift(1, "09:00", "12:00"), shift(1, "13:00", "18:00")],
            holidays: vec![Holiday { date: "2026-09-25".into(), name: "추석".into() }],
            ..BusinessCalendar::default()
        };
        assert!(super::calendar(&calendar).is_ok());
        calendar.shifts.push(shift(1, "11:00", "14:00"));
        assert_eq!(field_of(super::calendar(&calendar).expect_err("overlap")), "calendar.shifts[2]");
        calendar.shifts.pop();
        calendar.shifts.push(shift(2, "1093:00", "18:00"));
        assert_eq!(field_of(super::calendar(&calendar).expect_err("overflow")), "calendar.shifts[2].start");
        calendar.shifts.pop();
        calendar.shifts.push(shift(2, "9am", "18:00"));
        assert_eq!(field_of(super::calendar(&calendar).expect_err("format")), "calendar.shifts[2].start");
        calendar.shifts.pop();
        calendar.holidays.push(Holiday { date: "25/09/2026".into(), name: String::new() });
        assert_eq!(field_of(super::calendar(&calendar).expect_err("date")), "calendar.holidays[1].date");
        calendar.holidays.pop();
        calendar.time_zone = "Asia/Pyongyang_Nowhere".into();
        assert_eq!(field_of(super::calendar(&calendar).expect_err("zone")), "calendar.time_zone");
    }

    #[test]
    fn overflow_cycles_are_refused() {
        let mut tenant = Tenant::default();
        let mut changes = crate::engine::Changes::default();
        tenant.upsert_queue(
            Queue { id: "a".into(), overflow_queue_id: "b".into(), overflow_after_seconds: 60, ..Queue::default() },
            0,
            &mut changes,
        );
        tenant.upsert_queue(Queue { id: "b".into(), ..Queue::default() }, 0, &mut changes);
        let mut closing =
            Queue { id: "b".into(), overflow_queue_id: "a".into(), overflow_after_seconds: 60, ..Queue::default() };
        assert_eq!(field_of(queue(&mut closing, &tenant).expect_err("cycle")), "queue.overflow_queue_id");
    }
}
