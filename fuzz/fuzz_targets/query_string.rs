//! The REST query strings (ticket lists, reports, knowledge base): no input panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    helpdesk_gateway::fuzzing::parse_queries(raw);
});
