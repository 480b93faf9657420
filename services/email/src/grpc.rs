//! Thin gRPC adapters: authenticate, check the role each method needs, call the domain, map
//! errors. Mailboxes are an admin's; what arrived, staff may read; intake is for services (the
//! gateway's webhook, which carries the mailbox's signature).

use std::sync::Arc;

use helpdesk_proto::email::v1::{
    self as proto,
    email_service_server::{EmailService, EmailServiceServer},
    mail_intake_service_server::{MailIntakeService, MailIntakeServiceServer},
};
use helpdesk_runtime::{
    ServiceError,
    grpc::{Needs, handle_as},
    time::micros_to_timestamp,
};
use tonic::{Request, Response, Status};

use crate::{Email, store};

/// The largest message any mailbox takes, plus room for the request around it.
const MAX_MAIL_BYTES: usize = 50 * 1024 * 1024 + 64 * 1024;

pub(crate) fn add_routes(email: &Arc<Email>, routes: &mut tonic::service::RoutesBuilder) {
    routes
        .add_service(EmailServiceServer::new(Api(email.clone())))
        // Whole messages travel in DeliverMail: allow the largest a mailbox may take.
        .add_service(MailIntakeServiceServer::new(Api(email.clone())).max_decoding_message_size(MAX_MAIL_BYTES));
}

struct Api(Arc<Email>);

#[tonic::async_trait]
impl EmailService for Api {
    async fn upsert_mailbox(
        &self,
        request: Request<proto::UpsertMailboxRequest>,
    ) -> Result<Response<proto::Mailbox>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.upsert_mailbox(&caller.tenant_id, request).await
        })
        .await
    }

    async fn get_mailbox(
        &self,
        request: Request<proto::GetMailboxRequest>,
    ) -> Result<Response<proto::Mailbox>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.get_mailbox(&caller.tenant_id, &request.mailbox_id).await
        })
        .await
    }

    async fn list_mailboxes(
        &self,
        request: Request<proto::ListMailboxesRequest>,
    ) -> Result<Response<proto::ListMailboxesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            Ok(proto::ListMailboxesResponse { mailboxes: self.0.list_mailboxes(&caller.tenant_id).await? })
        })
        .await
    }

    async fn delete_mailbox(
        &self,
        request: Request<proto::DeleteMailboxRequest>,
    ) -> Result<Response<proto::DeleteMailboxResponse>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.delete_mailbox(&caller.tenant_id, &request.mailbox_id).await?;
            Ok(proto::DeleteMailboxResponse {})
        })
        .await
    }

    async fn list_inbound_mail(
        &self,
        request: Request<proto::ListInboundMailRequest>,
    ) -> Result<Response<proto::ListInboundMailResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.get_mailbox(&caller.tenant_id, &request.mailbox_id).await?;
            let limit = match request.page_size {
                0 => 50,
                size @ 1..=200 => i64::from(size),
                _ => return Err(ServiceError::invalid_field("page_size", "must be 1 to 200")),
            };
            let after = match request.page_token.as_str() {
                "" => None,
                token => Some(
                    page_token(token)
                        .ok_or_else(|| ServiceError::invalid_field("page_token", "not a token this list gave"))?,
                ),
            };
            let rows =
                store::mail_page(&self.0.db, &caller.tenant_id, &request.mailbox_id, after, request.pending, limit + 1)
                    .await?;
            let more = rows.len() as i64 > limit;
            let mail: Vec<proto::InboundMail> = rows.into_iter().take(limit as usize).map(inbound).collect();
            let next_page_token = match (more, mail.last()) {
                (true, Some(last)) => {
                    let at = last.received_at.as_ref().map_or(0, helpdesk_runtime::time::timestamp_to_micros);
                    format!("{at}.{}", last.id)
                }
                _ => String::new(),
            };
            Ok(proto::ListInboundMailResponse { mail, next_page_token })
        })
        .await
    }

    async fn list_deliveries(
        &self,
        request: Request<proto::ListDeliveriesRequest>,
    ) -> Result<Response<proto::ListDeliveriesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            let rows = store::ticket_deliveries(&self.0.db, &caller.tenant_id, &request.ticket_id).await?;
            Ok(proto::ListDeliveriesResponse { deliveries: rows.into_iter().map(delivery).collect() })
        })
        .await
    }
}

#[tonic::async_trait]
impl MailIntakeService for Api {
    async fn deliver_mail(
        &self,
        request: Request<proto::DeliverMailRequest>,
    ) -> Result<Response<proto::DeliverMailResponse>, Status> {
        handle_as(request, Needs::Service, |caller, request| async move {
            let accepted = self.0.deliver_mail(&caller.tenant_id, request).await?;
            Ok(proto::DeliverMailResponse { mail_id: accepted.mail_id, outcome: accepted.outcome as i32 })
        })
        .await
    }
}

fn page_token(token: &str) -> Option<(i64, String)> {
    let (at, id) = token.split_once('.')?;
    Some((at.parse().ok()?, id.to_owned()))
}

fn delivery(row: store::DeliveryRow) -> proto::Delivery {
    proto::Delivery {
        message_id: row.message_id,
        ticket_id: row.ticket_id,
        mailbox_id: row.mailbox_id,
        recipient: row.recipient,
        state: i32::try_from(row.state).unwrap_or_default(),
        attempts: i32::try_from(row.attempts).unwrap_or(i32::MAX),
        last_error: row.last_error,
        email_message_id: row.email_message_id,
        queued_at: Some(micros_to_timestamp(row.queued_at)),
        sent_at: row.sent_at.map(micros_to_timestamp),
    }
}

fn inbound(row: store::MailRow) -> proto::InboundMail {
    proto::InboundMail {
        id: row.id,
        mailbox_id: row.mailbox_id,
        source: i32::try_from(row.source).unwrap_or_default(),
        message_id: row.message_id,
        from: row.sender,
        subject: row.subject,
        size_bytes: row.size_bytes,
        outcome: i32::try_from(row.outcome).unwrap_or_default(),
        reason: row.reason,
        ticket_id: row.ticket_id,
        received_at: Some(micros_to_timestamp(row.received_at)),
    }
}
