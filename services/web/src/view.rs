//! What the templates show: tickets, customers and messages as words and times in the agent's
//! language and time zone.

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    ticketing::v1::{self as proto, FlagKind, Status},
};

use crate::i18n::Text;

pub(crate) fn status(text: &Text, status: i32) -> &'static str {
    let korean = text.lang == "ko";
    match Status::try_from(status).unwrap_or(Status::Unspecified) {
        Status::New => {
            if korean {
                "신규"
            } else {
                "New"
            }
        }
        Status::Open => {
            if korean {
                "진행 중"
            } else {
                "Open"
            }
        }
        Status::Pending => {
            if korean {
                "고객 대기"
            } else {
                "Pending"
            }
        }
        Status::OnHold => {
            if korean {
                "보류"
            } else {
                "On hold"
            }
        }
        Status::Solved => {
            if korean {
                "해결"
            } else {
                "Solved"
            }
        }
        Status::Closed => {
            if korean {
                "종료"
            } else {
                "Closed"
            }
        }
        Status::Unspecified => "—",
    }
}

/// The status as the API spells it, for forms and CSS classes.
pub(crate) fn status_word(status: i32) -> &'static str {
    match Status::try_from(status).unwrap_or(Status::Unspecified) {
        Status::New => "new",
        Status::Open => "open",
        Status::Pending => "pending",
        Status::OnHold => "on_hold",
        Status::Solved => "solved",
        Status::Closed => "closed",
        Status::Unspecified => "unspecified",
    }
}

pub(crate) fn priority(text: &Text, priority: i32) -> &'static str {
    let korean = text.lang == "ko";
    match Priority::try_from(priority).unwrap_or(Priority::Unspecified) {
        Priority::Low => {
            if korean {
                "낮음"
            } else {
                "Low"
            }
        }
        Priority::Normal => {
            if korean {
                "보통"
            } else {
                "Normal"
            }
        }
        Priority::High => {
            if korean {
                "높음"
            } else {
                "High"
            }
        }
        Priority::Urgent => {
            if korean {
                "긴급"
            } else {
                "Urgent"
            }
        }
        Priority::Unspecified => "—",
    }
}

/// Priorities as the API spells them.
pub(crate) const PRIORITIES: &[(&str, Priority)] =
    &[("low", Priority::Low), ("normal", Priority::Normal), ("high", Priority::High), ("urgent", Priority::Urgent)];

/// The priority as the API spells it, for forms.
pub(crate) fn priority_word(priority: i32) -> &'static str {
    PRIORITIES.iter().find(|(_, known)| *known as i32 == priority).map_or("", |(word, _)| word)
}

/// Each priority as the API spells it and as the agent reads it.
pub(crate) fn priority_choices(text: &Text) -> Vec<(&'static str, &'static str)> {
    PRIORITIES.iter().map(|(word, known)| (*word, priority(text, *known as i32))).collect()
}

/// A span of time as people say it: `2 h 5 min`, `2시간 5분`, `3 d 4 h`; under a minute is 0 min.
pub(crate) fn duration(text: &Text, seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let (d, h, m) = if text.lang == "ko" { ("일", "시간", "분") } else { (" d", " h", " min") };
    match (days, hours) {
        (0, 0) => format!("{minutes}{m}"),
        (0, _) => format!("{hours}{h} {minutes}{m}"),
        _ => format!("{days}{d} {hours}{h}"),
    }
}

pub(crate) fn channel(channel: i32) -> &'static str {
    match Channel::try_from(channel).unwrap_or(Channel::Unspecified) {
        Channel::Email => "email",
        Channel::Web => "web",
        Channel::Chat => "chat",
        Channel::Phone => "phone",
        Channel::Api => "api",
        Channel::Social => "social",
        Channel::InPerson => "in person",
        Channel::Unspecified => "—",
    }
}

pub(crate) fn flag(text: &Text, flag: Option<&proto::CustomerFlag>) -> Option<(String, String)> {
    let flag = flag?;
    let korean = text.lang == "ko";
    let kind = match FlagKind::try_from(flag.kind).unwrap_or(FlagKind::Unspecified) {
        FlagKind::Unspecified => return None,
        FlagKind::Abusive => {
            if korean {
                "폭언·위협"
            } else {
                "Abusive"
            }
        }
        FlagKind::LegalThreat => {
            if korean {
                "법적 조치 언급"
            } else {
                "Legal threat"
            }
        }
        FlagKind::Fraud => {
            if korean {
                "사기 의심"
            } else {
                "Suspected fraud"
            }
        }
        FlagKind::Other => {
            if korean {
                "기타"
            } else {
                "Other"
            }
        }
    };
    Some((kind.to_owned(), flag.reason.clone()))
}

/// A time in `zone`, as `2026-12-03 21:04`.
pub(crate) fn time(zone: chrono_tz::Tz, at: Option<&pbjson_types::Timestamp>) -> String {
    at.and_then(|at| chrono::DateTime::from_timestamp(at.seconds, at.nanos.clamp(0, 999_999_999) as u32))
        .map(|at| at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{EN, KO};

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(&EN, 59), "0 min");
        assert_eq!(duration(&EN, 2 * 3600 + 5 * 60), "2 h 5 min");
        assert_eq!(duration(&KO, 2 * 3600 + 5 * 60), "2시간 5분");
        assert_eq!(duration(&EN, 3 * 86400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(duration(&EN, -10), "0 min");
    }

    #[test]
    fn priorities_round_trip_through_their_words() {
        for (word, known) in PRIORITIES {
            assert_eq!(priority_word(*known as i32), *word);
        }
        assert_eq!(priority_word(0), "");
    }
}
