//! Who handles which ticket: work items, escalations, agents, queues and staffing.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use helpdesk_proto::routing::v1 as proto;

use crate::{
    AppState,
    auth::Caller,
    dto::{
        self, AssignTicket, EscalateTicket, ForecastStaffing, ListAgentsQuery, SetPresence, TransferTicket,
        UpsertAgent, UpsertQueue,
    },
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The ticket's place in routing: its work item, SLA clocks and expected wait.
#[utoipa::path(get, path = "/v1/tickets/{id}/routing", tag = "routing",
    responses((status = 200, body = dto::TicketRouting), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn ticket_routing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> ApiResult<dto::TicketRouting> {
    let (mut routing, mut waits, mut sla) = (state.routing.clone(), state.routing.clone(), state.sla.clone());
    let (item, wait, ticket_sla) = tokio::try_join!(
        routing.get_work_item(caller.request(proto::GetWorkItemRequest { ticket_id: ticket_id.clone() })),
        waits.estimate_wait(caller.request(proto::EstimateWaitRequest { ticket_id: ticket_id.clone() })),
        sla.get_ticket_sla(caller.request(proto::GetTicketSlaRequest { ticket_id })),
    )?;
    Ok(Json(dto::TicketRouting {
        work_item: item.into_inner().into(),
        sla: ticket_sla.into_inner().into(),
        wait: wait.into_inner().into(),
    }))
}

/// The ticket's escalation history, oldest first.
#[utoipa::path(get, path = "/v1/tickets/{id}/escalations", tag = "routing",
    responses((status = 200, body = dto::EscalationList)))]
pub(crate) async fn list_escalations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> ApiResult<dto::EscalationList> {
    let request = proto::ListEscalationsRequest { ticket_id };
    let response = state.sla.clone().list_escalations(caller.request(request)).await?.into_inner();
    Ok(Json(dto::EscalationList { escalations: response.escalations.into_iter().map(dto::Escalation::from).collect() }))
}

/// Escalate by hand, with a reason; the manual escalation rules' actions apply.
#[utoipa::path(post, path = "/v1/tickets/{id}/escalations", tag = "routing", request_body = EscalateTicket,
    responses((status = 201, body = dto::Escalation), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn escalate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    JsonBody(body): JsonBody<EscalateTicket>,
) -> Result<(StatusCode, Json<dto::Escalation>), ApiError> {
    let request = proto::EscalateTicketRequest { ticket_id, reason: body.reason };
    let escalation = state.sla.clone().escalate_ticket(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(escalation.into())))
}

/// Assign the ticket to a named agent, regardless of queue order.
#[utoipa::path(post, path = "/v1/tickets/{id}/assignment", tag = "routing", request_body = AssignTicket,
    responses((status = 200, body = dto::WorkItem), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn assign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    JsonBody(body): JsonBody<AssignTicket>,
) -> ApiResult<dto::WorkItem> {
    let request = proto::AssignTicketRequest { ticket_id, agent_id: body.agent_id };
    let item = state.routing.clone().assign_ticket(caller.request(request)).await?.into_inner();
    Ok(Json(item.into()))
}

/// Put an assigned ticket back in its queue.
#[utoipa::path(delete, path = "/v1/tickets/{id}/assignment", tag = "routing",
    responses((status = 200, body = dto::WorkItem), (status = 404, body = ErrorBody)))]
pub(crate) async fn unassign(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> ApiResult<dto::WorkItem> {
    let request = proto::UnassignTicketRequest { ticket_id };
    let item = state.routing.clone().unassign_ticket(caller.request(request)).await?.into_inner();
    Ok(Json(item.into()))
}

/// Hand the ticket to another agent or queue; the note is recorded on the ticket.
#[utoipa::path(post, path = "/v1/tickets/{id}/transfer", tag = "routing", request_body = TransferTicket,
    responses((status = 200, body = dto::WorkItem), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn transfer(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
    JsonBody(body): JsonBody<TransferTicket>,
) -> ApiResult<dto::WorkItem> {
    let request = proto::TransferTicketRequest {
        ticket_id,
        to_agent_id: body.to_agent_id,
        to_queue_id: body.to_queue_id,
        note: body.note,
    };
    let item = state.routing.clone().transfer_ticket(caller.request(request)).await?.into_inner();
    Ok(Json(item.into()))
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(ListAgentsQuery),
    responses((status = 200, body = dto::AgentList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListAgentsQuery>,
) -> ApiResult<dto::AgentList> {
    let response = state.routing.clone().list_agents(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(dto::AgentList { agents: response.agents.into_iter().map(dto::Agent::from).collect() }))
}

/// Create or replace an agent's profile; presence and current work are kept. Admins only.
#[utoipa::path(put, path = "/v1/agents/{id}", tag = "agents", request_body = UpsertAgent,
    responses((status = 200, body = dto::Agent), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn upsert_agent(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpsertAgent>,
) -> ApiResult<dto::Agent> {
    let agent = state.routing.clone().upsert_agent(caller.request(body.into_proto(id))).await?.into_inner();
    Ok(Json(agent.into()))
}

/// Go online, away or offline. Going offline hands open chat and phone work back to its queue.
/// Agents set only their own presence; admins anyone's.
#[utoipa::path(post, path = "/v1/agents/{id}/presence", tag = "agents", request_body = SetPresence,
    responses((status = 200, body = dto::Agent), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_presence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(agent_id): Path<String>,
    JsonBody(body): JsonBody<SetPresence>,
) -> ApiResult<dto::Agent> {
    let request = proto::SetPresenceRequest { agent_id, presence: body.presence.into() };
    let agent = state.routing.clone().set_presence(caller.request(request)).await?.into_inner();
    Ok(Json(agent.into()))
}

#[utoipa::path(get, path = "/v1/queues", tag = "queues", responses((status = 200, body = dto::QueueList)))]
pub(crate) async fn list_queues(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::QueueList> {
    let response = state.routing.clone().list_queues(caller.request(proto::ListQueuesRequest {})).await?.into_inner();
    Ok(Json(dto::QueueList { queues: response.queues.into_iter().map(dto::Queue::from).collect() }))
}

/// Create or replace a queue. Overflow chains must not loop. Admins only.
#[utoipa::path(put, path = "/v1/queues/{id}", tag = "queues", request_body = UpsertQueue,
    responses((status = 200, body = dto::Queue), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn upsert_queue(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpsertQueue>,
) -> ApiResult<dto::Queue> {
    let queue = state.routing.clone().upsert_queue(caller.request(body.into_proto(id))).await?.into_inner();
    Ok(Json(queue.into()))
}

/// Depth, agents available and expected wait of a queue.
#[utoipa::path(get, path = "/v1/queues/{id}/stats", tag = "queues",
    responses((status = 200, body = dto::QueueStats), (status = 404, body = ErrorBody)))]
pub(crate) async fn queue_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(queue_id): Path<String>,
) -> ApiResult<dto::QueueStats> {
    let request = proto::GetQueueStatsRequest { queue_id };
    let stats = state.routing.clone().get_queue_stats(caller.request(request)).await?.into_inner();
    Ok(Json(stats.into()))
}

/// Agents needed per interval for a contact forecast (Erlang C), for example a holiday peak.
#[utoipa::path(post, path = "/v1/staffing/forecast", tag = "staffing", request_body = ForecastStaffing,
    responses((status = 200, body = dto::StaffingForecast), (status = 400, body = ErrorBody)))]
pub(crate) async fn forecast_staffing(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<ForecastStaffing>,
) -> ApiResult<dto::StaffingForecast> {
    let request = proto::ForecastStaffingRequest::from(body);
    let response = state.routing.clone().forecast_staffing(caller.request(request)).await?.into_inner();
    Ok(Json(response.into()))
}
