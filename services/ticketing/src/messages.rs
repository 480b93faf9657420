//! Messages on a ticket: replies and internal notes, their HTML made safe and their plain text,
//! attachments checked, and each as its reader may see it (a customer's own text unredacted for
//! them). Adding one commits the message, the ticket's change and their events together.

use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{MessageAdded, TicketStatusChanged, event::Payload},
    ticketing::v1::{self as proto, Status, Visibility},
};
use helpdesk_runtime::{
    ServiceError,
    auth::Principal,
    time::{micros_to_timestamp, now_micros},
};

use crate::{
    Ticketing,
    model::{self, new_id},
    store::{self, Document},
    tickets::{Change, emit, load_for_update, not_found, record_changes, replay, set_status, visible_to},
};

/// Safe HTML: ammonia's allow-list, with images only from the message's own attachments (a
/// `cid:` link to an inline image becomes its download path). A remote image would let the sender
/// track when an agent opens the ticket.
fn sanitize(html: &str, ticket_id: &str, attachments: &[proto::Attachment]) -> String {
    let inline: Vec<(String, String)> = attachments
        .iter()
        .filter(|file| !file.content_id.is_empty())
        .map(|file| (file.content_id.clone(), format!("/v1/tickets/{ticket_id}/attachments/{}", file.sha256)))
        .collect();
    let mut builder = ammonia::Builder::default();
    builder.add_url_schemes(["cid"]);
    builder.attribute_filter(move |element, attribute, value| {
        let cid = value.get(..4).filter(|scheme| scheme.eq_ignore_ascii_case("cid:")).map(|_| &value[4..]);
        if (element, attribute) == ("img", "src") {
            let path = cid.and_then(|cid| inline.iter().find(|(content_id, _)| content_id == cid));
            path.map(|(_, path)| path.clone().into())
        } else if cid.is_some() {
            None
        } else {
            Some(value.into())
        }
    });
    builder.clean(html).to_string()
}

fn html_to_text(html: &str) -> String {
    let stripped = ammonia::Builder::empty().clean(html).to_string();
    stripped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// A message as `caller` may read it: its customer gets the customer's text in place of the
/// redacted one, services get both, and staff only the redacted text.
fn message_for(caller: &Principal, mut message: proto::Message) -> proto::Message {
    if caller.is_service() {
        return message;
    }
    let customer_text = std::mem::take(&mut message.customer_text);
    if caller.is_customer() && !customer_text.is_empty() {
        message.body_html = String::new();
        message.body_text = customer_text;
    }
    message
}

impl Ticketing {
    pub(crate) async fn add_message(
        &self,
        caller: &Principal,
        request: proto::AddMessageRequest,
    ) -> Result<proto::Message, ServiceError> {
        let key = model::idempotency_key(caller, &request.idempotency_key)?;
        let fingerprint = model::fingerprint(&request);
        let visibility = match Visibility::try_from(request.visibility) {
            Ok(Visibility::Unspecified) => Visibility::Public,
            Ok(visibility) => visibility,
            Err(_) => return Err(ServiceError::invalid_field("visibility", "must be public or internal")),
        };
        if caller.is_customer() && visibility == Visibility::Internal {
            return Err(ServiceError::permission_denied("customers cannot write internal notes"));
        }
        if !request.collaborator_ids.is_empty() && !caller.is_service() {
            return Err(ServiceError::permission_denied(
                "only services add collaborators with a message; update the ticket",
            )
            .with_field("collaborator_ids"));
        }
        let customer_text = model::optional_text("customer_text", &request.customer_text, model::MAX_BODY)?;
        let may_write_customer_text = caller.is_service() && visibility == Visibility::Public;
        if !customer_text.is_empty() && !may_write_customer_text {
            return Err(ServiceError::permission_denied("only services write customer_text, on public messages")
                .with_field("customer_text"));
        }
        let attachments = self.checked_attachments(&caller.tenant_id, "attachments", request.attachments).await?;
        let body_html = model::optional_text("body_html", &request.body_html, model::MAX_BODY)?;
        let body_html = sanitize(&body_html, &request.ticket_id, &attachments);
        let mut body_text = model::optional_text("body_text", &request.body_text, model::MAX_BODY)?;
        if body_text.trim().is_empty() {
            body_text = html_to_text(&body_html).trim().to_owned();
        }
        if body_text.is_empty() && attachments.is_empty() {
            return Err(ServiceError::invalid_field("body_text", "a message needs text, HTML or attachments"));
        }
        let (author_kind, author_id) = match request.author_customer_id.trim() {
            "" => (model::author_kind(caller), caller.subject.clone()),
            _ if !caller.is_service() => {
                return Err(ServiceError::permission_denied("only services write on a customer's behalf")
                    .with_field("author_customer_id"));
            }
            _ if visibility == Visibility::Internal => {
                return Err(ServiceError::invalid_field("author_customer_id", "customers write public messages only"));
            }
            id => (AuthorKind::Customer, id.to_owned()),
        };
        let now = now_micros();
        let message = proto::Message {
            id: new_id(),
            ticket_id: request.ticket_id.clone(),
            author_kind: author_kind as i32,
            author_id,
            visibility: visibility as i32,
            body_text,
            body_html,
            attachments,
            created_at: Some(micros_to_timestamp(now)),
            customer_text,
        };

        let mut tx = self.db.writer().begin().await?;
        let stored = load_for_update(&mut tx, &caller.tenant_id, &request.ticket_id).await?;
        let stored =
            stored.filter(|stored| visible_to(caller, stored.ticket.clone()).is_some()).ok_or_else(not_found)?;
        if let Some(key) = &key
            && let Some(existing) = replay(&mut tx, &caller.tenant_id, "message", key, &fingerprint).await?
        {
            return Ok(message_for(caller, store::message_by_id(&mut tx, &caller.tenant_id, &existing).await?));
        }
        if author_kind == AuthorKind::Customer
            && caller.is_service()
            && store::customer_by_id(&mut tx, &caller.tenant_id, &message.author_id).await?.is_none()
        {
            return Err(ServiceError::invalid_field("author_customer_id", "no such customer"));
        }
        let before = stored.ticket;
        let from = model::status(before.status, "status")?;
        if from == Status::Closed {
            return Err(ServiceError::failed_precondition(
                "ticket is closed; create a follow-up ticket with follow_up_of_id",
            ));
        }
        // A customer's reply brings a solved or pending ticket back to the team; an agent's first
        // public reply opens a new one.
        let to = match (author_kind, visibility, from) {
            (AuthorKind::Customer, _, Status::Solved | Status::Pending) => Status::Open,
            (AuthorKind::Agent, Visibility::Public, Status::New) => Status::Open,
            _ => from,
        };
        let mut after = before.clone();
        set_status(&mut after, to, now);
        let new: Vec<String> =
            request.collaborator_ids.into_iter().filter(|id| !before.collaborator_ids.contains(id)).collect();
        let copied =
            crate::customers::collaborators(&mut tx, &caller.tenant_id, "collaborator_ids", &after.requester_id, new)
                .await?;
        // Mail copies whoever it likes: past the limit, the newest are not added rather than the
        // message refused.
        let room = crate::customers::MAX_COLLABORATORS.saturating_sub(after.collaborator_ids.len());
        after.collaborator_ids.extend(copied.into_iter().take(room));
        after.version += 1;
        after.updated_at = Some(micros_to_timestamp(now));
        // Every consumer reads events: they carry the redacted text only.
        let published = proto::Message { customer_text: String::new(), ..message.clone() };
        let mut payloads =
            vec![Payload::MessageAdded(MessageAdded { ticket_id: after.id.clone(), message: Some(published) })];
        if from != to {
            payloads.push(Payload::TicketStatusChanged(TicketStatusChanged {
                ticket_id: after.id.clone(),
                from: from as i32,
                to: to as i32,
            }));
        }
        let mut event_seq = stored.event_seq;
        emit(&mut tx, caller, &after.id, &mut event_seq, now, payloads).await?;
        if !store::update_ticket(&mut tx, &caller.tenant_id, &after, before.version, event_seq).await? {
            return Err(ServiceError::conflict("ticket changed concurrently; retry"));
        }
        store::insert_message(&mut tx, &caller.tenant_id, &message).await?;
        let internal = visibility == Visibility::Internal;
        let document = Document::new(&caller.tenant_id, &after.id, &message.body_text, internal);
        store::add_search_terms(&mut tx, &[document]).await?;
        let changes: Vec<Change> = [
            Change::of("status", &model::status_name(from), &model::status_name(to))?,
            Change::of("collaborator_ids", &before.collaborator_ids, &after.collaborator_ids)?,
        ]
        .into_iter()
        .flatten()
        .collect();
        if !changes.is_empty() {
            record_changes(&mut tx, caller, author_kind, &after, &changes, now).await?;
        }
        if let Some(key) = &key {
            store::insert_idempotency_key(&mut tx, &caller.tenant_id, "message", key, &fingerprint, &message.id)
                .await?;
        }
        tx.commit().await?;
        self.events_written.notify_one();
        Ok(message_for(caller, message))
    }

    pub(crate) async fn get_message(
        &self,
        caller: &Principal,
        request: proto::GetMessageRequest,
    ) -> Result<proto::Message, ServiceError> {
        self.get_ticket(caller, &request.ticket_id).await?;
        let message = store::ticket_message(&self.db, &caller.tenant_id, &request.ticket_id, &request.message_id)
            .await?
            .filter(|message| !caller.is_customer() || message.visibility == Visibility::Public as i32)
            .ok_or_else(|| ServiceError::not_found("message"))?;
        Ok(message_for(caller, message))
    }

    pub(crate) async fn list_messages(
        &self,
        caller: &Principal,
        request: proto::ListMessagesRequest,
    ) -> Result<proto::ListMessagesResponse, ServiceError> {
        let page_size = model::page_size(request.page_size)?;
        self.get_ticket(caller, &request.ticket_id).await?;
        let after = model::parse_page_token(&request.page_token, "m", 2)?;
        let public_only = caller.is_customer();
        let messages = store::messages_page(
            &self.db,
            &caller.tenant_id,
            &request.ticket_id,
            public_only,
            after.as_deref(),
            page_size + 1,
        )
        .await?;
        let mut messages: Vec<proto::Message> =
            messages.into_iter().map(|message| message_for(caller, message)).collect();
        let next_page_token = model::finish_page(&mut messages, page_size, |last| {
            model::created_cursor("m", last.created_at.as_ref(), &last.id)
        });
        Ok(proto::ListMessagesResponse { messages, next_page_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_images_show_their_attachment_and_remote_ones_nothing() {
        let logo =
            proto::Attachment { sha256: "ab".repeat(32), content_id: "logo@acme".to_owned(), ..Default::default() };
        let html = r#"<p>보세요 <img src="cid:logo@acme" alt="logo"><img src="https://tracker.example/p.gif">
            <img src="CID:unknown"><a href="cid:logo@acme">link</a><a href="https://acme.test">site</a></p>"#;
        let clean = sanitize(html, "t1", &[logo]);
        assert!(
            clean.contains(&format!(r#"<img src="/v1/tickets/t1/attachments/{}" alt="logo">"#, "ab".repeat(32))),
            "{clean}"
        );
        assert!(!clean.contains("tracker.example"), "{clean}");
        assert!(!clean.to_lowercase().contains("cid:"), "{clean}");
        assert!(clean.contains(r#"href="https://acme.test""#), "{clean}");
    }
}
