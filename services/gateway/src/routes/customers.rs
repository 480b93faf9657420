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
    dto::{self, CreateCustomer, ListCustomersQuery, PageQuery, SetFlag, UpdateCustomer},
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = dto::Customer), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateCustomer>,
) -> Result<(StatusCode, Json<dto::Customer>), ApiError> {
    let request = proto::CreateCustomerRequest {
        idempotency_key: idempotency_key(&headers)?,
        name: body.name,
        emails: body.emails,
        phones: body.phones,
        language: body.language,
        time_zone: body.time_zone,
        organization: body.organization,
        external_ids: body.external_ids,
        tier: body.tier,
        vip: body.vip,
        notes: body.notes,
    };
    let customer = state.customers.clone().create_customer(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(customer.into())))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", responses((status = 200, body = dto::Customer)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<dto::Customer> {
    let customer =
        state.customers.clone().get_customer(caller.request(proto::GetCustomerRequest { id })).await?.into_inner();
    Ok(Json(customer.into()))
}

#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", request_body = UpdateCustomer,
    responses((status = 200, body = dto::Customer), (status = 409, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateCustomer>,
) -> ApiResult<dto::Customer> {
    let list = |values: Option<Vec<String>>| values.map(|values| proto::StringList { values });
    let request = proto::UpdateCustomerRequest {
        id,
        expected_version: body.expected_version,
        name: body.name,
        emails: list(body.emails),
        phones: list(body.phones),
        language: body.language,
        time_zone: body.time_zone,
        organization: body.organization,
        external_ids: body.external_ids,
        tier: body.tier,
        vip: body.vip,
        notes: body.notes,
    };
    let customer = state.customers.clone().update_customer(caller.request(request)).await?.into_inner();
    Ok(Json(customer.into()))
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListCustomersQuery),
    responses((status = 200, body = dto::CustomerPage)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListCustomersQuery>,
) -> ApiResult<dto::CustomerPage> {
    let request = proto::ListCustomersRequest {
        query: query.q.unwrap_or_default(),
        page_size: query.page_size.unwrap_or_default(),
        page_token: query.page_token.unwrap_or_default(),
        flagged_only: query.flagged_only.unwrap_or_default(),
    };
    let response = state.customers.clone().list_customers(caller.request(request)).await?.into_inner();
    Ok(Json(dto::CustomerPage {
        customers: response.customers.into_iter().map(dto::Customer::from).collect(),
        next_page_token: non_empty(response.next_page_token),
    }))
}

/// Flag a customer so that every later handler is warned (abusive, legal threat…).
#[utoipa::path(put, path = "/v1/customers/{id}/flag", tag = "customers", request_body = SetFlag,
    responses((status = 200, body = dto::Customer)))]
pub(crate) async fn set_flag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(customer_id): Path<String>,
    JsonBody(body): JsonBody<SetFlag>,
) -> ApiResult<dto::Customer> {
    let request = proto::SetCustomerFlagRequest { customer_id, kind: body.kind.into(), reason: body.reason };
    let customer = state.customers.clone().set_customer_flag(caller.request(request)).await?.into_inner();
    Ok(Json(customer.into()))
}

#[utoipa::path(delete, path = "/v1/customers/{id}/flag", tag = "customers", responses((status = 200, body = dto::Customer)))]
pub(crate) async fn clear_flag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(customer_id): Path<String>,
) -> ApiResult<dto::Customer> {
    let request = proto::SetCustomerFlagRequest { customer_id, kind: 0, reason: String::new() };
    let customer = state.customers.clone().set_customer_flag(caller.request(request)).await?.into_inner();
    Ok(Json(customer.into()))
}

/// The customer's ticket history, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/tickets", tag = "customers", params(PageQuery),
    responses((status = 200, body = dto::TicketPage)))]
pub(crate) async fn tickets(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(requester_id): Path<String>,
    QueryParams(page): QueryParams<PageQuery>,
) -> ApiResult<dto::TicketPage> {
    let request = proto::ListTicketsRequest {
        requester_id,
        page_size: page.page_size.unwrap_or_default(),
        page_token: page.page_token.unwrap_or_default(),
        ..Default::default()
    };
    let response = state.tickets.clone().list_tickets(caller.request(request)).await?.into_inner();
    Ok(Json(response.into()))
}
