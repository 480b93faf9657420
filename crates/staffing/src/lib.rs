//! How many agents a live channel (chat, phone) needs in an interval to answer a share of contacts
//! within a target time — "80 % of chats within 20 s" — from forecast contacts and average handle
//! time, by the Erlang C model (random arrivals, exponential handle times, callers wait in queue).
//! This is the plan for a holiday peak: forecast each half hour, ask for the agents.

/// Above this many agents an interval is surely mis-specified.
const MAX_AGENTS: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StaffingError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    #[error("more than {MAX_AGENTS} agents would be needed")]
    Unreachable,
}

/// Forecast and target for one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Contacts expected in the interval.
    pub contacts: f64,
    /// Length of the interval, in seconds (1800 for half-hour planning).
    pub interval_seconds: f64,
    /// Average handle time, in seconds.
    pub handle_seconds: f64,
    /// Share of contacts to answer within `answer_within_seconds`, between 0 and 1.
    pub service_level: f64,
    pub answer_within_seconds: f64,
    /// Highest share of time agents may be busy (0.85 is common), or 1.0 for no limit.
    pub max_occupancy: f64,
}

/// The plan for one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Staffing {
    pub agents: u32,
    /// Offered load in Erlangs: contacts × handle time ÷ interval.
    pub traffic: f64,
    /// Share of contacts answered within the target time with `agents`.
    pub service_level: f64,
    pub occupancy: f64,
    /// Probability that a contact waits at all.
    pub probability_of_waiting: f64,
}

/// Erlang B with `traffic` Erlangs offered to `agents`, by the stable recursion
/// B(n) = A·B(n−1) / (n + A·B(n−1)).
fn blocking(traffic: f64, agents: u32) -> f64 {
    (1..=agents).fold(1.0, |blocking, n| next_blocking(traffic, blocking, n))
}

fn next_blocking(traffic: f64, previous: f64, agents: u32) -> f64 {
    traffic * previous / (f64::from(agents) + traffic * previous)
}

/// Erlang C from Erlang B for the same traffic and agents.
fn waiting_from_blocking(traffic: f64, agents: u32, blocking: f64) -> f64 {
    if f64::from(agents) <= traffic {
        return 1.0;
    }
    let n = f64::from(agents);
    n * blocking / (n - traffic * (1.0 - blocking))
}

/// Erlang C: the probability that a contact waits, with `traffic` Erlangs offered to `agents`.
/// Computed through the Erlang B recursion, which stays stable for thousands of agents.
pub fn probability_of_waiting(traffic: f64, agents: u32) -> f64 {
    waiting_from_blocking(traffic, agents, blocking(traffic, agents))
}

fn level_from_waiting(traffic: f64, agents: u32, waiting: f64, handle_seconds: f64, within_seconds: f64) -> f64 {
    if f64::from(agents) <= traffic {
        return 0.0;
    }
    1.0 - waiting * (-(f64::from(agents) - traffic) * within_seconds / handle_seconds).exp()
}

/// Share of contacts answered within `within_seconds`.
pub fn service_level(traffic: f64, agents: u32, handle_seconds: f64, within_seconds: f64) -> f64 {
    let waiting = probability_of_waiting(traffic, agents);
    level_from_waiting(traffic, agents, waiting, handle_seconds, within_seconds)
}

/// The fewest agents that meet the service level and the occupancy limit. The work is linear in
/// the answer: the Erlang B recursion is carried from one candidate to the next.
pub fn agents_needed(demand: &Demand) -> Result<Staffing, StaffingError> {
    validate(demand)?;
    let traffic = demand.contacts * demand.handle_seconds / demand.interval_seconds;
    if demand.contacts == 0.0 {
        return Ok(Staffing { agents: 0, traffic, service_level: 1.0, occupancy: 0.0, probability_of_waiting: 0.0 });
    }
    let at_least = least_agents(demand);
    if at_least > f64::from(MAX_AGENTS) {
        return Err(StaffingError::Unreachable);
    }
    let mut agents = at_least as u32;
    let mut erlang_b = blocking(traffic, agents);
    while agents <= MAX_AGENTS {
        let waiting = waiting_from_blocking(traffic, agents, erlang_b);
        let level = level_from_waiting(traffic, agents, waiting, demand.handle_seconds, demand.answer_within_seconds);
        if level >= demand.service_level {
            return Ok(Staffing {
                agents,
                traffic,
                service_level: level,
                occupancy: traffic / f64::from(agents),
                probability_of_waiting: waiting,
            });
        }
        agents += 1;
        erlang_b = next_blocking(traffic, erlang_b, agents);
    }
    Err(StaffingError::Unreachable)
}

/// The fewest agents the occupancy limit and a stable queue allow: where the search starts, and
/// a lower bound of the work [`agents_needed`] does for `demand`.
pub fn least_agents(demand: &Demand) -> f64 {
    let traffic = demand.contacts * demand.handle_seconds / demand.interval_seconds;
    (traffic / demand.max_occupancy).ceil().max(traffic.floor() + 1.0).max(1.0)
}

fn validate(demand: &Demand) -> Result<(), StaffingError> {
    let invalid = |field, reason| Err(StaffingError::Invalid { field, reason });
    if !(demand.contacts.is_finite() && demand.contacts >= 0.0) {
        return invalid("contacts", "must be zero or more");
    }
    if !(demand.interval_seconds.is_finite() && demand.interval_seconds > 0.0) {
        return invalid("interval_seconds", "must be more than zero");
    }
    if !(demand.handle_seconds.is_finite() && demand.handle_seconds > 0.0) {
        return invalid("handle_seconds", "must be more than zero");
    }
    if !(demand.service_level > 0.0 && demand.service_level < 1.0) {
        return invalid("service_level", "must be between 0 and 1, exclusive");
    }
    if !(demand.answer_within_seconds.is_finite() && demand.answer_within_seconds >= 0.0) {
        return invalid("answer_within_seconds", "must be zero or more");
    }
    if !(demand.max_occupancy > 0.0 && demand.max_occupancy <= 1.0) {
        return invalid("max_occupancy", "must be more than 0 and at most 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(contacts: f64) -> Demand {
        Demand {
            contacts,
            interval_seconds: 1800.0,
            handle_seconds: 180.0,
            service_level: 0.8,
            answer_within_seconds: 20.0,
            max_occupancy: 1.0,
        }
    }

    #[test]
    fn erlang_c_matches_the_closed_form_for_a_small_case() {
        // Two Erlangs on three agents: (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A))
        // = (4/3 · 3) / (1 + 2 + 2 + 4) = 4/9.
        assert!((probability_of_waiting(2.0, 3) - 4.0 / 9.0).abs() < 1e-12);
        assert_eq!(probability_of_waiting(3.0, 3), 1.0, "no queue is stable without spare capacity");
    }

    #[test]
    fn the_answer_is_the_fewest_agents_that_meet_the_target() {
        let demand = chat(100.0); // 10 Erlangs
        let plan = agents_needed(&demand).expect("reachable");
        assert!(plan.service_level >= 0.8);
        let one_fewer = service_level(plan.traffic, plan.agents - 1, 180.0, 20.0);
        assert!(one_fewer < 0.8, "{} agents already met it", plan.agents - 1);
        assert!((plan.traffic - 10.0).abs() < 1e-9);
    }

    #[test]
    fn an_occupancy_limit_adds_agents() {
        let busy = agents_needed(&Demand { max_occupancy: 0.7, ..chat(1000.0) }).expect("reachable");
        let unlimited = agents_needed(&chat(1000.0)).expect("reachable");
        assert!(busy.agents > unlimited.agents);
        assert!(busy.occupancy <= 0.7);
    }

    #[test]
    fn a_ten_fold_peak_needs_fewer_than_ten_times_the_agents() {
        // Pooling: larger queues run at higher occupancy for the same service level.
        let normal = agents_needed(&chat(100.0)).expect("reachable").agents;
        let peak = agents_needed(&chat(1000.0)).expect("reachable").agents;
        assert!(peak > normal && peak < 10 * normal, "normal {normal}, peak {peak}");
    }

    #[test]
    fn no_contacts_need_no_agents_and_bad_input_names_the_field() {
        assert_eq!(agents_needed(&chat(0.0)).expect("valid").agents, 0);
        let error = agents_needed(&Demand { service_level: 1.5, ..chat(10.0) }).expect_err("invalid");
        assert_eq!(
            error,
            StaffingError::Invalid { field: "service_level", reason: "must be between 0 and 1, exclusive" }
        );
        assert!(agents_needed(&Demand { handle_seconds: -1.0, ..chat(10.0) }).is_err());
    }
}
