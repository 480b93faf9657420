//! Answer suggestions for a ticket: the one knowledge route that needs two services, since the
//! caller's own read of the ticket is what lets them see its suggestions.

use axum::{
    Extension, Json,
    extract::{Path, State},
};
use helpdesk_proto::{knowledge::v1 as proto, ticketing::v1 as ticketing};

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, ErrorBody},
    rest::json_of,
};

/// Articles that most likely answer the ticket, from its subject and description. Tickets no
/// article answers show up in the content gaps.
#[utoipa::path(get, path = "/v1/tickets/{id}/suggestions", tag = "knowledge base",
    responses((status = 200, body = ref("#/components/schemas/SuggestResponse")), (status = 404, body = ErrorBody)))]
pub(crate) async fn ticket_suggestions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = ticketing::GetTicketRequest { id: ticket_id.clone() };
    let ticket = state.tickets.clone().get_ticket(caller.request(request)).await?.into_inner();
    let request = proto::SuggestRequest {
        subject: ticket.subject,
        body: ticket.description,
        locale: String::new(),
        limit: 0,
        ticket_id,
    };
    let response = state.knowledge.clone().suggest(caller.request(request)).await?.into_inner();
    json_of(&response)
}
