//! The OpenAPI 3 document: the operations derived from the contracts, those of the hand-written
//! routes, and what every operation shares.

use std::sync::LazyLock;

use axum::{Json, response::IntoResponse};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{error, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "helpdesk REST API", description = "Tickets, conversations, customers, saved replies, routing, \
        the knowledge base, surveys and reports. Authenticate with `Authorization: Bearer <api key or JWT>`, except \
        on the public help center under `/v1/help/{tenant}` and on survey links under `/v1/surveys/{token}`, which \
        need no credentials and are rate-limited per client address. \
        Errors share one body: `{\"error\": {\"code\", \"message\", \"fields\"}}`."),
    components(schemas(error::ErrorBody)),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// The operations and schemas derived from the contracts' HTTP bindings.
struct FromContract;

impl Modify for FromContract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        match crate::rest::contract() {
            Ok(contract) => crate::rest::openapi::document(contract, openapi),
            Err(error) => tracing::error!(%error, "the contract did not load"),
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What every operation has in common, written once: its path parameters, and the error statuses
/// of the platform's one error table (every one may come from any operation: bad input, missing or
/// refused credentials, a rate limit, a service away), all with the one error body.
struct EveryOperation;

impl Modify for EveryOperation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            Ref, RefOr, ResponseBuilder,
            path::{ParameterBuilder, ParameterIn},
        };
        let errors = [
            ("400", "Invalid input; the body names the fields"),
            ("401", "Missing or refused credentials"),
            ("403", "The caller's role does not allow it"),
            ("404", "Not found, also for another tenant's data"),
            ("409", "A stale version or a duplicate"),
            ("413", "The body is too large"),
            ("422", "The current state does not allow it"),
            ("429", "Rate limited; see Retry-After"),
            ("503", "A service or its database is unavailable"),
        ];
        // Handlers of different resources share names (`list`): such ids get their tag in front.
        let mut uses = std::collections::HashMap::<String, usize>::new();
        for item in openapi.paths.paths.values() {
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch, &item.head];
            for id in operations.into_iter().flatten().filter_map(|operation| operation.operation_id.clone()) {
                *uses.entry(id).or_default() += 1;
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names: Vec<&str> =
                path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect();
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
            for operation in operations.into_iter().flatten() {
                if let (Some(id), Some(tag)) =
                    (&operation.operation_id, operation.tags.as_ref().and_then(|tags| tags.first()))
                    && uses.get(id).is_some_and(|count| *count > 1)
                {
                    operation.operation_id = Some(format!("{}_{id}", tag.replace(' ', "_")));
                }
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                for name in &names {
                    let declared = parameters
                        .iter()
                        .any(|parameter| parameter.name == *name && parameter.parameter_in == ParameterIn::Path);
                    if !declared {
                        let parameter = ParameterBuilder::new()
                            .name(*name)
                            .parameter_in(ParameterIn::Path)
                            .required(utoipa::openapi::Required::True)
                            .schema(Some(
                                utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String),
                            ))
                            .build();
                        parameters.push(parameter);
                    }
                }
                for (status, description) in errors {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    utoipa::openapi::ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build(),
                        )
                    });
                }
            }
        }
    }
}

fn document() -> utoipa::openapi::OpenApi {
    let mut openapi = ApiDoc::openapi();
    openapi.merge(routes::hand_written().into_openapi());
    for modifier in [&FromContract as &dyn Modify, &BearerAuth, &EveryOperation] {
        modifier.modify(&mut openapi);
    }
    openapi
}

static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(document);

/// The document as JSON, for `/openapi.json` and for generating the API reference.
pub fn openapi_json() -> String {
    DOCUMENT.to_pretty_json().unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

pub(crate) async fn serve() -> impl IntoResponse {
    Json(&*DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_api_reference_matches_the_routes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/openapi.json");
        let committed = std::fs::read_to_string(path).expect("docs/api/openapi.json exists");
        assert_eq!(
            committed.trim(),
            super::openapi_json().trim(),
            "docs/api/openapi.json is stale: cargo run --bin helpdesk -- openapi > docs/api/openapi.json"
        );
    }
}
