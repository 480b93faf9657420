//! REST routes under `/v1`: the authenticated API here, the public help center in
//! [`help_center`] and survey links in [`surveys`].

pub(crate) mod feedback;
pub(crate) mod help_center;
pub(crate) mod insights;
pub(crate) mod knowledge;
pub(crate) mod routing;
pub(crate) mod surveys;

use axum::{
    Router,
    routing::{delete, get, post, put},
};

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tickets/{id}/routing", get(routing::ticket_routing))
        .route("/v1/tickets/{id}/escalations", get(routing::list_escalations).post(routing::escalate))
        .route("/v1/tickets/{id}/assignment", post(routing::assign).delete(routing::unassign))
        .route("/v1/tickets/{id}/transfer", post(routing::transfer))
        .route("/v1/agents", get(routing::list_agents))
        .route("/v1/agents/{id}", put(routing::upsert_agent))
        .route("/v1/agents/{id}/presence", post(routing::set_presence))
        .route("/v1/queues", get(routing::list_queues))
        .route("/v1/queues/{id}", put(routing::upsert_queue))
        .route("/v1/queues/{id}/stats", get(routing::queue_stats))
        .route("/v1/staffing/forecast", post(routing::forecast_staffing))
        .route("/v1/tickets/{id}/suggestions", get(knowledge::ticket_suggestions))
        .route("/v1/kb/articles", post(knowledge::create_article).get(knowledge::list_articles))
        .route("/v1/kb/articles/{id}", get(knowledge::get_article).patch(knowledge::update_article))
        .route("/v1/kb/articles/{id}/status", post(knowledge::set_article_status))
        .route("/v1/kb/articles/{id}/versions", get(knowledge::list_versions))
        .route("/v1/kb/articles/{id}/versions/{version}", get(knowledge::get_version))
        .route("/v1/kb/articles/{id}/versions/{version}/restore", post(knowledge::restore_version))
        .route("/v1/kb/articles/{id}/diff", get(knowledge::diff_versions))
        .route("/v1/kb/articles/{id}/revision", delete(knowledge::discard_revision))
        .route("/v1/kb/articles/{id}/revision/publish", post(knowledge::publish_revision))
        .route("/v1/kb/articles/{id}/votes", post(knowledge::vote))
        .route("/v1/kb/categories", get(knowledge::list_categories))
        .route("/v1/kb/categories/{id}", put(knowledge::upsert_category))
        .route("/v1/kb/synonyms/{locale}", get(knowledge::get_synonyms).put(knowledge::set_synonyms))
        .route("/v1/kb/search", get(knowledge::search))
        .route("/v1/kb/suggestions", post(knowledge::suggest))
        .route("/v1/kb/clicks", post(knowledge::record_click))
        .route("/v1/kb/gaps", get(knowledge::content_gaps))
        .route("/v1/kb/reindex", post(knowledge::reindex))
        .route("/v1/feedback/surveys", post(feedback::create_survey).get(feedback::list_surveys))
        .route("/v1/feedback/surveys/{id}", put(feedback::upsert_survey))
        .route("/v1/feedback/settings", get(feedback::get_settings).put(feedback::set_settings))
        .route("/v1/feedback/invitations", get(feedback::list_invitations))
        .route("/v1/feedback/responses", get(feedback::list_responses))
        .route("/v1/feedback/follow-ups", get(feedback::list_follow_ups))
        .route("/v1/feedback/follow-ups/{id}/close", post(feedback::close_follow_up))
        .route("/v1/feedback/announcements", post(feedback::announce_change))
        .route("/v1/insights/reports/{kind}", get(insights::report))
        .route("/v1/insights/rebuild", post(insights::rebuild_projections))
}
