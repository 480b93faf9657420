//! Agents' public replies on email tickets, sent to the customer over the mailbox's relay.
//! A reply is queued (with the Message-ID it will carry, tied to the ticket so the customer's
//! answer threads back) when ticketing's event announces it, one row per ticket message, so a
//! redelivered event queues nothing twice; a worker sends what is due, retrying with backoff
//! what may pass and marking failed what the relay refuses. The Message-ID stays the same on
//! every attempt, so a copy sent again after a crash between the relay's answer and the record
//! is recognised as the same message by the receiving clients.

use std::{sync::Arc, time::Duration};

use helpdesk_events::{BusError, EventBus, EventStream, handle_delivery, next_delivery};
use helpdesk_proto::{
    common::v1::AuthorKind,
    email::v1::{DeliveryState, Mailbox},
    events::v1::event::Payload,
    routing::v1::{GetTicketSlaRequest, SlaKind},
    ticketing::v1::{
        Attachment as TicketAttachment, GetAttachmentRequest, GetCustomerRequest, GetMessageRequest, GetTicketRequest,
        Message as TicketMessage, Visibility,
    },
};
use helpdesk_runtime::{ServiceError, shutdown::Shutdown, time::now_micros};
use lettre::{
    address::Envelope,
    message::{Attachment, Mailbox as Address, MultiPart, SinglePart, header::ContentType},
};

use crate::{Email, store};

/// Ticket events, on a durable consumer replicas share.
pub(crate) async fn subscribe(bus: &dyn EventBus) -> Result<EventStream, BusError> {
    bus.subscribe("email-replies", Some("*.ticket.>")).await
}

/// Events handled at once: each reply is composed from two ticketing calls and a few reads,
/// which one at a time would bound the replies a replica sends.
const REPLIES_COMPOSED_AT_ONCE: usize = 16;

/// Queues each public agent reply on an email ticket until `shutdown`. Events are handled side
/// by side (each settled on its own, so their order does not matter to the bus).
pub(crate) async fn queue(email: Arc<Email>, mut events: EventStream, shutdown: Shutdown) {
    let permits = Arc::new(tokio::sync::Semaphore::new(REPLIES_COMPOSED_AT_ONCE));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let Some(delivery) = next_delivery(&mut events, &shutdown).await else { break };
        let (email, shutdown) = (email.clone(), shutdown.clone());
        tokio::spawn(async move {
            handle_delivery(delivery, &shutdown, |event| {
                let email = email.clone();
                async move {
                    let Some(Payload::MessageAdded(added)) = &event.payload else { return Ok(()) };
                    let Some(message) = &added.message else { return Ok(()) };
                    let public_reply =
                        message.visibility() == Visibility::Public && message.author_kind() == AuthorKind::Agent;
                    if !public_reply {
                        return Ok(());
                    }
                    email.queue_reply(&event.tenant_id, message).await
                }
            })
            .await;
            drop(permit);
        });
    }
    // Let what is in flight settle (or stop at shutdown) before returning.
    let _ = permits.acquire_many(REPLIES_COMPOSED_AT_ONCE as u32).await;
}

/// How long a worker holds a delivery before another may try it.
const LEASE: Duration = Duration::from_secs(120);
/// Attempts before a delivery that keeps failing is given up.
const MAX_ATTEMPTS: i64 = 12;
const IDLE: Duration = Duration::from_secs(2);
/// Replies in flight at once, each on a relay connection of its own.
const SENDS_AT_ONCE: usize = 16;

/// Sends due replies until `shutdown`.
pub(crate) async fn send(email: Arc<Email>, shutdown: Shutdown) {
    loop {
        let sent = match email.send_due().await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(%error, "sending replies failed; retrying");
                0
            }
        };
        if sent > 0 {
            continue;
        }
        tokio::select! {
            () = shutdown.clone().wait() => return,
            () = email.reply_queued.notified() => {}
            () = tokio::time::sleep(IDLE) => {}
        }
    }
}

impl Email {
    /// Composes the reply to the ticket's customer and queues it; nothing for a ticket that did
    /// not come by email.
    pub(crate) async fn queue_reply(&self, tenant: &str, message: &TicketMessage) -> Result<(), ServiceError> {
        let Some(token) = store::ticket_token(&self.db, tenant, &message.ticket_id).await? else { return Ok(()) };
        let received = store::ticket_mail(&self.db, tenant, &message.ticket_id).await?;
        let Some((mailbox_id, last_id)) = received.last().cloned() else { return Ok(()) };
        let mailbox = self.mailbox_settings(tenant, &mailbox_id).await?;
        let ticket = self
            .peers
            .tickets()
            .get_ticket(self.peers.request(tenant, GetTicketRequest { id: message.ticket_id.clone() })?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?
            .into_inner();
        let customer = self
            .peers
            .customers()
            .get_customer(self.peers.request(tenant, GetCustomerRequest { id: ticket.requester_id.clone() })?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?
            .into_inner();
        let Some(recipient) = customer.emails.first() else {
            tracing::info!(ticket_id = %ticket.id, "the customer has no address; the reply is not mailed");
            return Ok(());
        };
        let email_message_id = format!("{}@{}", message.id, self.hostname);
        // A service's message may carry what only the customer sees (their survey link): the
        // event has it redacted, so read the message as the service it is for.
        let (text, html) = if message.author_id.starts_with(helpdesk_runtime::auth::SERVICE_SUBJECT_PREFIX) {
            let request = GetMessageRequest { ticket_id: ticket.id.clone(), message_id: message.id.clone() };
            let full = self
                .peers
                .tickets()
                .get_message(self.peers.request(tenant, request)?)
                .await
                .map_err(|status| ServiceError::from_status(&status))?
                .into_inner();
            match full.customer_text.is_empty() {
                true => (full.body_text, full.body_html),
                false => (full.customer_text, String::new()),
            }
        } else {
            (message.body_text.clone(), message.body_html.clone())
        };
        let references: Vec<String> = received.iter().map(|(_, id)| format!("<{id}>")).collect();
        let subject = match ticket.subject.trim() {
            subject if subject.to_lowercase().starts_with("re:") => subject.to_owned(),
            subject => format!("Re: {subject}"),
        };
        let copied = self.collaborator_addresses(tenant, &ticket.collaborator_ids, recipient).await?;
        let mut builder = addressed(&mailbox, &token, &customer.name, recipient, &subject)
            .map_err(ServiceError::failed_precondition)?;
        for address in &copied {
            builder = builder.cc(address.clone());
        }
        let builder = builder
            .message_id(Some(format!("<{email_message_id}>")))
            .in_reply_to(format!("<{last_id}>"))
            .references(references.join(" "));
        let files = self.attachment_parts(tenant, &ticket.id, &message.attachments).await?;
        let composed =
            compose(builder, &ticket.id, text, html, files).map_err(|error| ServiceError::internal(&error))?;
        store::queue_delivery(
            &self.db,
            &store::NewDelivery {
                tenant_id: tenant,
                message_id: &message.id,
                ticket_id: &ticket.id,
                mailbox_id: &mailbox_id,
                recipient,
                cc: &copied.iter().map(|address| address.email.to_string()).collect::<Vec<_>>().join(","),
                email_message_id: &email_message_id,
                raw: &composed.formatted(),
                queued_at: now_micros(),
            },
        )
        .await?;
        self.reply_queued.notify_one();
        Ok(())
    }

    /// Where the ticket's collaborators get its replies: each one's first address that mail can
    /// go to, once, the recipient left out.
    async fn collaborator_addresses(
        &self,
        tenant: &str,
        collaborator_ids: &[String],
        recipient: &str,
    ) -> Result<Vec<Address>, ServiceError> {
        let mut addresses: Vec<Address> = Vec::new();
        for id in collaborator_ids {
            let request = GetCustomerRequest { id: id.clone() };
            let customer = match self.peers.customers().get_customer(self.peers.request(tenant, request)?).await {
                Ok(customer) => customer.into_inner(),
                // Deleted since: nobody to copy.
                Err(status) if status.code() == tonic::Code::NotFound => continue,
                Err(status) => return Err(ServiceError::from_status(&status)),
            };
            let usable = customer.emails.iter().find_map(|email| email.parse::<lettre::Address>().ok());
            if let Some(email) = usable
                && !email.to_string().eq_ignore_ascii_case(recipient)
                && !addresses.iter().any(|known| known.email == email)
            {
                addresses.push(Address::new((!customer.name.is_empty()).then_some(customer.name), email));
            }
        }
        Ok(addresses)
    }

    /// The message's files as mail parts, each read from ticketing's store; inline images
    /// (those with a Content-ID) apart from the others.
    async fn attachment_parts(
        &self,
        tenant: &str,
        ticket_id: &str,
        attachments: &[TicketAttachment],
    ) -> Result<Vec<(TicketAttachment, SinglePart)>, ServiceError> {
        let mut parts = Vec::with_capacity(attachments.len());
        for attachment in attachments {
            let request = GetAttachmentRequest { ticket_id: ticket_id.to_owned(), sha256: attachment.sha256.clone() };
            let content = self
                .peers
                .attachments()
                .get_attachment(self.peers.request(tenant, request)?)
                .await
                .map_err(|status| ServiceError::from_status(&status))?
                .into_inner()
                .content;
            let content_type = ContentType::parse(&attachment.content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("a valid media type"));
            let part = match attachment.content_id.as_str() {
                "" => Attachment::new(attachment.name.clone()),
                content_id => Attachment::new_inline_with_name(content_id.to_owned(), attachment.name.clone()),
            }
            .body(content, content_type);
            parts.push((attachment.clone(), part));
        }
        Ok(parts)
    }

    /// Attempts every due delivery once, [`SENDS_AT_ONCE`] side by side; returns how many were
    /// settled (sent or failed).
    pub(crate) async fn send_due(&self) -> Result<usize, ServiceError> {
        use futures::{StreamExt, TryStreamExt};
        let now = now_micros();
        let due = store::due_deliveries(&self.db, now, 4 * SENDS_AT_ONCE as i64).await?;
        futures::stream::iter(due)
            .map(|due| self.attempt(due, now))
            .buffer_unordered(SENDS_AT_ONCE)
            .try_fold(0, |settled, one| async move { Ok(settled + one) })
            .await
    }

    /// One attempt at a due delivery, unless another worker took it; 1 when it was settled.
    async fn attempt(&self, due: store::DueDelivery, now: i64) -> Result<usize, ServiceError> {
        if !store::claim_delivery(&self.db, &due, now + LEASE.as_micros() as i64).await? {
            return Ok(0);
        }
        let attempts = due.attempts + 1;
        let (state, error, retry_at, sent_at) = match self.relay(&due).await {
            Ok(()) => (DeliveryState::Sent, String::new(), 0, Some(now_micros())),
            Err(Failure { permanent, error }) => {
                let give_up = permanent || attempts >= MAX_ATTEMPTS;
                let backoff = Duration::from_secs(15 << attempts.clamp(0, 8)).min(Duration::from_secs(3600));
                tracing::warn!(message_id = %due.message_id, %error, attempts, give_up, "reply not sent");
                let state = if give_up { DeliveryState::Failed } else { DeliveryState::Retrying };
                (state, error, now_micros() + backoff.as_micros() as i64, None)
            }
        };
        store::settle_delivery(&self.db, &due.tenant_id, &due.message_id, state as i32, &error, retry_at, sent_at)
            .await?;
        Ok(usize::from(state != DeliveryState::Retrying))
    }

    /// One attempt through the mailbox's relay.
    async fn relay(&self, due: &store::DueDelivery) -> Result<(), Failure> {
        let mailbox = self.open_mailbox(&due.tenant_id, &due.mailbox_id).await.map_err(Failure::transient)?;
        let Some(smtp) = &mailbox.mailbox.smtp else {
            return Err(Failure::permanent("the mailbox has no outgoing relay (smtp) configured"));
        };
        let recipients = std::iter::once(due.recipient.as_str()).chain(due.cc.split(',').filter(|cc| !cc.is_empty()));
        let (Ok(from), Ok(to)) = (mailbox.mailbox.address.parse(), recipients.map(str::parse).collect()) else {
            return Err(Failure::permanent("the sender or a recipient is not an address"));
        };
        let envelope = Envelope::new(Some(from), to).map_err(|error| Failure::permanent(error.to_string()))?;
        let raw = match due.raw.is_empty() {
            true => self.acknowledgement(due, &mailbox.mailbox).await?,
            false => due.raw.clone(),
        };
        match self.relays.send(smtp, &mailbox.secrets.smtp_password, &envelope, &raw).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_permanent() => Err(Failure::permanent(error.to_string())),
            Err(error) => Err(Failure::transient(error)),
        }
    }
}

impl Email {
    /// The acknowledgement of a new ticket, in the customer's language (ko or en, else the
    /// mailbox's): its reference, and when to expect the first answer from routing's SLA. Marked
    /// `Auto-Submitted: auto-replied` (RFC 3834) so that no autoresponder answers it.
    async fn acknowledgement(&self, due: &store::DueDelivery, mailbox: &Mailbox) -> Result<Vec<u8>, Failure> {
        let tenant = due.tenant_id.as_str();
        let ticket_id = due.message_id.strip_prefix("ack:").unwrap_or(&due.message_id);
        let request =
            self.peers.request(tenant, GetTicketRequest { id: ticket_id.to_owned() }).map_err(Failure::transient)?;
        let ticket = self.peers.tickets().get_ticket(request).await.map_err(Failure::transient)?.into_inner();
        let request = self
            .peers
            .request(tenant, GetCustomerRequest { id: ticket.requester_id.clone() })
            .map_err(Failure::transient)?;
        let customer = self.peers.customers().get_customer(request).await.map_err(Failure::transient)?.into_inner();
        let request = self
            .peers
            .request(tenant, GetTicketSlaRequest { ticket_id: ticket_id.to_owned() })
            .map_err(Failure::transient)?;
        // No SLA (none applies, or routing has not seen the ticket yet): the text says so.
        let first_response = match self.peers.sla().get_ticket_sla(request).await {
            Ok(sla) => sla
                .into_inner()
                .targets
                .into_iter()
                .find(|target| target.kind() == SlaKind::FirstResponse)
                .and_then(|target| target.due_at),
            Err(_) => None,
        };
        let korean = match customer.language.split('-').next().unwrap_or_default() {
            "ko" => true,
            "" => mailbox.default_language == "ko",
            _ => false,
        };
        let token = self.secret_box.ticket_token(ticket_id);
        let zone: chrono_tz::Tz =
            customer.time_zone.parse().unwrap_or(if korean { chrono_tz::Asia::Seoul } else { chrono_tz::UTC });
        let due_at = first_response
            .and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
            .map(|at| at.with_timezone(&zone));
        let (subject, text) = if korean {
            let when = due_at.map_or_else(
                || "담당자가 확인하는 대로 답변드리겠습니다.".to_owned(),
                |at| format!("첫 답변 예정: {} ({zone})", at.format("%Y년 %-m월 %-d일 %H:%M")),
            );
            (
                format!("[접수] {}", ticket.subject),
                format!(
                    "{}님, 문의가 접수되었습니다.\n\n접수 번호: {token}\n제목: {}\n{when}\n\n이 메일에 회신하시면 같은 문의에 추가됩니다.\n",
                    customer.name, ticket.subject
                ),
            )
        } else {
            let when = due_at.map_or_else(
                || "We will answer as soon as an agent has looked at it.".to_owned(),
                |at| format!("Expected first response by: {} ({zone})", at.format("%a, %-d %b %Y %H:%M")),
            );
            (
                format!("Received: {}", ticket.subject),
                format!(
                    "Hello {},\n\nWe have received your request.\n\nReference: {token}\nSubject: {}\n{when}\n\nReply to this email to add to the same request.\n",
                    customer.name, ticket.subject
                ),
            )
        };
        let received = store::ticket_mail(&self.db, tenant, ticket_id).await.map_err(Failure::transient)?;
        let mut builder = addressed(mailbox, &token, &customer.name, &due.recipient, &subject)
            .map_err(Failure::permanent)?
            .message_id(Some(format!("<ack-{ticket_id}@{}>", self.hostname)))
            .raw_header(lettre::message::header::HeaderValue::new(
                lettre::message::header::HeaderName::new_from_ascii("Auto-Submitted".to_owned())
                    .map_err(|error| Failure::permanent(error.to_string()))?,
                "auto-replied".to_owned(),
            ));
        if let Some((_, first)) = received.first() {
            builder = builder.in_reply_to(format!("<{first}>")).references(format!("<{first}>"));
        }
        let message =
            builder.singlepart(SinglePart::plain(text)).map_err(|error| Failure::permanent(error.to_string()))?;
        Ok(message.formatted())
    }
}

/// The reply: text (and HTML) alone, or with the files: inline images beside the HTML, which
/// shows them by `cid:` again rather than by their download paths, the rest attached.
fn compose(
    builder: lettre::message::MessageBuilder,
    ticket_id: &str,
    text: String,
    html: String,
    files: Vec<(TicketAttachment, SinglePart)>,
) -> Result<lettre::Message, lettre::error::Error> {
    if files.is_empty() {
        return match html.is_empty() {
            true => builder.singlepart(SinglePart::plain(text)),
            false => builder.multipart(MultiPart::alternative_plain_html(text, html)),
        };
    }
    // Without HTML to show them in, inline images are attached like the rest.
    let (inline, attached): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|(file, _)| !file.content_id.is_empty() && !html.is_empty());
    let readable = if html.is_empty() {
        MultiPart::mixed().singlepart(SinglePart::plain(text))
    } else {
        let html = inline.iter().fold(html, |html, (file, _)| {
            let path = format!("/v1/tickets/{ticket_id}/attachments/{}", file.sha256);
            html.replace(&path, &format!("cid:{}", file.content_id))
        });
        let alternative = MultiPart::alternative_plain_html(text, html);
        let shown = match inline.is_empty() {
            true => alternative,
            false => inline
                .into_iter()
                .fold(MultiPart::related().multipart(alternative), |related, (_, part)| related.singlepart(part)),
        };
        MultiPart::mixed().multipart(shown)
    };
    builder.multipart(attached.into_iter().fold(readable, |mixed, (_, part)| mixed.singlepart(part)))
}

/// A message from the mailbox to the customer, replies to the ticket's token address, the token
/// in the subject: what threads it for the customer and brings their answer back.
fn addressed(
    mailbox: &Mailbox,
    token: &str,
    customer_name: &str,
    recipient: &str,
    subject: &str,
) -> Result<lettre::message::MessageBuilder, String> {
    let parse = |address: &str| address.parse().map_err(|_| format!("{address} is not an address lettre sends to"));
    let name = (!mailbox.display_name.is_empty()).then(|| mailbox.display_name.clone());
    Ok(lettre::Message::builder()
        .from(Address::new(name.clone(), parse(&mailbox.address)?))
        .reply_to(Address::new(name, parse(&helpdesk_mail::reply_address(&mailbox.address, token))?))
        .to(Address::new(Some(customer_name.to_owned()), parse(recipient)?))
        .subject(helpdesk_mail::subject_with_token(subject, token)))
}

struct Failure {
    permanent: bool,
    error: String,
}

impl Failure {
    fn permanent(error: impl Into<String>) -> Self {
        Self { permanent: true, error: error.into() }
    }

    fn transient(error: impl std::fmt::Display) -> Self {
        Self { permanent: false, error: error.to_string() }
    }
}
