//! Business-hours arithmetic checked against a minute-by-minute reference, in zones with daylight
//! saving (America/New_York, Europe/Berlin) and without (Asia/Seoul), around DST changes.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use helpdesk_business_hours::{Calendar, DAY_MINUTES, Shift};
use proptest::prelude::*;

/// Minute-by-minute: how many open minutes are in `[from, to)`.
fn reference_between(calendar: &Calendar, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let mut minute = from;
    let mut open = 0;
    while minute < to {
        if calendar.is_open(minute) {
            open += 1;
        }
        minute += Duration::minutes(1);
    }
    open
}

/// Minute-by-minute: the end of the `minutes`th open minute after `from`.
fn reference_add(calendar: &Calendar, from: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
    let mut minute = from;
    let mut counted = 0;
    while counted < minutes {
        if calendar.is_open(minute) {
            counted += 1;
        }
        minute += Duration::minutes(1);
    }
    // The target is reached at the end of the last open minute.
    minute
}

fn shifts() -> impl Strategy<Value = Vec<Shift>> {
    // Up to three disjoint shifts on minute boundaries that include the DST hours (01:00–04:00).
    prop::collection::btree_set(0u16..=48, 0..=6).prop_map(|bounds| {
        let bounds: Vec<u16> = bounds.into_iter().map(|half_hour| (half_hour * 30).min(DAY_MINUTES)).collect();
        bounds
            .chunks(2)
            .filter(|pair| pair.len() == 2 && pair[0] < pair[1])
            .map(|pair| Shift::new(pair[0], pair[1]))
            .collect()
    })
}

fn calendar() -> impl Strategy<Value = Calendar> {
    let zones = prop_oneof![Just("America/New_York"), Just("Europe/Berlin"), Just("Asia/Seoul"), Just("UTC")];
    let week = prop::array::uniform7(shifts());
    let holidays = prop::collection::vec(0i64..20, 0..3);
    (zones, week, holidays).prop_filter_map("a calendar with business hours", |(zone, week, holidays)| {
        let base = NaiveDate::from_ymd_opt(2026, 3, 1)?;
        let holidays: Vec<NaiveDate> =
            holidays.into_iter().filter_map(|day| base.checked_add_signed(Duration::days(day))).collect();
        Calendar::new(zone, week, holidays).ok()
    })
}

/// Instants around the 2026 changes: US spring-forward 8 March, EU 29 March, US fall-back
/// 1 November, EU 25 October, with a spread of a few days either side.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let anchors = [
        Utc.with_ymd_and_hms(2026, 3, 6, 0, 0, 0),
        Utc.with_ymd_and_hms(2026, 3, 27, 0, 0, 0),
        Utc.with_ymd_and_hms(2026, 10, 23, 0, 0, 0),
        Utc.with_ymd_and_hms(2026, 10, 30, 0, 0, 0),
    ];
    (0usize..anchors.len(), 0i64..(5 * 24 * 60))
        .prop_map(move |(anchor, minutes)| anchors[anchor].single().unwrap_or_default() + Duration::minutes(minutes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn business_time_between_matches_the_minute_by_minute_reference(
        calendar in calendar(),
        from in instant(),
        span in 0i64..(4 * 24 * 60),
    ) {
        let to = from + Duration::minutes(span);
        prop_assert_eq!(calendar.between(from, to).num_minutes(), reference_between(&calendar, from, to));
    }

    #[test]
    fn adding_business_minutes_matches_the_minute_by_minute_reference(
        calendar in calendar(),
        from in instant(),
        minutes in 1i64..(8 * 60),
    ) {
        let due = calendar.add(from, minutes).expect("the calendar has business hours");
        // Compare on the reference's minute grid: both count whole wall-clock minutes from `from`.
        prop_assert_eq!(due, reference_add(&calendar, from, minutes));
        prop_assert_eq!(calendar.between(from, due).num_minutes(), minutes);
    }
}
