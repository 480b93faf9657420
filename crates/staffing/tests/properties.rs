//! Properties of the staffing model that any correct Erlang C implementation has.

use helpdesk_staffing::{Demand, agents_needed, probability_of_waiting, service_level};
use proptest::prelude::*;

proptest! {
    #[test]
    fn more_agents_never_lower_the_service_level(traffic in 0.1f64..200.0, extra in 1u32..50) {
        let base = traffic.floor() as u32 + 1;
        let fewer = service_level(traffic, base, 180.0, 20.0);
        let more = service_level(traffic, base + extra, 180.0, 20.0);
        prop_assert!(more >= fewer - 1e-12);
        prop_assert!((0.0..=1.0).contains(&probability_of_waiting(traffic, base)));
    }

    #[test]
    fn more_contacts_never_need_fewer_agents(contacts in 0.0f64..5000.0, more in 0.0f64..5000.0) {
        let demand = |contacts| Demand {
            contacts,
            interval_seconds: 1800.0,
            handle_seconds: 240.0,
            service_level: 0.8,
            answer_within_seconds: 30.0,
            max_occupancy: 0.9,
        };
        let low = agents_needed(&demand(contacts)).expect("reachable").agents;
        let high = agents_needed(&demand(contacts + more)).expect("reachable").agents;
        prop_assert!(high >= low);
    }
}
