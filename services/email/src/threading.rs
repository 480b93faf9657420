//! Threads stored mail into tickets, in the order the issue tracker's users rely on: the ticket
//! token in an address or the subject; `In-Reply-To` and the whole `References` chain against
//! every Message-ID the platform received or sent; Outlook's `Thread-Index`; otherwise a new
//! ticket. Auto-replies, bulk mail and bounces open nothing; a sender over its hourly limit is set
//! aside. Ticketing is called with the stored message's id as the idempotency key, so a worker
//! that dies mid-way and the one that retries make one ticket, one message.

use std::time::Duration;

use helpdesk_mail::{Automatic, ParsedMail};
use helpdesk_proto::{
    common::v1::Channel,
    email::v1::{Mailbox, Outcome},
    ticketing::v1::{
        AddMessageRequest, Attachment, CreateTicketRequest, FindOrCreateCustomerRequest, UploadAttachmentRequest,
    },
};
use helpdesk_runtime::{ErrorKind, ServiceError, shutdown::Shutdown, time::now_micros};

use crate::{Email, store};

/// How long a worker holds a message before another may take it over.
const CLAIM: Duration = Duration::from_secs(60);
/// How many pending messages one pass takes.
const BATCH: i64 = 256;
/// Senders threaded at once: enough to keep ticketing's group commit full.
const SENDERS_AT_ONCE: usize = 32;
/// The most people one mail adds to its ticket's collaborators.
const MAX_COPIED: usize = 10;
/// How long to wait when nothing arrives, in case a notification was missed.
const IDLE: Duration = Duration::from_secs(5);

/// Threads pending mail until `shutdown`, woken by every stored message.
pub(crate) async fn run(email: std::sync::Arc<Email>, shutdown: Shutdown) {
    loop {
        let processed = match email.thread_pending().await {
            Ok(processed) => processed,
            Err(error) => {
                tracing::warn!(%error, "threading mail failed; retrying");
                0
            }
        };
        if processed > 0 {
            continue;
        }
        tokio::select! {
            () = shutdown.clone().wait() => return,
            () = email.mail_arrived.notified() => {}
            () = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// What threading decided for one message.
struct Settled {
    outcome: Outcome,
    reason: String,
    ticket_id: String,
    thread_keys: Vec<String>,
}

impl Settled {
    fn set_aside(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self { outcome, reason: reason.into(), ticket_id: String::new(), thread_keys: Vec::new() }
    }
}

impl Email {
    /// Threads one batch of pending mail; returns how many messages were settled. Senders are
    /// threaded side by side, each sender's mail in the order it arrived, so that a reply is
    /// never threaded before the message it answers (the customer's own, or ours in between).
    pub(crate) async fn thread_pending(&self) -> Result<usize, ServiceError> {
        use futures::{StreamExt, TryStreamExt};
        let now = now_micros();
        let mut senders: Vec<Vec<store::PendingMail>> = Vec::new();
        let mut index: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        for pending in store::pending(&self.db, now, BATCH).await? {
            let key = (pending.tenant_id.clone(), pending.sender.clone());
            let slot = *index.entry(key).or_insert_with(|| {
                senders.push(Vec::new());
                senders.len() - 1
            });
            senders[slot].push(pending);
        }
        futures::stream::iter(senders)
            .map(|mail| async move {
                let mut settled = 0;
                for pending in mail {
                    settled += self.thread_one(&pending, now).await?;
                }
                Ok::<_, ServiceError>(settled)
            })
            .buffer_unordered(SENDERS_AT_ONCE)
            .try_fold(0, |total, settled| async move { Ok(total + settled) })
            .await
    }

    /// Claims and threads one message; returns 1 when it was settled.
    async fn thread_one(&self, pending: &store::PendingMail, now: i64) -> Result<usize, ServiceError> {
        let until = now + CLAIM.as_micros() as i64;
        if !store::claim(&self.db, &pending.tenant_id, &pending.id, now, until).await? {
            return Ok(0);
        }
        let (outcome, reason, ticket_id, thread_keys) = match self.thread(pending).await {
            Ok(Settled { outcome, reason, ticket_id, thread_keys }) => (outcome, reason, ticket_id, thread_keys),
            Err(error) if error.kind.is_transient() => {
                // Ticketing or the database away: try again later, backing off to 5 minutes.
                let backoff = Duration::from_secs(5 << pending.attempts.clamp(0, 6)).min(Duration::from_secs(300));
                tracing::warn!(mail_id = %pending.id, %error, attempts = pending.attempts + 1, "mail not threaded yet");
                store::postpone(&self.db, &pending.tenant_id, &pending.id, now + backoff.as_micros() as i64).await?;
                return Ok(0);
            }
            Err(error) => {
                tracing::warn!(mail_id = %pending.id, %error, "mail rejected");
                (Outcome::Rejected, format!("not threaded: {}", error.message), String::new(), Vec::new())
            }
        };
        store::settle(&self.db, &pending.tenant_id, &pending.id, outcome as i32, &reason, &ticket_id, &thread_keys)
            .await?;
        Ok(1)
    }

    async fn thread(&self, pending: &store::PendingMail) -> Result<Settled, ServiceError> {
        let tenant = pending.tenant_id.as_str();
        let mail = match helpdesk_mail::parse(&pending.raw) {
            Ok(mail) => mail,
            Err(error) => return Ok(Settled::set_aside(Outcome::Rejected, error.to_string())),
        };
        match &mail.automatic {
            Some(Automatic::Bounce(bounce)) => {
                let of = bounce.original_message_id.as_deref().unwrap_or("an unknown message");
                let status = bounce.status.as_deref().unwrap_or("no status");
                let reason =
                    format!("bounced ({status}) for {}", bounce.recipient.as_deref().unwrap_or("the recipient"));
                // A bounce of one of our replies fails that delivery, on the ticket.
                let ticket = match &bounce.original_message_id {
                    Some(id) if bounce.permanent => store::bounce_delivery(&self.db, tenant, id, &reason).await?,
                    _ => None,
                };
                return Ok(Settled {
                    ticket_id: ticket.unwrap_or_default(),
                    ..Settled::set_aside(Outcome::Ignored, format!("a bounce of {of}"))
                });
            }
            Some(Automatic::AutoReply { reason } | Automatic::Bulk { reason }) => {
                return Ok(Settled::set_aside(Outcome::Ignored, format!("automatic mail ({reason})")));
            }
            None => {}
        }
        let Some(from) = mail.from.clone() else {
            return Ok(Settled::set_aside(Outcome::Rejected, "no sender: the message has no From address"));
        };
        let mailbox = match self.mailbox_settings(tenant, &pending.mailbox_id).await {
            Ok(mailbox) => mailbox,
            Err(error) if error.kind == ErrorKind::NotFound => {
                return Ok(Settled::set_aside(Outcome::Rejected, "the mailbox was deleted"));
            }
            Err(error) => return Err(error),
        };
        let hour_ago = pending.received_at - 3_600_000_000;
        let sent = store::sent_between(&self.db, tenant, &from.address, hour_ago, pending.received_at).await?;
        if sent > i64::from(mailbox.sender_limit_per_hour) {
            return Ok(Settled::set_aside(
                Outcome::Rejected,
                format!("{} sent {sent} messages within an hour, over the mailbox's limit", from.address),
            ));
        }
        let mut thread_keys: Vec<String> = mail.message_id.iter().map(|id| format!("id:{id}")).collect();
        thread_keys.extend(mail.thread_root.iter().map(|root| format!("outlook:{root}")));
        let customer = self
            .peers
            .customers()
            .find_or_create_customer(self.peers.request(
                tenant,
                FindOrCreateCustomerRequest {
                    email: from.address.clone(),
                    name: from.name.clone(),
                    language: language_of(&mail),
                },
            )?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?
            .into_inner();
        let key = format!("email:{}", pending.id);
        let (attachments, left_out) = self.upload_attachments(tenant, &mail).await?;
        let collaborator_ids = self.copied_customers(tenant, &mail, &from.address).await?;
        let reply = helpdesk_mail::strip_quoted(&mail.text);
        if let Some((ticket_id, tied_by)) = store::ticket_for_keys(&self.db, tenant, &candidate_keys(&mail)).await? {
            let added = self
                .peers
                .tickets()
                .add_message(self.peers.request(
                    tenant,
                    AddMessageRequest {
                        ticket_id: ticket_id.clone(),
                        idempotency_key: key.clone(),
                        body_text: reply.text.clone(),
                        body_html: reply_html(&mail),
                        author_customer_id: customer.id.clone(),
                        attachments: attachments.clone(),
                        collaborator_ids: collaborator_ids.clone(),
                        ..AddMessageRequest::default()
                    },
                )?)
                .await;
            match added {
                Ok(_) => {
                    return Ok(Settled {
                        outcome: Outcome::MessageAdded,
                        reason: format!("tied by {}{left_out}", tied_by.split(':').next().unwrap_or("a key")),
                        ticket_id,
                        thread_keys,
                    });
                }
                // A closed ticket takes no replies: the reply opens a follow-up below.
                Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                    let opened = Opening { follow_up_of: Some(&ticket_id), attachments, collaborator_ids, left_out };
                    return self.open_ticket(tenant, &mailbox, &mail, &customer.id, &key, opened, thread_keys).await;
                }
                // The ticket is gone (merged away, deleted): a new one.
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => return Err(ServiceError::from_status(&status)),
            }
        }
        // What it answers may have come just before it and not be threaded yet (another sender's
        // mail is threaded side by side): wait for that rather than split the conversation.
        let answered: Vec<&str> =
            mail.in_reply_to.iter().chain(&mail.references).map(String::as_str).take(20).collect();
        if store::names_pending_mail(&self.db, tenant, &pending.id, &answered, pending.received_at).await? {
            return Err(ServiceError::new(ErrorKind::Unavailable, "the message it answers is not threaded yet"));
        }
        let opened = Opening { follow_up_of: None, attachments, collaborator_ids, left_out };
        self.open_ticket(tenant, &mailbox, &mail, &customer.id, &key, opened, thread_keys).await
    }

    /// The people the mail was also sent to (its other `To` and `Cc` addresses, not the tenant's
    /// own mailboxes and not the sender), as customers found or made by their address: they
    /// follow the ticket and get its replies.
    async fn copied_customers(
        &self,
        tenant: &str,
        mail: &ParsedMail,
        sender: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let mut seen = vec![helpdesk_mail::base_address(sender)];
        let mut ids = Vec::new();
        for copied in mail.to.iter().chain(&mail.cc) {
            let address = helpdesk_mail::base_address(&copied.address);
            if seen.contains(&address) || !address.contains('@') {
                continue;
            }
            seen.push(address.clone());
            if ids.len() == MAX_COPIED {
                break;
            }
            let ours = store::mailbox_for_address(&self.db, &address).await?;
            if ours.is_some_and(|(owner, _)| owner == tenant) {
                continue;
            }
            let request = FindOrCreateCustomerRequest {
                email: copied.address.trim().to_lowercase(),
                name: copied.name.clone(),
                language: String::new(),
            };
            match self.peers.customers().find_or_create_customer(self.peers.request(tenant, request)?).await {
                Ok(customer) => ids.push(customer.into_inner().id),
                // An address ticketing will not take (`undisclosed-recipients:;`) copies nobody.
                Err(status) if status.code() == tonic::Code::InvalidArgument => {}
                Err(status) => return Err(ServiceError::from_status(&status)),
            }
        }
        Ok(ids)
    }

    /// Uploads the mail's files to ticketing, each stored once however often it is sent. Files
    /// over the size limits are left out (they stay in the raw message) and named in the note.
    async fn upload_attachments(
        &self,
        tenant: &str,
        mail: &ParsedMail,
    ) -> Result<(Vec<Attachment>, String), ServiceError> {
        let limits = &self.attachment_limits;
        let mut uploaded = Vec::with_capacity(mail.attachments.len());
        let mut left_out = Vec::new();
        let mut total = 0;
        for file in &mail.attachments {
            let size = file.data.len() as u64;
            if size > limits.per_file || total + size > limits.per_message {
                left_out.push(format!("{} ({size} bytes)", file.filename));
                continue;
            }
            let request = UploadAttachmentRequest {
                name: file.filename.clone(),
                content_type: file.content_type.clone(),
                content: file.data.clone(),
            };
            match self.peers.attachments().upload_attachment(self.peers.request(tenant, request)?).await {
                Ok(response) => {
                    total += size;
                    uploaded.push(Attachment {
                        content_id: file.content_id.clone().unwrap_or_default(),
                        ..response.into_inner()
                    });
                }
                // A file ticketing will not take (a type it cannot read) does not cost the mail.
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    left_out.push(format!("{} ({})", file.filename, status.message()));
                }
                Err(status) => return Err(ServiceError::from_status(&status)),
            }
        }
        let note = if left_out.is_empty() {
            String::new()
        } else {
            format!("; files over the size limits kept in the original message only: {}", left_out.join(", "))
        };
        Ok((uploaded, note))
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_ticket(
        &self,
        tenant: &str,
        mailbox: &Mailbox,
        mail: &ParsedMail,
        customer_id: &str,
        idempotency_key: &str,
        opening: Opening<'_>,
        mut thread_keys: Vec<String>,
    ) -> Result<Settled, ServiceError> {
        let Opening { follow_up_of, attachments, collaborator_ids, left_out } = opening;
        let subject = match mail.subject.trim() {
            "" => "(no subject)".to_owned(),
            subject => subject.chars().take(200).collect(),
        };
        let description = helpdesk_mail::strip_quoted(&mail.text).text;
        let ticket = self
            .peers
            .tickets()
            .create_ticket(self.peers.request(
                tenant,
                CreateTicketRequest {
                    idempotency_key: idempotency_key.to_owned(),
                    subject,
                    description: if description.is_empty() { "(no text)".to_owned() } else { description },
                    requester_id: customer_id.to_owned(),
                    group: mailbox.group.clone(),
                    channel: Channel::Email as i32,
                    tags: mailbox.tags.clone(),
                    follow_up_of_id: follow_up_of.unwrap_or_default().to_owned(),
                    attachments,
                    collaborator_ids,
                    ..CreateTicketRequest::default()
                },
            )?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?
            .into_inner();
        thread_keys.push(format!("token:{}", self.secret_box.ticket_token(&ticket.id)));
        if mailbox.acknowledge {
            // Composed when it is sent, by which time routing knows the ticket's SLA.
            store::queue_acknowledgement(
                &self.db,
                tenant,
                &ticket.id,
                &mailbox.id,
                customer_email(mail),
                self.hostname.as_str(),
            )
            .await?;
            self.reply_queued.notify_one();
        }
        let reason = match follow_up_of {
            Some(closed) => format!("a reply to closed ticket {closed}{left_out}"),
            None => left_out.trim_start_matches("; ").to_owned(),
        };
        Ok(Settled { outcome: Outcome::TicketCreated, reason, ticket_id: ticket.id, thread_keys })
    }
}

/// The platform's limits on attachments, which the email service keeps to so that a mail with
/// too large files still becomes a ticket.
pub(crate) struct AttachmentLimits {
    pub(crate) per_file: u64,
    pub(crate) per_message: u64,
}

/// What a new ticket starts with besides the mail: the closed ticket it follows, and its files.
struct Opening<'a> {
    follow_up_of: Option<&'a str>,
    attachments: Vec<Attachment>,
    /// Customers copied on the mail.
    collaborator_ids: Vec<String>,
    /// The note on files left out, starting with `; ` when there is one.
    left_out: String,
}

fn customer_email(mail: &ParsedMail) -> &str {
    mail.from.as_ref().map_or("", |from| from.address.as_str())
}

/// The keys that may tie `mail` to a ticket, strongest first: tokens, then the newest reference.
fn candidate_keys(mail: &ParsedMail) -> Vec<String> {
    let mut keys = Vec::new();
    let addresses = mail.to.iter().chain(&mail.cc).map(|mailbox| mailbox.address.as_str());
    for address in addresses.chain(mail.delivered_to.iter().map(String::as_str)) {
        keys.extend(helpdesk_mail::token_in_address(address).map(|token| format!("token:{token}")));
    }
    keys.extend(helpdesk_mail::tokens_in_subject(&mail.subject).into_iter().map(|token| format!("token:{token}")));
    keys.extend(mail.in_reply_to.iter().map(|id| format!("id:{id}")));
    keys.extend(mail.references.iter().rev().map(|id| format!("id:{id}")));
    keys.extend(mail.thread_root.iter().map(|root| format!("outlook:{root}")));
    keys.dedup();
    keys
}

/// The HTML of the reply without its quoted history; empty for a text-only message.
fn reply_html(mail: &ParsedMail) -> String {
    let Some(html) = &mail.html else { return String::new() };
    match helpdesk_mail::html_quote_start(html) {
        Some(start) => html[..start].to_owned(),
        None => html.clone(),
    }
}

/// The language the message says, or Korean when its text is mostly Hangul.
fn language_of(mail: &ParsedMail) -> String {
    if let Some(language) = &mail.language {
        return language.split('-').next().unwrap_or_default().to_owned();
    }
    let letters = mail.text.chars().filter(|c| c.is_alphabetic());
    let (hangul, total) = letters
        .fold((0, 0), |(hangul, total), c| (hangul + usize::from(('\u{ac00}'..='\u{d7a3}').contains(&c)), total + 1));
    if total > 0 && hangul * 3 >= total { "ko".to_owned() } else { String::new() }
}
