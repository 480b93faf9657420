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
        routes::tickets::create, routes::tickets::get, routes::tickets::update, routes::tickets::list,
        routes::tickets::add_message, routes::tickets::list_messages, routes::tickets::history,
        routes::tickets::merge, routes::tickets::link,
        routes::customers::create, routes::customers::get, routes::customers::update, routes::customers::list,
        routes::customers::set_flag, routes::customers::clear_flag, routes::customers::tickets,
        routes::admin::create_saved_reply, routes::admin::list_saved_replies, routes::admin::delete_saved_reply,
        routes::admin::render_saved_reply, routes::admin::define_custom_field, routes::admin::list_custom_fields,
        routes::admin::create_api_key, routes::admin::list_api_keys, routes::admin::revoke_api_key,
        routes::admin::create_signing_key, routes::admin::list_signing_keys, routes::admin::retire_signing_key,
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
    components(schemas(error::ErrorBody, dto::Priority, dto::Channel, dto::Status, dto::Visibility, dto::FlagKind,
        dto::AuthorKind, dto::Role, dto::CustomFieldType, dto::WorkState, dto::Presence, dto::Strategy, dto::SlaKind,
        dto::TargetState, dto::Trigger, dto::ArticleStatus, dto::ArticleVisibility, dto::DiffChange,
        dto::SurveyKind, dto::QuestionKind, dto::InvitationState, dto::FollowUpState, dto::ReportKind, dto::GroupBy,
        dto::SigningAlgorithm)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

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
