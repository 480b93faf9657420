//! The OpenAPI 3 document, generated from the route and schema definitions.

use axum::{Json, response::IntoResponse};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{dto, error, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "helpdesk REST API", description = "Tickets, conversations, customers, saved replies, routing, \
        the knowledge base, surveys and reports. Authenticate with `Authorization: Bearer <api key or JWT>`, except \
        on the public help center under `/v1/help/{tenant}` and on survey links under `/v1/surveys/{token}`, which \
        need no credentials and are rate-limited per client address. \
        Errors share one body: `{\"error\": {\"code\", \"message\", \"fields\"}}`."),
    paths(
        routes::routing::ticket_routing, routes::routing::list_escalations, routes::routing::escalate,
        routes::routing::assign, routes::routing::unassign, routes::routing::transfer,
        routes::routing::list_agents, routes::routing::upsert_agent, routes::routing::set_presence,
        routes::routing::list_queues, routes::routing::upsert_queue, routes::routing::queue_stats,
        routes::routing::forecast_staffing,
        routes::knowledge::create_article, routes::knowledge::list_articles, routes::knowledge::get_article,
        routes::knowledge::update_article, routes::knowledge::set_article_status, routes::knowledge::list_versions,
        routes::knowledge::get_version, routes::knowledge::restore_version, routes::knowledge::diff_versions,
        routes::knowledge::publish_revision, routes::knowledge::discard_revision,
        routes::knowledge::vote, routes::knowledge::list_categories, routes::knowledge::upsert_category,
        routes::knowledge::get_synonyms, routes::knowledge::set_synonyms, routes::knowledge::search,
        routes::knowledge::suggest, routes::knowledge::ticket_suggestions, routes::knowledge::record_click,
        routes::knowledge::content_gaps, routes::knowledge::reindex,
        routes::help_center::public_search, routes::help_center::public_article, routes::help_center::public_categories,
        routes::help_center::public_suggest, routes::help_center::public_vote, routes::help_center::public_click,
        routes::feedback::create_survey, routes::feedback::upsert_survey, routes::feedback::list_surveys,
        routes::feedback::get_settings, routes::feedback::set_settings, routes::feedback::list_invitations,
        routes::feedback::list_responses, routes::feedback::list_follow_ups, routes::feedback::close_follow_up,
        routes::feedback::announce_change,
        routes::insights::report, routes::insights::rebuild_projections,
        routes::surveys::survey_form, routes::surveys::submit_answer,
    ),
    components(schemas(error::ErrorBody, dto::Priority, dto::Channel, dto::WorkState, dto::Presence, dto::Strategy, dto::SlaKind,
        dto::TargetState, dto::Trigger, dto::ArticleStatus, dto::ArticleVisibility, dto::DiffChange,
        dto::SurveyKind, dto::QuestionKind, dto::InvitationState, dto::FollowUpState, dto::ReportKind, dto::GroupBy)),
    modifiers(&FromContract, &BearerAuth, &EveryOperation),
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

/// The document as JSON, for `/openapi.json` and for generating the API reference.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

pub(crate) async fn serve() -> impl IntoResponse {
    Json(ApiDoc::openapi())
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
