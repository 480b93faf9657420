//! Thin gRPC adapters: authenticate, check the role each method needs, call the domain, map errors.

use std::sync::Arc;

use helpdesk_proto::ticketing::v1::{
    self as proto,
    attachment_service_server::{AttachmentService, AttachmentServiceServer},
    custom_field_service_server::{CustomFieldService, CustomFieldServiceServer},
    customer_service_server::{CustomerService, CustomerServiceServer},
    saved_reply_service_server::{SavedReplyService, SavedReplyServiceServer},
    ticket_service_server::{TicketService, TicketServiceServer},
};
use helpdesk_runtime::grpc::{Needs, handle, handle_as};
use tonic::{Request, Response, Status};

use crate::Ticketing;

pub(crate) fn add_routes(ticketing: &Arc<Ticketing>, routes: &mut tonic::service::RoutesBuilder) {
    routes
        .add_service(TicketServiceServer::new(Api(ticketing.clone())))
        .add_service(
            // A file travels in one message: room for the largest with its name and type.
            AttachmentServiceServer::new(Api(ticketing.clone()))
                .max_decoding_message_size(ticketing.attachments.max_file_bytes as usize + 64 * 1024),
        )
        .add_service(CustomerServiceServer::new(Api(ticketing.clone())))
        .add_service(SavedReplyServiceServer::new(Api(ticketing.clone())))
        .add_service(CustomFieldServiceServer::new(Api(ticketing.clone())));
}

struct Api(Arc<Ticketing>);

#[tonic::async_trait]
impl AttachmentService for Api {
    async fn upload_attachment(
        &self,
        request: Request<proto::UploadAttachmentRequest>,
    ) -> Result<Response<proto::Attachment>, Status> {
        handle(request, |caller, request| async move { self.0.upload_attachment(&caller, request).await }).await
    }

    async fn get_attachment(
        &self,
        request: Request<proto::GetAttachmentRequest>,
    ) -> Result<Response<proto::AttachmentContent>, Status> {
        handle(request, |caller, request| async move { self.0.get_attachment(&caller, request).await }).await
    }
}

#[tonic::async_trait]
impl TicketService for Api {
    async fn create_ticket(
        &self,
        request: Request<proto::CreateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        handle(request, |caller, request| async move { self.0.create_ticket(&caller, request).await }).await
    }

    async fn get_ticket(&self, request: Request<proto::GetTicketRequest>) -> Result<Response<proto::Ticket>, Status> {
        handle(request, |caller, request| async move { self.0.get_ticket(&caller, &request.id).await }).await
    }

    async fn update_ticket(
        &self,
        request: Request<proto::UpdateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.update_ticket(&caller, request).await })
            .await
    }

    async fn list_tickets(
        &self,
        request: Request<proto::ListTicketsRequest>,
    ) -> Result<Response<proto::ListTicketsResponse>, Status> {
        handle(request, |caller, request| async move { self.0.list_tickets(&caller, request).await }).await
    }

    async fn merge_tickets(
        &self,
        request: Request<proto::MergeTicketsRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.merge_tickets(&caller, request).await })
            .await
    }

    async fn link_tickets(
        &self,
        request: Request<proto::LinkTicketsRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.link_tickets(&caller, request).await })
            .await
    }

    async fn add_message(
        &self,
        request: Request<proto::AddMessageRequest>,
    ) -> Result<Response<proto::Message>, Status> {
        handle(request, |caller, request| async move { self.0.add_message(&caller, request).await }).await
    }

    async fn get_message(
        &self,
        request: Request<proto::GetMessageRequest>,
    ) -> Result<Response<proto::Message>, Status> {
        handle(request, |caller, request| async move { self.0.get_message(&caller, request).await }).await
    }

    async fn list_messages(
        &self,
        request: Request<proto::ListMessagesRequest>,
    ) -> Result<Response<proto::ListMessagesResponse>, Status> {
        handle(request, |caller, request| async move { self.0.list_messages(&caller, request).await }).await
    }

    async fn list_ticket_history(
        &self,
        request: Request<proto::ListTicketHistoryRequest>,
    ) -> Result<Response<proto::ListTicketHistoryResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            let changes = self.0.list_history(&caller, &request.ticket_id).await?;
            Ok(proto::ListTicketHistoryResponse { changes })
        })
        .await
    }
}

#[tonic::async_trait]
impl CustomerService for Api {
    async fn create_customer(
        &self,
        request: Request<proto::CreateCustomerRequest>,
    ) -> Result<Response<proto::Customer>, Status> {
        handle_as(
            request,
            Needs::Staff,
            |caller, request| async move { self.0.create_customer(&caller, request).await },
        )
        .await
    }

    async fn get_customer(
        &self,
        request: Request<proto::GetCustomerRequest>,
    ) -> Result<Response<proto::Customer>, Status> {
        handle(request, |caller, request| async move { self.0.get_customer(&caller, &request.id).await }).await
    }

    async fn update_customer(
        &self,
        request: Request<proto::UpdateCustomerRequest>,
    ) -> Result<Response<proto::Customer>, Status> {
        handle_as(
            request,
            Needs::Staff,
            |caller, request| async move { self.0.update_customer(&caller, request).await },
        )
        .await
    }

    async fn list_customers(
        &self,
        request: Request<proto::ListCustomersRequest>,
    ) -> Result<Response<proto::ListCustomersResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move { self.0.list_customers(&caller, request).await })
            .await
    }

    async fn set_customer_flag(
        &self,
        request: Request<proto::SetCustomerFlagRequest>,
    ) -> Result<Response<proto::Customer>, Status> {
        handle_as(
            request,
            Needs::Staff,
            |caller, request| async move { self.0.set_customer_flag(&caller, request).await },
        )
        .await
    }

    async fn find_or_create_customer(
        &self,
        request: Request<proto::FindOrCreateCustomerRequest>,
    ) -> Result<Response<proto::Customer>, Status> {
        handle_as(request, Needs::Service, |caller, request| async move {
            self.0.find_or_create_customer(&caller, request).await
        })
        .await
    }
}

#[tonic::async_trait]
impl SavedReplyService for Api {
    async fn create_saved_reply(
        &self,
        request: Request<proto::CreateSavedReplyRequest>,
    ) -> Result<Response<proto::SavedReply>, Status> {
        handle_as(
            request,
            Needs::Staff,
            |caller, request| async move { self.0.create_saved_reply(&caller, request).await },
        )
        .await
    }

    async fn list_saved_replies(
        &self,
        request: Request<proto::ListSavedRepliesRequest>,
    ) -> Result<Response<proto::ListSavedRepliesResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, _| async move {
            let saved_replies = self.0.list_saved_replies(&caller).await?;
            Ok(proto::ListSavedRepliesResponse { saved_replies })
        })
        .await
    }

    async fn delete_saved_reply(
        &self,
        request: Request<proto::DeleteSavedReplyRequest>,
    ) -> Result<Response<proto::DeleteSavedReplyResponse>, Status> {
        handle_as(request, Needs::Staff, |caller, request| async move {
            self.0.delete_saved_reply(&caller, &request.id).await?;
            Ok(proto::DeleteSavedReplyResponse {})
        })
        .await
    }

    async fn render_saved_reply(
        &self,
        request: Request<proto::RenderSavedReplyRequest>,
    ) -> Result<Response<proto::RenderSavedReplyResponse>, Status> {
        handle(request, |caller, request| async move { self.0.render_saved_reply(&caller, request).await }).await
    }
}

#[tonic::async_trait]
impl CustomFieldService for Api {
    async fn define_custom_field(
        &self,
        request: Request<proto::DefineCustomFieldRequest>,
    ) -> Result<Response<proto::CustomFieldDefinition>, Status> {
        handle_as(request, Needs::Admin, |caller, request| async move {
            self.0.define_custom_field(&caller, request.field).await
        })
        .await
    }

    async fn list_custom_fields(
        &self,
        request: Request<proto::ListCustomFieldsRequest>,
    ) -> Result<Response<proto::ListCustomFieldsResponse>, Status> {
        handle(request, |caller, _| async move {
            caller.require_staff()?;
            let fields = self.0.custom_fields(&caller.tenant_id).await?;
            Ok(proto::ListCustomFieldsResponse { fields })
        })
        .await
    }
}
