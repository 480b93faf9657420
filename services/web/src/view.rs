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
