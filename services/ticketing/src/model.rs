//! Validation, enum conversions, the status machine and event construction.

use std::collections::HashMap;

use helpdesk_proto::{
    common::v1::{AuthorKind, Channel, Priority},
    events::v1::{Event, event::Payload},
    ticketing::v1::Status,
};
use helpdesk_runtime::{ServiceError, auth::Principal, time::micros_to_timestamp};
use sha2::{Digest, Sha256};

pub(crate) const MAX_SUBJECT: usize = 500;
pub(crate) const MAX_BODY: usize = 256 * 1024;
pub(crate) const MAX_TAGS: usize = 50;
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 255;

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn fingerprint(message: &impl prost::Message) -> String {
    hex::encode(Sha256::digest(message.encode_to_vec()))
}

pub(crate) fn priority(value: i32, field: &str) -> Result<Priority, ServiceError> {
    match Priority::try_from(value) {
        Ok(Priority::Unspecified) => Ok(Priority::Normal),
        Ok(priority) => Ok(priority),
        Err(_) => Err(ServiceError::invalid_field(field, format!("unknown priority {value}"))),
    }
}

pub(crate) fn channel(value: i32, default: Channel) -> Result<Channel, ServiceError> {
    match Channel::try_from(value) {
        Ok(Channel::Unspecified) => Ok(default),
        Ok(channel) => Ok(channel),
        Err(_) => Err(ServiceError::invalid_field("channel", format!("unknown channel {value}"))),
    }
}

pub(crate) fn status(value: i32, field: &str) -> Result<Status, ServiceError> {
    match Status::try_from(value) {
        Ok(Status::Unspecified) | Err(_) => Err(ServiceError::invalid_field(field, format!("unknown status {value}"))),
        Ok(status) => Ok(status),
    }
}

/// The lifecycle: new → open → pending / on_hold → solved → closed. Solved may reopen; closed is
/// final (later contact becomes a follow-up ticket).
pub(crate) fn check_transition(from: Status, to: Status) -> Result<(), ServiceError> {
    use Status::*;
    let allowed = from == to
        || match from {
            New => matches!(to, Open | Pending | OnHold | Solved),
            Open => matches!(to, Pending | OnHold | Solved),
            Pending => matches!(to, Open | OnHold | Solved),
            OnHold => matches!(to, Open | Pending | Solved),
            Solved => matches!(to, Open | Closed),
            Closed | Unspecified => false,
        };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::failed_precondition(format!(
            "a {} ticket cannot become {}",
            status_name(from),
            status_name(to)
        )))
    }
}

pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::Unspecified => "unspecified",
        Status::New => "new",
        Status::Open => "open",
        Status::Pending => "pending",
        Status::OnHold => "on_hold",
        Status::Solved => "solved",
        Status::Closed => "closed",
    }
}

pub(crate) fn author_kind(caller: &Principal) -> AuthorKind {
    if caller.is_customer() { AuthorKind::Customer } else { AuthorKind::Agent }
}

pub(crate) fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid_field(field, "must not be empty"));
    }
    optional_text(field, value, max_chars)
}

pub(crate) fn optional_text(field: &str, value: &str, max_chars: usize) -> Result<String, ServiceError> {
    if value.chars().count() > max_chars {
        return Err(ServiceError::invalid_field(field, format!("longer than {max_chars} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ServiceError::invalid_field(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

/// Trims, lowercases and de-duplicates tags; each is 1 to 64 characters without spaces or commas.
pub(crate) fn tags(values: &[String]) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_TAGS {
        return Err(ServiceError::invalid_field("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (index, tag) in values.iter().enumerate() {
        let tag = tag.trim().to_lowercase();
        let valid = (1..=64).contains(&tag.chars().count())
            && !tag.chars().any(|c| c.is_whitespace() || c == ',' || c.is_control());
        if !valid {
            return Err(ServiceError::invalid_field(
                format!("tags[{index}]"),
                "1 to 64 characters without spaces or commas",
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

pub(crate) fn string_map(field: &str, map: &HashMap<String, String>, max_entries: usize) -> Result<(), ServiceError> {
    if map.len() > max_entries {
        return Err(ServiceError::invalid_field(field, format!("at most {max_entries} entries")));
    }
    for (key, value) in map {
        let key_ok = (1..=64).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !key_ok {
            return Err(ServiceError::invalid_field(format!("{field}.{key}"), "keys are 1 to 64 of a-z, 0-9, _ - ."));
        }
        optional_text(&format!("{field}.{key}"), value, 256)?;
    }
    Ok(())
}

/// The stored form of a caller's idempotency key: keys are scoped to the caller, so two callers
/// who happen to pick the same key never see each other's results.
pub(crate) fn idempotency_key(caller: &Principal, key: &str) -> Result<Option<String>, ServiceError> {
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(char::is_control) {
        return Err(ServiceError::invalid_field(
            "idempotency_key",
            format!("at most {MAX_IDEMPOTENCY_KEY} printable characters"),
        ));
    }
    Ok(Some(format!("{}\u{1f}{key}", caller.subject)))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|error| ServiceError::internal(&error))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ServiceError> {
    serde_json::from_str(text).map_err(|error| ServiceError::internal(&error))
}

/// An event about one aggregate, attributed to `caller`.
pub(crate) fn event(
    caller: &Principal,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    at: i64,
    payload: Payload,
) -> Event {
    Event {
        id: new_id(),
        tenant_id: caller.tenant_id.clone(),
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        sequence,
        occurred_at: Some(micros_to_timestamp(at)),
        actor_kind: author_kind(caller).into(),
        actor_id: caller.subject.clone(),
        payload: Some(payload),
    }
}

/// Decodes a page token of `parts` fields written by [`page_token`]; `None` for the empty token
/// that asks for the first page.
pub(crate) fn parse_page_token(token: &str, kind: &str, parts: usize) -> Result<Option<Vec<String>>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ServiceError::invalid_field("page_token", "not a token this list returned");
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut fields = text.split('\u{1f}');
    if fields.next() != Some(kind) {
        return Err(invalid());
    }
    let values: Vec<String> = fields.map(str::to_owned).collect();
    if values.len() != parts {
        return Err(invalid());
    }
    Ok(Some(values))
}

pub(crate) fn page_token(kind: &str, values: &[String]) -> String {
    let mut text = kind.to_owned();
    for value in values {
        text.push('\u{1f}');
        text.push_str(value);
    }
    hex::encode(text)
}

/// Trims a page that was fetched with one row too many, and returns the token for the page after
/// it (empty on the last page).
pub(crate) fn finish_page<T>(items: &mut Vec<T>, page_size: i64, token: impl FnOnce(&T) -> String) -> String {
    let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if items.len() <= page_size {
        return String::new();
    }
    items.truncate(page_size);
    items.last().map(token).unwrap_or_default()
}

/// The cursor of a row ordered by (creation time, id).
pub(crate) fn created_cursor(kind: &str, created_at: Option<&pbjson_types::Timestamp>, id: &str) -> String {
    let at = created_at.map(helpdesk_runtime::time::timestamp_to_micros).unwrap_or_default();
    page_token(kind, &[at.to_string(), id.to_owned()])
}

pub(crate) fn page_size(requested: i32) -> Result<i64, ServiceError> {
    match requested {
        0 => Ok(50),
        1..=200 => Ok(i64::from(requested)),
        _ => Err(ServiceError::invalid_field("page_size", "must be 1 to 200")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final_and_solved_can_reopen() {
        assert!(check_transition(Status::Solved, Status::Open).is_ok());
        assert!(check_transition(Status::Closed, Status::Open).is_err());
        assert!(check_transition(Status::New, Status::Closed).is_err());
        assert!(check_transition(Status::Pending, Status::Pending).is_ok());
    }

    #[test]
    fn tags_are_normalised_and_validated() {
        assert_eq!(tags(&[" Refund ".into(), "refund".into()]).expect("valid"), ["refund"]);
        let error = tags(&["two words".into()]).expect_err("space");
        assert_eq!(error.field_violations[0].field, "tags[0]");
    }

    #[test]
    fn page_tokens_round_trip_and_reject_foreign_tokens() {
        let token = page_token("t1", &["5".into(), "abc".into()]);
        assert_eq!(parse_page_token(&token, "t1", 2).expect("valid"), Some(vec!["5".to_owned(), "abc".to_owned()]));
        assert_eq!(parse_page_token("", "t1", 2).expect("first page"), None);
        assert!(parse_page_token(&token, "t2", 2).is_err());
        assert!(parse_page_token("zz", "t1", 2).is_err());
    }
}
