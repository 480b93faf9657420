use axum::{
    Extension, Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use helpdesk_proto::ticketing::v1 as proto;

use super::{idempotency_key, non_empty};
use crate::{
    AppState,
    auth::Caller,
    dto::{self, AddMessage, CreateTicket, ListTicketsQuery, MergeTickets, PageQuery, UpdateTicket},
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Open a ticket. Retries with the same `Idempotency-Key` return the first ticket.
#[utoipa::path(post, path = "/v1/tickets", tag = "tickets", request_body = CreateTicket,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = dto::Ticket), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTicket>,
) -> Result<(StatusCode, Json<dto::Ticket>), ApiError> {
    let request = body.into_proto(idempotency_key(&headers)?)?;
    let ticket = state.tickets.clone().create_ticket(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(ticket.into())))
}

#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "tickets",
    responses((status = 200, body = dto::Ticket), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<dto::Ticket> {
    let ticket = state.tickets.clone().get_ticket(caller.request(proto::GetTicketRequest { id })).await?.into_inner();
    Ok(Json(ticket.into()))
}

/// Change fields; `expected_version` must be the version you read, or 409 is returned.
#[utoipa::path(patch, path = "/v1/tickets/{id}", tag = "tickets", request_body = UpdateTicket,
    responses((status = 200, body = dto::Ticket), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateTicket>,
) -> ApiResult<dto::Ticket> {
    let request = body.into_proto(id)?;
    let ticket = state.tickets.clone().update_ticket(caller.request(request)).await?.into_inner();
    Ok(Json(ticket.into()))
}

/// Filter, search (Korean and English) and page through tickets.
#[utoipa::path(get, path = "/v1/tickets", tag = "tickets", params(ListTicketsQuery),
    responses((status = 200, body = dto::TicketPage), (status = 400, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListTicketsQuery>,
) -> ApiResult<dto::TicketPage> {
    let response = state.tickets.clone().list_tickets(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(response.into()))
}

/// Reply publicly or add an internal note. A customer reply reopens a solved ticket.
#[utoipa::path(post, path = "/v1/tickets/{id}/messages", tag = "tickets", request_body = AddMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = dto::Message), (status = 422, body = ErrorBody)))]
pub(crate) async fn add_message(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AddMessage>,
) -> Result<(StatusCode, Json<dto::Message>), ApiError> {
    let request = proto::AddMessageRequest {
        ticket_id,
        idempotency_key: idempotency_key(&headers)?,
        visibility: body.visibility.map(i32::from).unwrap_or_default(),
        body_text: body.body_text,
        body_html: body.body_html,
        attachments: body.attachments.into_iter().map(proto::Attachment::from).collect(),
        // Written by services only, over gRPC.
        customer_text: String::new(),
    };
    let message = state.tickets.clone().add_message(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(message.into())))
}

#[utoipa::path(get, path = "/v1/tickets/{id}/messages", tag = "tickets", params(PageQuery),
    responses((status = 200, body = dto::MessagePage)))]
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<dto::MessagePage> {
    let request = proto::ListMessagesRequest {
        ticket_id,
        page_size: page.page_size.unwrap_or_default(),
        page_token: page.page_token.unwrap_or_default(),
    };
    let response = state.tickets.clone().list_messages(caller.request(request)).await?.into_inner();
    Ok(Json(dto::MessagePage {
        messages: response.messages.into_iter().map(dto::Message::from).collect(),
        next_page_token: non_empty(response.next_page_token),
    }))
}

/// Every field change, oldest first.
#[utoipa::path(get, path = "/v1/tickets/{id}/history", tag = "tickets", responses((status = 200, body = dto::History)))]
pub(crate) async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> ApiResult<dto::History> {
    let request = proto::ListTicketHistoryRequest { ticket_id };
    let response = state.tickets.clone().list_ticket_history(caller.request(request)).await?.into_inner();
    Ok(Json(dto::History { changes: response.changes.into_iter().map(dto::TicketChange::from).collect() }))
}

/// Merge this ticket into `target_id`: messages move, this ticket closes with a link.
#[utoipa::path(post, path = "/v1/tickets/{id}/merge", tag = "tickets", request_body = MergeTickets,
    responses((status = 200, body = dto::Ticket)))]
pub(crate) async fn merge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(source_id): Path<String>,
    JsonBody(body): JsonBody<MergeTickets>,
) -> ApiResult<dto::Ticket> {
    let request = proto::MergeTicketsRequest { source_id, target_id: body.target_id };
    let ticket = state.tickets.clone().merge_tickets(caller.request(request)).await?.into_inner();
    Ok(Json(ticket.into()))
}

#[utoipa::path(post, path = "/v1/tickets/{id}/links", tag = "tickets", request_body = dto::LinkTickets,
    responses((status = 200, body = dto::Ticket)))]
pub(crate) async fn link(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    JsonBody(body): JsonBody<dto::LinkTickets>,
) -> ApiResult<dto::Ticket> {
    let request = proto::LinkTicketsRequest { ticket_id, other_ticket_id: body.other_ticket_id };
    let ticket = state.tickets.clone().link_tickets(caller.request(request)).await?.into_inner();
    Ok(Json(ticket.into()))
}
