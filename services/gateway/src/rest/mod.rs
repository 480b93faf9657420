//! REST derived from the contracts: every method with a `google.api.http` binding becomes a route
//! that turns the request (path, query string, headers, JSON body) into the method's protobuf
//! message, calls the service over gRPC with the caller's credentials, and answers with the
//! response as JSON. Nothing here knows a resource; the protos say it all.

mod contract;
mod json;
pub(crate) mod openapi;

use std::{collections::HashMap, sync::LazyLock};

use axum::{
    Json, Router,
    extract::{FromRequestParts, RawPathParams, Request},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::MethodFilter,
};
use helpdesk_runtime::ErrorKind;
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

pub(crate) use contract::Contract;
use contract::{Binding, Body};

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, body_bytes, declares_json, parse_json},
};

static CONTRACT: LazyLock<Result<Contract, String>> =
    LazyLock::new(|| Contract::load(helpdesk_proto::FILE_DESCRIPTOR_SET));

/// The contract the gateway serves; an error means the build's descriptor set is broken.
pub(crate) fn contract() -> Result<&'static Contract, String> {
    CONTRACT.as_ref().map_err(Clone::clone)
}

/// The routes of every binding, each calling the service of its package (`helpdesk.<package>.v1`)
/// over `channels[package]`.
pub(crate) fn router(channels: &HashMap<&str, Channel>) -> Result<Router<AppState>, String> {
    let contract = contract()?;
    let mut routes: HashMap<&str, axum::routing::MethodRouter<AppState>> = HashMap::new();
    for binding in &contract.bindings {
        let package = binding.method.parent_service().package_name();
        let backend = package.split('.').nth(1).unwrap_or_default();
        let channel =
            channels.get(backend).cloned().ok_or_else(|| format!("no backend for {}", binding.method.full_name()))?;
        let filter = MethodFilter::try_from(binding.http_method.clone()).map_err(|error| error.to_string())?;
        let handler = move |request: Request| async move {
            transcode(contract, binding, channel, request).await.unwrap_or_else(IntoResponse::into_response)
        };
        let route = routes.remove(binding.path.as_str()).unwrap_or_default();
        routes.insert(binding.path.as_str(), route.on(filter, handler));
    }
    Ok(routes.into_iter().fold(Router::new(), |router, (path, route)| router.route(path, route)))
}

async fn transcode(
    contract: &Contract,
    binding: &Binding,
    channel: Channel,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorKind::Unauthenticated, "missing credentials"))?;
    let input = binding.method.input();
    let mut message = DynamicMessage::new(input.clone());
    fill_from_path(contract, binding, &mut parts, &mut message).await?;
    fill_from_headers(contract, &parts, &mut message)?;
    fill_from_query(contract, binding, parts.uri.query(), &mut message)?;
    match &binding.body {
        Body::None => {}
        Body::All => {
            let json = read_json(parts, body).await?;
            contract.merge_json(&mut message, json, "", &binding.path_fields)?;
        }
        Body::Field { name, from_path } => {
            let json = read_json(parts, body).await?;
            // Merged into the field the path may already have filled in part (`{agent.id}`).
            let value = message
                .get_field_by_name_mut(name)
                .and_then(prost_reflect::Value::as_message_mut)
                .ok_or_else(|| ApiError::field(name.clone(), "the body field must be a message"))?;
            contract.merge_json(value, json, "", from_path)?;
        }
    }

    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| Status::unavailable(error.to_string()))?;
    let codec = DynamicCodec(binding.method.output());
    let response = grpc.unary(caller.request(message), binding.grpc_path.clone(), codec).await?.into_inner();
    if binding.success == StatusCode::NO_CONTENT {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((binding.success, Json(contract.to_json(&response))).into_response())
}

async fn fill_from_path(
    contract: &Contract,
    binding: &Binding,
    parts: &mut Parts,
    message: &mut DynamicMessage,
) -> Result<(), ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|rejection| ApiError::field("path", rejection.body_text()))?;
    // Axum names the variables after the route; they come in the template's order.
    for ((_, value), path) in params.iter().zip(&binding.path_fields) {
        let mut target = &mut *message;
        let mut names = path.split('.').peekable();
        while let Some(name) = names.next() {
            let field = target
                .descriptor()
                .get_field_by_name(name)
                .ok_or_else(|| ApiError::field(path.clone(), "unknown field"))?;
            if names.peek().is_none() {
                contract.set_text(target, &field, value, path)?;
                break;
            }
            target = target
                .get_field_mut(&field)
                .as_message_mut()
                .ok_or_else(|| ApiError::field(path.clone(), "must name a message field"))?;
        }
    }
    Ok(())
}

fn fill_from_headers(contract: &Contract, parts: &Parts, message: &mut DynamicMessage) -> Result<(), ApiError> {
    for field in &contract.shape(&message.descriptor()).fields {
        let Some(header) = &field.header else { continue };
        if let Some(value) = parts.headers.get(header.as_str()) {
            let value = value.to_str().map_err(|_| ApiError::field(header.clone(), "must be printable ASCII"))?;
            contract.set_text(message, &field.field, value, header)?;
        }
    }
    Ok(())
}

/// Fields neither in the path, a header nor the body, by name; an unknown name is refused.
fn fill_from_query(
    contract: &Contract,
    binding: &Binding,
    query: Option<&str>,
    message: &mut DynamicMessage,
) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = match query.filter(|query| !query.is_empty()) {
        Some(query) => {
            serde_urlencoded::from_str(query).map_err(|error| ApiError::field("query", error.to_string()))?
        }
        None => Vec::new(),
    };
    let descriptor = message.descriptor();
    let shape = contract.shape(&descriptor);
    // With `body: "*"` every field but the path's is in the body: the query string has none.
    let queryable = |field: &&contract::FieldShape| {
        !matches!(binding.body, Body::All)
            && field.settable()
            && !binding.path_fields.iter().any(|name| name == field.field.name())
            && Some(field.field.name()) != binding.body.field()
    };
    for field in shape.fields.iter().filter(queryable).filter(|field| field.required) {
        if !pairs.iter().any(|(key, value)| *key == field.name && !value.trim().is_empty()) {
            return Err(ApiError::field(field.name.clone(), "is required"));
        }
    }
    for (key, value) in pairs {
        let field = shape
            .fields
            .iter()
            .filter(queryable)
            .find(|field| field.name == key)
            .ok_or_else(|| ApiError::field(key.clone(), "unknown query parameter"))?;
        contract.set_text(message, &field.field, &value, &key)?;
    }
    Ok(())
}

/// A response as the derived routes write it, for the hand-written routes that answer with a
/// service's message unchanged.
pub(crate) fn json_of<M: prost::Name>(message: &M) -> Result<Json<serde_json::Value>, ApiError> {
    let contract = contract().map_err(|error| ApiError::new(ErrorKind::Internal, error))?;
    let descriptor = contract
        .pool()
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, format!("no descriptor for {}", M::full_name())))?;
    let mut dynamic = DynamicMessage::new(descriptor);
    dynamic.transcode_from(message).map_err(|error| ApiError::new(ErrorKind::Internal, error.to_string()))?;
    Ok(Json(contract.to_json(&dynamic)))
}

/// Parses `raw` as the query string of every binding that reads one; errors are the caller's
/// 400s, and fine. For the fuzz targets.
pub(crate) fn parse_queries(raw: &str) {
    let Ok(contract) = contract() else { return };
    for binding in contract.bindings.iter().filter(|binding| !matches!(binding.body, Body::All)) {
        let mut message = DynamicMessage::new(binding.method.input());
        let _ = fill_from_query(contract, binding, Some(raw), &mut message);
    }
}

/// The JSON body: an empty one is `{}`, anything else must be declared and parse as JSON.
async fn read_json(parts: Parts, body: axum::body::Body) -> Result<serde_json::Value, ApiError> {
    let declared = declares_json(&parts.headers);
    let bytes = body_bytes(Request::from_parts(parts, body)).await?;
    if bytes.is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    if !declared {
        return Err(ApiError::field("content-type", "must be application/json"));
    }
    parse_json(&bytes)
}

/// Encodes and decodes messages known only by their descriptor.
#[derive(Clone)]
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        self.clone()
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.clone()
    }
}

impl Encoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, destination: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(destination).map_err(|error| Status::internal(error.to_string()))
    }
}

impl Decoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), source).map(Some).map_err(|error| Status::internal(error.to_string()))
    }
}
