//! Support mailboxes: the addresses a tenant takes mail for, how mail reaches them, and the
//! credentials (encrypted) for fetching and sending.

use std::collections::HashMap;

use helpdesk_proto::email::v1::{self as proto, Security};
use helpdesk_runtime::{
    ErrorKind, ServiceError,
    time::{micros_to_timestamp, now_micros},
};
use prost::Message;

use crate::{Email, store};

/// The default and the ceiling of a mailbox's message size.
const DEFAULT_MAX_BYTES: i64 = 25 * 1024 * 1024;
const MAX_MAX_BYTES: i64 = 50 * 1024 * 1024;
const DEFAULT_SENDER_LIMIT: i32 = 30;

/// A mailbox with its credentials opened, for the parts of the service that fetch and send.
pub(crate) struct OpenMailbox {
    pub(crate) mailbox: proto::Mailbox,
    pub(crate) secrets: proto::MailboxSecrets,
}

impl Email {
    pub(crate) async fn upsert_mailbox(
        &self,
        tenant_id: &str,
        request: proto::UpsertMailboxRequest,
    ) -> Result<proto::Mailbox, ServiceError> {
        let mut mailbox = request.mailbox.ok_or_else(|| ServiceError::invalid_field("mailbox", "must be given"))?;
        check(&mut mailbox)?;
        let given = request.secrets.unwrap_or_default();
        check_secrets(&given)?;
        let now = now_micros();
        let existing = store::mailbox(&self.db, tenant_id, &mailbox.id).await?;
        // Secrets sealed under another key cannot be kept: the ones given now replace them.
        let mut secrets = match &existing {
            Some(row) => self.secrets_of(row).unwrap_or_else(|error| {
                tracing::warn!(mailbox = %mailbox.id, %error, "stored credentials unreadable; replaced by the ones given");
                proto::MailboxSecrets::default()
            }),
            None => proto::MailboxSecrets::default(),
        };
        for (stored, new) in [
            (&mut secrets.imap_password, given.imap_password),
            (&mut secrets.smtp_password, given.smtp_password),
            (&mut secrets.webhook_secret, given.webhook_secret),
        ] {
            if !new.is_empty() {
                *stored = new;
            }
        }
        let created_at = existing.as_ref().map_or(now, |row| row.created_at);
        let account_changed = existing.as_ref().and_then(|row| decode(row).ok()).is_none_or(|before| {
            let account =
                |imap: &proto::ImapSettings| (imap.host.clone(), imap.port, imap.username.clone(), imap.folder.clone());
            before.imap.as_ref().map(account) != mailbox.imap.as_ref().map(account)
        });
        let row = store::MailboxRow {
            spec: mailbox.encode_to_vec(),
            secrets: Some(self.secret_box.seal(&secrets.encode_to_vec())?),
            created_at,
            updated_at: now,
        };
        let mut addresses = vec![mailbox.address.clone()];
        addresses.extend(mailbox.aliases.iter().cloned());
        let mut tx = self.db.writer().begin().await?;
        store::save_mailbox(&mut tx, tenant_id, &mailbox.id, &row, &addresses).await.map_err(|error| {
            if error.kind == ErrorKind::AlreadyExists {
                ServiceError::new(ErrorKind::AlreadyExists, "another mailbox takes mail for this address")
                    .with_field("mailbox.address")
            } else {
                error
            }
        })?;
        store::keep_imap_state(&mut tx, tenant_id, &mailbox.id, mailbox.imap.is_some(), account_changed).await?;
        tx.commit().await?;
        let status = self.imap_statuses(tenant_id, Some(&mailbox.id)).await?.remove(&mailbox.id);
        Ok(view(mailbox, &secrets, created_at, now, status))
    }

    pub(crate) async fn get_mailbox(&self, tenant_id: &str, id: &str) -> Result<proto::Mailbox, ServiceError> {
        let row = store::mailbox(&self.db, tenant_id, id).await?.ok_or_else(|| ServiceError::not_found("mailbox"))?;
        let mut statuses = self.imap_statuses(tenant_id, Some(id)).await?;
        self.view_of(&row, &mut statuses)
    }

    pub(crate) async fn list_mailboxes(&self, tenant_id: &str) -> Result<Vec<proto::Mailbox>, ServiceError> {
        let mut statuses = self.imap_statuses(tenant_id, None).await?;
        store::mailboxes(&self.db, tenant_id).await?.iter().map(|row| self.view_of(row, &mut statuses)).collect()
    }

    /// How fetching stands for the tenant's IMAP mailboxes (one, when `id` is given), by id.
    async fn imap_statuses(
        &self,
        tenant_id: &str,
        id: Option<&str>,
    ) -> Result<HashMap<String, proto::ImapStatus>, ServiceError> {
        let now = now_micros();
        let at = |micros: i64| (micros > 0).then(|| micros_to_timestamp(micros));
        Ok(store::imap_states(&self.db, tenant_id, id)
            .await?
            .into_iter()
            .map(|row| {
                let status = proto::ImapStatus {
                    fetching: row.lease_until > now,
                    uid_validity: row.uid_validity,
                    last_uid: row.last_uid,
                    messages_fetched: row.messages_fetched,
                    last_fetched_at: at(row.last_fetched_at),
                    last_error: row.last_error,
                    last_error_at: at(row.last_error_at),
                };
                (row.mailbox_id, status)
            })
            .collect())
    }

    pub(crate) async fn delete_mailbox(&self, tenant_id: &str, id: &str) -> Result<(), ServiceError> {
        let mut tx = self.db.writer().begin().await?;
        if !store::delete_mailbox(&mut tx, tenant_id, id).await? {
            return Err(ServiceError::not_found("mailbox"));
        }
        store::forget_imap_state(&mut tx, tenant_id, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The mailbox's settings, without its credentials.
    pub(crate) async fn mailbox_settings(&self, tenant_id: &str, id: &str) -> Result<proto::Mailbox, ServiceError> {
        let row = store::mailbox(&self.db, tenant_id, id).await?.ok_or_else(|| ServiceError::not_found("mailbox"))?;
        decode(&row)
    }

    /// The mailbox with its credentials, for checking webhook signatures and sending mail.
    pub(crate) async fn open_mailbox(&self, tenant_id: &str, id: &str) -> Result<OpenMailbox, ServiceError> {
        let row = store::mailbox(&self.db, tenant_id, id).await?.ok_or_else(|| ServiceError::not_found("mailbox"))?;
        let mailbox = decode(&row)?;
        Ok(OpenMailbox { mailbox, secrets: self.secrets_of(&row)? })
    }

    fn secrets_of(&self, row: &store::MailboxRow) -> Result<proto::MailboxSecrets, ServiceError> {
        match &row.secrets {
            Some(sealed) => proto::MailboxSecrets::decode(self.secret_box.open_sealed(sealed)?.as_slice())
                .map_err(|error| ServiceError::internal(&error)),
            None => Ok(proto::MailboxSecrets::default()),
        }
    }

    /// What callers see; secrets that no longer open (another key) show as not set.
    fn view_of(
        &self,
        row: &store::MailboxRow,
        statuses: &mut HashMap<String, proto::ImapStatus>,
    ) -> Result<proto::Mailbox, ServiceError> {
        let secrets = self.secrets_of(row).unwrap_or_default();
        let mailbox = decode(row)?;
        let status = statuses.remove(&mailbox.id);
        Ok(view(mailbox, &secrets, row.created_at, row.updated_at, status))
    }
}

fn decode(row: &store::MailboxRow) -> Result<proto::Mailbox, ServiceError> {
    proto::Mailbox::decode(row.spec.as_slice()).map_err(|error| ServiceError::internal(&error))
}

/// The mailbox as callers see it: whether each secret is set, never the secret.
fn view(
    mut mailbox: proto::Mailbox,
    secrets: &proto::MailboxSecrets,
    created_at: i64,
    updated_at: i64,
    imap_status: Option<proto::ImapStatus>,
) -> proto::Mailbox {
    if let Some(imap) = &mut mailbox.imap {
        imap.has_password = !secrets.imap_password.is_empty();
        imap.status = imap_status;
    }
    if let Some(smtp) = &mut mailbox.smtp {
        smtp.has_password = !secrets.smtp_password.is_empty();
    }
    mailbox.has_webhook_secret = !secrets.webhook_secret.is_empty();
    mailbox.created_at = Some(micros_to_timestamp(created_at));
    mailbox.updated_at = Some(micros_to_timestamp(updated_at));
    mailbox
}

fn invalid(field: &str, description: &str) -> ServiceError {
    ServiceError::invalid_field(field, description)
}

/// Validates and normalises a mailbox as given; output-only fields are cleared.
fn check(mailbox: &mut proto::Mailbox) -> Result<(), ServiceError> {
    let id = mailbox.id.trim();
    if !(1..=64).contains(&id.len())
        || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || id.starts_with('-')
    {
        return Err(invalid("mailbox.id", "1 to 64 lowercase letters, digits or dashes"));
    }
    mailbox.id = id.to_owned();
    mailbox.address = address("mailbox.address", &mailbox.address)?;
    if mailbox.aliases.len() > 20 {
        return Err(invalid("mailbox.aliases", "at most 20"));
    }
    let mut aliases: Vec<String> = Vec::new();
    for (index, alias) in mailbox.aliases.iter().enumerate() {
        let alias = address(&format!("mailbox.aliases[{index}]"), alias)?;
        if alias != mailbox.address && !aliases.contains(&alias) {
            aliases.push(alias);
        }
    }
    mailbox.aliases = aliases;
    mailbox.display_name = text("mailbox.display_name", &mailbox.display_name, 200)?;
    mailbox.default_language = match mailbox.default_language.trim() {
        "" => "en".to_owned(),
        language @ ("ko" | "en") => language.to_owned(),
        _ => return Err(invalid("mailbox.default_language", "ko or en")),
    };
    mailbox.group = text("mailbox.group", &mailbox.group, 64)?;
    if mailbox.tags.len() > 20 || mailbox.tags.iter().any(|tag| tag.trim().is_empty() || tag.chars().count() > 64) {
        return Err(invalid("mailbox.tags", "at most 20 tags of 1 to 64 characters"));
    }
    if let Some(imap) = &mut mailbox.imap {
        server("mailbox.imap", &mut imap.host, &mut imap.port, imap.security)?;
        if imap.username.trim().is_empty() {
            return Err(invalid("mailbox.imap.username", "must not be empty"));
        }
        imap.folder = match imap.folder.trim() {
            "" => "INBOX".to_owned(),
            folder => text("mailbox.imap.folder", folder, 200)?,
        };
        imap.has_password = false;
        imap.status = None;
    }
    if let Some(smtp) = &mut mailbox.smtp {
        server("mailbox.smtp", &mut smtp.host, &mut smtp.port, smtp.security)?;
        smtp.has_password = false;
    }
    mailbox.sender_limit_per_hour = match mailbox.sender_limit_per_hour {
        0 => DEFAULT_SENDER_LIMIT,
        limit @ 1..=10_000 => limit,
        _ => return Err(invalid("mailbox.sender_limit_per_hour", "1 to 10000")),
    };
    mailbox.max_message_bytes = match mailbox.max_message_bytes {
        0 => DEFAULT_MAX_BYTES,
        bytes @ 1024..=MAX_MAX_BYTES => bytes,
        _ => return Err(invalid("mailbox.max_message_bytes", "1024 to 52428800 (50 MiB)")),
    };
    mailbox.has_webhook_secret = false;
    mailbox.created_at = None;
    mailbox.updated_at = None;
    Ok(())
}

fn check_secrets(secrets: &proto::MailboxSecrets) -> Result<(), ServiceError> {
    if !secrets.webhook_secret.is_empty() && secrets.webhook_secret.len() < 16 {
        return Err(invalid("secrets.webhook_secret", "at least 16 characters"));
    }
    for (field, value) in
        [("secrets.imap_password", &secrets.imap_password), ("secrets.smtp_password", &secrets.smtp_password)]
    {
        if value.len() > 1024 {
            return Err(invalid(field, "at most 1024 bytes"));
        }
    }
    Ok(())
}

/// An email address, lowercased; no sub-address, which replies use for the ticket token.
fn address(field: &str, value: &str) -> Result<String, ServiceError> {
    let value = value.trim().to_lowercase();
    let valid = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !local.contains('+') && domain.contains('.') && !domain.contains('@')
        });
    if valid { Ok(value) } else { Err(invalid(field, "an email address without a +tag, such as support@example.com")) }
}

fn text(field: &str, value: &str, max_chars: usize) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(invalid(field, &format!("at most {max_chars} characters, no control characters")));
    }
    Ok(value.to_owned())
}

fn server(field: &str, host: &mut String, port: &mut i32, security: i32) -> Result<(), ServiceError> {
    *host = host.trim().to_lowercase();
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
        return Err(invalid(&format!("{field}.host"), "a host name or address"));
    }
    if Security::try_from(security).is_err() {
        return Err(invalid(&format!("{field}.security"), "tls, starttls or none"));
    }
    if !(0..=65535).contains(port) {
        return Err(invalid(&format!("{field}.port"), "0 to 65535"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> proto::Mailbox {
        proto::Mailbox { id: "support".into(), address: " Support@Acme.test ".into(), ..proto::Mailbox::default() }
    }

    #[test]
    fn a_mailbox_is_normalised_with_defaults() {
        let mut given =
            proto::Mailbox { aliases: vec!["help@acme.test".into(), "SUPPORT@acme.test".into()], ..mailbox() };
        check(&mut given).unwrap();
        assert_eq!(given.address, "support@acme.test");
        assert_eq!(given.aliases, ["help@acme.test"]);
        assert_eq!((given.default_language.as_str(), given.sender_limit_per_hour), ("en", DEFAULT_SENDER_LIMIT));
        assert_eq!(given.max_message_bytes, DEFAULT_MAX_BYTES);
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |mut mailbox: proto::Mailbox| check(&mut mailbox).unwrap_err().field_violations[0].field.clone();
        assert_eq!(field(proto::Mailbox { id: "Support!".into(), ..mailbox() }), "mailbox.id");
        assert_eq!(field(proto::Mailbox { address: "support+x@acme.test".into(), ..mailbox() }), "mailbox.address");
        assert_eq!(field(proto::Mailbox { default_language: "fr".into(), ..mailbox() }), "mailbox.default_language");
        assert_eq!(field(proto::Mailbox { max_message_bytes: 60 << 20, ..mailbox() }), "mailbox.max_message_bytes");
        let imap = proto::ImapSettings { host: "imap.acme.test".into(), ..proto::ImapSettings::default() };
        assert_eq!(field(proto::Mailbox { imap: Some(imap), ..mailbox() }), "mailbox.imap.username");
    }
}
