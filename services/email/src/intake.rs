//! The durable step every message passes before its sender hears "accepted": the raw message is
//! stored with a dedup key (Message-ID and a fingerprint of what the sender wrote), so that a
//! crash after the answer loses nothing, and the same message fetched twice or delivered to
//! several mailboxes of a tenant is stored once. Threading it into a ticket follows in
//! [`crate::threading`].

use helpdesk_proto::email::v1::{self as proto, Outcome, Source};
use helpdesk_runtime::{ServiceError, time::now_micros};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{Email, store};

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) mail_id: String,
    pub(crate) outcome: Outcome,
}

impl Email {
    /// A delivery through the API: the webhook (signed with the mailbox's secret) or a service.
    pub(crate) async fn deliver_mail(
        &self,
        tenant_id: &str,
        request: proto::DeliverMailRequest,
    ) -> Result<Accepted, ServiceError> {
        let source = match Source::try_from(request.source) {
            Ok(Source::Unspecified) => Source::Webhook,
            Ok(source) => source,
            Err(_) => return Err(ServiceError::invalid_field("source", "imap, smtp or webhook")),
        };
        let mailbox = self.open_mailbox(tenant_id, &request.mailbox_id).await?;
        if source == Source::Webhook {
            let secret = mailbox.secrets.webhook_secret.as_bytes();
            if secret.is_empty() || !signature_matches(secret, &request.raw, &request.signature) {
                return Err(ServiceError::unauthenticated("the signature does not match the mailbox's webhook secret")
                    .with_field("signature"));
            }
        }
        self.store_one(tenant_id, &mailbox.mailbox, &request.raw, source).await
    }

    /// Stores one message for a mailbox; answers only once it is stored. A disabled mailbox
    /// refuses it (failed precondition), as does one whose size limit it exceeds (`raw`).
    pub(crate) async fn accept(
        &self,
        tenant_id: &str,
        mailbox_id: &str,
        raw: &[u8],
        source: Source,
    ) -> Result<Accepted, ServiceError> {
        let mailbox = self.mailbox_settings(tenant_id, mailbox_id).await?;
        self.store_one(tenant_id, &mailbox, raw, source).await
    }

    async fn store_one(
        &self,
        tenant_id: &str,
        mailbox: &proto::Mailbox,
        raw: &[u8],
        source: Source,
    ) -> Result<Accepted, ServiceError> {
        let mut answers = self.store_mail(tenant_id, mailbox, &[raw], source).await?;
        answers.pop().unwrap_or_else(|| Err(ServiceError::internal(&"no answer for the message")))
    }

    /// Messages fetched over IMAP, for a mailbox read once per pass, stored together.
    pub(crate) async fn store_fetched(
        &self,
        tenant_id: &str,
        mailbox: &proto::Mailbox,
        raws: &[&[u8]],
    ) -> Result<Vec<Result<Accepted, ServiceError>>, ServiceError> {
        self.store_mail(tenant_id, mailbox, raws, Source::Imap).await
    }

    /// Stores messages for a mailbox in one transaction, answering for each: a message over the
    /// size limit is refused (`raw`); when the database fails, none is stored.
    async fn store_mail(
        &self,
        tenant_id: &str,
        mailbox: &proto::Mailbox,
        raws: &[&[u8]],
        source: Source,
    ) -> Result<Vec<Result<Accepted, ServiceError>>, ServiceError> {
        if !mailbox.enabled {
            return Err(ServiceError::failed_precondition("the mailbox is disabled"));
        }
        let limit = mailbox.max_message_bytes.min(self.max_message_bytes);
        let mut answers = Vec::with_capacity(raws.len());
        let mut tx = self.db.writer().begin().await?;
        for raw in raws {
            if raw.len() as i64 > limit {
                answers
                    .push(Err(ServiceError::invalid_field("raw", format!("larger than the mailbox's {limit} bytes"))));
                continue;
            }
            answers.push(Ok(store_message(&mut tx, tenant_id, &mailbox.id, raw, source).await?));
        }
        tx.commit().await?;
        if answers.iter().any(|answer| answer.as_ref().is_ok_and(|accepted| accepted.outcome == Outcome::Unspecified)) {
            self.mail_arrived.notify_one();
        }
        Ok(answers)
    }

    /// Records a message that could not be taken (too large to fetch), for admins to see why.
    pub(crate) async fn record_rejection(
        &self,
        tenant_id: &str,
        mailbox_id: &str,
        source: Source,
        size_bytes: u64,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let id = uuid::Uuid::now_v7().to_string();
        let record = store::NewMail {
            tenant_id,
            id: &id,
            mailbox_id,
            source: source as i32,
            message_id: "",
            sender: "",
            subject: "",
            size_bytes: i64::try_from(size_bytes).unwrap_or(i64::MAX),
            dedup_key: None,
            raw: None,
            outcome: Outcome::Rejected as i32,
            reason,
            ticket_id: "",
            received_at: now_micros(),
        };
        store::insert_mail(&mut *self.db.writer().acquire().await?, &record).await?;
        Ok(())
    }
}

/// Stores one message keyed for dedup, or, when it was stored before, a record of this delivery
/// naming the first.
async fn store_message(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    mailbox_id: &str,
    raw: &[u8],
    source: Source,
) -> Result<Accepted, ServiceError> {
    let id = uuid::Uuid::now_v7().to_string();
    let received_at = now_micros();
    let (message_id, sender, subject, dedup_key) = match helpdesk_mail::parse(raw) {
        Ok(mail) => {
            let message_id = mail.message_id.clone().unwrap_or_default();
            let sender = mail.from.as_ref().map(|from| from.address.clone()).unwrap_or_default();
            let key = hex::encode(Sha256::new().chain_update(&message_id).chain_update(mail.content_hash()).finalize());
            (message_id, sender, mail.subject.chars().take(500).collect(), key)
        }
        // Unreadable mail is kept too, keyed by its bytes, for admins to see why.
        Err(_) => (String::new(), String::new(), String::new(), hex::encode(Sha256::digest(raw))),
    };
    let mail = store::NewMail {
        tenant_id,
        id: &id,
        mailbox_id,
        source: source as i32,
        message_id: &message_id,
        sender: &sender,
        subject: &subject,
        size_bytes: raw.len() as i64,
        dedup_key: Some(&dedup_key),
        raw: Some(raw),
        outcome: Outcome::Unspecified as i32,
        reason: "",
        ticket_id: "",
        received_at,
    };
    if store::insert_mail(&mut *conn, &mail).await? {
        return Ok(Accepted { mail_id: id, outcome: Outcome::Unspecified });
    }
    // Stored before: keep a record of this delivery for the mailbox, without the bytes.
    let (first, _) = store::mail_by_dedup_key(&mut *conn, tenant_id, &dedup_key)
        .await?
        .ok_or_else(|| ServiceError::conflict("the first copy of the message is being removed; retry"))?;
    let reason = format!("the same message as {first}");
    let record =
        store::NewMail { dedup_key: None, raw: None, outcome: Outcome::Duplicate as i32, reason: &reason, ..mail };
    store::insert_mail(conn, &record).await?;
    Ok(Accepted { mail_id: first, outcome: Outcome::Duplicate })
}

/// Whether `signature` is `sha256=` and the hex HMAC-SHA256 of `body` under `secret`, compared in
/// constant time.
fn signature_matches(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(given) = signature.trim().strip_prefix("sha256=").and_then(|hex_digest| hex::decode(hex_digest).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The signature a webhook sender writes: for tests and for documentation.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_its_body_and_secret_only() {
        let signature = sign_webhook("a webhook secret!", b"raw mail");
        assert!(signature_matches(b"a webhook secret!", b"raw mail", &signature));
        assert!(!signature_matches(b"a webhook secret!", b"raw mail!", &signature));
        assert!(!signature_matches(b"another secret!!", b"raw mail", &signature));
        assert!(!signature_matches(b"a webhook secret!", b"raw mail", "sha256=zz"));
        assert!(!signature_matches(b"a webhook secret!", b"raw mail", ""));
    }
}
