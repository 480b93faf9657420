//! Saved replies (macros): shared with the tenant or personal, with `{{placeholders}}` filled from
//! the ticket and its requester.

use helpdesk_proto::ticketing::v1 as proto;
use helpdesk_runtime::{
    ServiceError,
    auth::Principal,
    time::{micros_to_timestamp, now_micros},
};

use crate::{
    Ticketing,
    model::{self, new_id},
    store,
};

impl Ticketing {
    pub(crate) async fn create_saved_reply(
        &self,
        caller: &Principal,
        request: proto::CreateSavedReplyRequest,
    ) -> Result<proto::SavedReply, ServiceError> {
        let now = now_micros();
        let reply = proto::SavedReply {
            id: new_id(),
            title: model::required_text("title", &request.title, 200)?,
            body: model::required_text("body", &request.body, 20_000)?,
            owner_id: if request.personal { caller.subject.clone() } else { String::new() },
            created_at: Some(micros_to_timestamp(now)),
        };
        store::insert_saved_reply(&self.db, &caller.tenant_id, &reply).await?;
        Ok(reply)
    }

    /// The tenant's shared replies and the caller's personal ones.
    pub(crate) async fn list_saved_replies(&self, caller: &Principal) -> Result<Vec<proto::SavedReply>, ServiceError> {
        store::saved_replies(&self.db, &caller.tenant_id, &caller.subject).await
    }

    pub(crate) async fn delete_saved_reply(&self, caller: &Principal, id: &str) -> Result<(), ServiceError> {
        // Shared replies belong to admins; personal ones to their owner.
        let admin = caller.require_admin().is_ok();
        if !store::delete_saved_reply(&self.db, &caller.tenant_id, id, &caller.subject, admin).await? {
            return Err(ServiceError::not_found("saved reply"));
        }
        Ok(())
    }

    pub(crate) async fn render_saved_reply(
        &self,
        caller: &Principal,
        request: proto::RenderSavedReplyRequest,
    ) -> Result<proto::RenderSavedReplyResponse, ServiceError> {
        let reply = self
            .list_saved_replies(caller)
            .await?
            .into_iter()
            .find(|reply| reply.id == request.saved_reply_id)
            .ok_or_else(|| ServiceError::invalid_field("saved_reply_id", "no such saved reply"))?;
        let ticket = self
            .get_ticket(caller, &request.ticket_id)
            .await
            .map_err(|_| ServiceError::invalid_field("ticket_id", "no such ticket"))?;
        let customer = self.get_customer(caller, &ticket.requester_id).await.ok();
        let (body, unresolved) = render(&reply.body, |name| {
            let customer = customer.as_ref();
            match name {
                "customer.name" => customer.map(|c| c.name.clone()),
                "customer.first_name" => customer.and_then(|c| c.name.split_whitespace().next().map(str::to_owned)),
                "customer.email" => customer.and_then(|c| c.emails.first().cloned()),
                "customer.organization" => customer.map(|c| c.organization.clone()),
                "ticket.id" => Some(ticket.id.clone()),
                "ticket.subject" => Some(ticket.subject.clone()),
                "ticket.status" => {
                    proto::Status::try_from(ticket.status).ok().map(|s| model::status_name(s).to_owned())
                }
                "agent.id" => Some(caller.subject.clone()),
                other => {
                    other.strip_prefix("ticket.external_refs.").and_then(|key| ticket.external_refs.get(key).cloned())
                }
            }
            .filter(|value| !value.is_empty())
        });
        Ok(proto::RenderSavedReplyResponse { body, unresolved })
    }
}

/// Replaces each `{{ name }}` with `lookup(name)`; unknown names stay as written and are reported.
fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(template.len());
    let mut unresolved = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return (out, unresolved);
        };
        let name = after[..end].trim();
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                out.push_str(&rest[start..start + 2 + end + 2]);
                if !unresolved.iter().any(|known| known == name) {
                    unresolved.push(name.to_owned());
                }
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    (out, unresolved)
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_reported() {
        let (body, unresolved) =
            render("안녕하세요 {{ customer.name }}님, 주문 {{ticket.external_refs.order_id}} {{x}}", |name| {
                match name {
                    "customer.name" => Some("김민수".to_owned()),
                    "ticket.external_refs.order_id" => Some("A-1".to_owned()),
                    _ => None,
                }
            });
        assert_eq!(body, "안녕하세요 김민수님, 주문 A-1 {{x}}");
        assert_eq!(unresolved, ["x"]);
    }

    #[test]
    fn an_unclosed_placeholder_is_left_alone() {
        assert_eq!(render("hi {{name", |_| None).0, "hi {{name");
    }
}
