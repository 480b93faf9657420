//! Routing keeps instants as milliseconds since the Unix epoch: queue order, timers and offers
//! need no finer grain, and integers compare and persist cheaply.

use chrono::{DateTime, Utc};
use pbjson_types::Timestamp;

pub(crate) type Millis = i64;

pub(crate) fn now() -> Millis {
    Utc::now().timestamp_millis()
}

pub(crate) fn timestamp(millis: Millis) -> Timestamp {
    helpdesk_runtime::time::micros_to_timestamp(millis.saturating_mul(1_000))
}

pub(crate) fn millis(timestamp: &Timestamp) -> Millis {
    helpdesk_runtime::time::timestamp_to_micros(timestamp) / 1_000
}

pub(crate) fn datetime(millis: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::UNIX_EPOCH)
}
