//! Business-hours arithmetic for SLA targets: "4 business hours after this instant" and "how many
//! business minutes lie between these instants", in a calendar of weekly shifts in local wall
//! time, a time zone, and holidays given as dates (Korean holidays follow the lunar calendar, so
//! they are listed per year rather than computed).
//!
//! Shifts are local wall-clock intervals. Across a daylight-saving change a shift lasts as long as
//! the wall clock says it is open: 01:30–03:30 on a spring-forward night is one real hour, and a
//! shift spanning a repeated hour counts that hour twice.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};

use chrono_tz::Tz;

/// Minutes in a day; a shift may end at 1440 (midnight at the end of the day).
pub const DAY_MINUTES: u16 = 1440;

/// How far ahead an SLA target may reach before the calendar is judged to have no business time.
const MAX_DAYS: i64 = 3 * 366;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone `{0}`")]
    UnknownTimeZone(String),
    #[error("shift {index} on {weekday} must start before it ends, within 00:00–24:00")]
    InvalidShift { weekday: Weekday, index: usize },
    #[error("shifts {first} and {second} on {weekday} overlap")]
    OverlappingShifts { weekday: Weekday, first: usize, second: usize },
    #[error("the calendar has no business hours")]
    NeverOpen,
}

/// One opening interval of a weekday, in minutes after local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub start: u16,
    pub end: u16,
}

impl Shift {
    pub fn new(start: u16, end: u16) -> Self {
        Self { start, end }
    }
}

#[derive(Debug, Clone)]
pub struct Calendar {
    zone: Tz,
    /// Monday first, as `Weekday::num_days_from_monday`.
    week: [Vec<Shift>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Validates the shifts (each inside the day, none overlapping) and sorts them.
    pub fn new(
        zone: &str,
        week: [Vec<Shift>; 7],
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, CalendarError> {
        let zone: Tz = zone.parse().map_err(|_| CalendarError::UnknownTimeZone(zone.to_owned()))?;
        let mut week = week;
        for (day, shifts) in week.iter_mut().enumerate() {
            let weekday = weekday(day);
            for (index, shift) in shifts.iter().enumerate() {
                if shift.start >= shift.end || shift.end > DAY_MINUTES {
                    return Err(CalendarError::InvalidShift { weekday, index });
                }
            }
            let mut order: Vec<usize> = (0..shifts.len()).collect();
            order.sort_by_key(|&index| shifts[index].start);
            for pair in order.windows(2) {
                if shifts[pair[0]].end > shifts[pair[1]].start {
                    return Err(CalendarError::OverlappingShifts { weekday, first: pair[0], second: pair[1] });
                }
            }
            shifts.sort_by_key(|shift| shift.start);
        }
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::NeverOpen);
        }
        Ok(Self { zone, week, holidays: holidays.into_iter().collect() })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Whether the calendar is open at `instant`.
    pub fn is_open(&self, instant: DateTime<Utc>) -> bool {
        let local = instant.with_timezone(&self.zone).naive_local();
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let minute = minute_of_day(&local);
        self.week[day_index(local.date())].iter().any(|shift| shift.start <= minute && minute < shift.end)
    }

    /// The instant at which `minutes` business minutes have passed after `start`.
    pub fn add(&self, start: DateTime<Utc>, minutes: i64) -> Result<DateTime<Utc>, CalendarError> {
        let mut remaining = Duration::minutes(minutes.max(0));
        if remaining.is_zero() {
            return Ok(start);
        }
        for (open, close) in self.intervals_from(start) {
            let from = open.max(start);
            if close <= from {
                continue;
            }
            let available = close - from;
            if available >= remaining {
                return Ok(from + remaining);
            }
            remaining -= available;
        }
        Err(CalendarError::NeverOpen)
    }

    /// Business time between `from` and `to` (zero when `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        for (open, close) in self.intervals_from(from) {
            if open >= to {
                break;
            }
            let (start, end) = (open.max(from), close.min(to));
            if end > start {
                total += end - start;
            }
        }
        total
    }

    /// Opening intervals in UTC, in order, from the local day before `start` onwards, for at most
    /// [`MAX_DAYS`] days.
    fn intervals_from(&self, start: DateTime<Utc>) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first_day = start.with_timezone(&self.zone).date_naive() - Duration::days(1);
        (0..MAX_DAYS)
            .filter_map(move |offset| first_day.checked_add_signed(Duration::days(offset)))
            .filter(move |date| !self.holidays.contains(date) && !self.week[day_index(*date)].is_empty())
            .flat_map(move |date| self.day_intervals(date))
    }

    /// The instants of `date` (local) whose wall-clock time falls in a shift. The day is cut where
    /// the UTC offset changes; within each piece, wall-clock and UTC differ by a constant.
    fn day_intervals(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let (Some(day_start), Some(day_end)) =
            (self.first_instant(date), date.succ_opt().and_then(|next| self.first_instant(next)))
        else {
            return Vec::new();
        };
        let mut pieces = vec![(day_start, day_end)];
        let last_minute = day_end - Duration::minutes(1);
        if self.offset(day_start) != self.offset(last_minute) {
            // First minute with the later offset (clock changes happen on whole minutes).
            let (mut before, mut after) = (day_start, last_minute);
            while after - before > Duration::minutes(1) {
                let middle = before + Duration::minutes((after - before).num_minutes() / 2);
                if self.offset(middle) == self.offset(day_start) { before = middle } else { after = middle }
            }
            pieces = vec![(day_start, after), (after, day_end)];
        }
        let midnight = date.and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc());
        let Some(midnight) = midnight else { return Vec::new() };
        let mut intervals = Vec::new();
        for (piece_start, piece_end) in pieces {
            let offset = self.offset(piece_start);
            for shift in &self.week[day_index(date)] {
                // Wall-clock minute m of `date` is the instant midnight + m - offset.
                let open = (midnight + Duration::minutes(i64::from(shift.start)) - offset).max(piece_start);
                let close = (midnight + Duration::minutes(i64::from(shift.end)) - offset).min(piece_end);
                if close > open {
                    intervals.push((open, close));
                }
            }
        }
        intervals.sort();
        intervals
    }

    /// The first instant whose local date is `date` (after a gap when midnight is skipped).
    fn first_instant(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        (0..=180).find_map(|step| match self.zone.from_local_datetime(&(midnight + Duration::minutes(step))) {
            LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Some(time.with_timezone(&Utc)),
            LocalResult::None => None,
        })
    }

    /// Local time minus UTC at `instant`.
    fn offset(&self, instant: DateTime<Utc>) -> Duration {
        use chrono::Offset;
        Duration::seconds(i64::from(self.zone.offset_from_utc_datetime(&instant.naive_utc()).fix().local_minus_utc()))
    }
}

fn weekday(index: usize) -> Weekday {
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun][index % 7]
}

fn day_index(date: NaiveDate) -> usize {
    date.weekday().num_days_from_monday() as usize
}

fn minute_of_day(local: &NaiveDateTime) -> u16 {
    use chrono::Timelike;
    (local.hour() * 60 + local.minute()) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(zone: &str) -> Calendar {
        let day = || vec![Shift::new(9 * 60, 12 * 60), Shift::new(13 * 60, 18 * 60)];
        Calendar::new(zone, [day(), day(), day(), day(), day(), vec![], vec![]], []).expect("valid calendar")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid time").with_timezone(&Utc)
    }

    #[test]
    fn four_business_hours_from_friday_afternoon_end_on_monday_morning_in_seoul() {
        let calendar = office("Asia/Seoul");
        // Friday 2026-11-20 16:00 KST = 07:00 UTC; 2 h left on Friday, 2 h on Monday from 09:00.
        let due = calendar.add(utc("2026-11-20T07:00:00Z"), 240).expect("due");
        assert_eq!(due, utc("2026-11-23T02:00:00Z")); // Monday 11:00 KST
    }

    #[test]
    fn holidays_are_skipped() {
        let chuseok = [NaiveDate::from_ymd_opt(2026, 9, 24), NaiveDate::from_ymd_opt(2026, 9, 25)];
        let day = || vec![Shift::new(9 * 60, 18 * 60)];
        let calendar = Calendar::new(
            "Asia/Seoul",
            [day(), day(), day(), day(), day(), vec![], vec![]],
            chuseok.into_iter().flatten(),
        )
        .expect("valid");
        // Wednesday 2026-09-23 17:00 KST + 2 h: 1 h on Wednesday, Thursday and Friday are
        // holidays, so 1 h on Monday.
        let due = calendar.add(utc("2026-09-23T08:00:00Z"), 120).expect("due");
        assert_eq!(due, utc("2026-09-28T01:00:00Z"));
    }

    #[test]
    fn invalid_calendars_are_refused_with_the_reason() {
        let overlapping =
            [vec![Shift::new(540, 720), Shift::new(700, 800)], vec![], vec![], vec![], vec![], vec![], vec![]];
        assert!(matches!(Calendar::new("UTC", overlapping, []), Err(CalendarError::OverlappingShifts { .. })));
        let backwards = [vec![Shift::new(720, 540)], vec![], vec![], vec![], vec![], vec![], vec![]];
        assert!(matches!(Calendar::new("UTC", backwards, []), Err(CalendarError::InvalidShift { .. })));
        let day = || vec![Shift::new(0, 60)];
        assert!(matches!(
            Calendar::new("Mars/Olympus", [day(), day(), day(), day(), day(), day(), day()], []),
            Err(CalendarError::UnknownTimeZone(_))
        ));
        assert_eq!(Calendar::new("UTC", Default::default(), []).err(), Some(CalendarError::NeverOpen));
    }
}
