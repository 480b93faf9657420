//! Timestamps are stored as microseconds since the Unix epoch in both databases.

use pbjson_types::Timestamp;

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn micros_to_timestamp(micros: i64) -> Timestamp {
    Timestamp { seconds: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32 }
}

pub fn optional_timestamp(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(micros_to_timestamp)
}

pub fn timestamp_to_micros(timestamp: &Timestamp) -> i64 {
    timestamp.seconds.saturating_mul(1_000_000).saturating_add(i64::from(timestamp.nanos) / 1_000)
}
