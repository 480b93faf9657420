//! The knowledge base as agents and admins use it: articles with versions and translations, the
//! publishing workflow, categories, synonyms, search, answer suggestions and content gaps.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use helpdesk_proto::{knowledge::v1 as proto, ticketing::v1 as ticketing};

use crate::{
    AppState,
    auth::Caller,
    dto::{
        self, ContentGapsQuery, CreateArticle, DiffQuery, ListArticlesQuery, RecordClick, RestoreVersion, SearchQuery,
        SetArticleStatus, SetSynonyms, SuggestArticles, UpdateArticle, UpsertCategory, Vote,
    },
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A version number from the path.
fn version(word: &str) -> Result<i32, ApiError> {
    word.parse().ok().filter(|version| *version > 0).ok_or_else(|| ApiError::field("version", "must be positive"))
}

/// Write a draft, or a translation of another article with `translation_of`.
#[utoipa::path(post, path = "/v1/kb/articles", tag = "knowledge base", request_body = CreateArticle,
    responses((status = 201, body = dto::Article), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_article(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateArticle>,
) -> Result<(StatusCode, Json<dto::Article>), ApiError> {
    let request = proto::CreateArticleRequest::from(body);
    let article = state.knowledge.clone().create_article(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(article.into())))
}

/// Articles the caller may see, filtered and paged.
#[utoipa::path(get, path = "/v1/kb/articles", tag = "knowledge base", params(ListArticlesQuery),
    responses((status = 200, body = dto::ArticlePage), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_articles(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListArticlesQuery>,
) -> ApiResult<dto::ArticlePage> {
    let response = state.knowledge.clone().list_articles(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(response.into()))
}

#[utoipa::path(get, path = "/v1/kb/articles/{id}", tag = "knowledge base",
    responses((status = 200, body = dto::Article), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_article(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<dto::Article> {
    let request = proto::GetArticleRequest { id };
    let article = state.knowledge.clone().get_article(caller.request(request)).await?.into_inner();
    Ok(Json(article.into()))
}

/// Change an article's content; every change is a new version with its author and note.
#[utoipa::path(patch, path = "/v1/kb/articles/{id}", tag = "knowledge base", request_body = UpdateArticle,
    responses((status = 200, body = dto::Article), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn update_article(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateArticle>,
) -> ApiResult<dto::Article> {
    let article = state.knowledge.clone().update_article(caller.request(body.into_proto(id))).await?.into_inner();
    Ok(Json(article.into()))
}

/// Move an article through draft → in review → published → archived. Agents submit for review;
/// admins publish and archive.
#[utoipa::path(post, path = "/v1/kb/articles/{id}/status", tag = "knowledge base", request_body = SetArticleStatus,
    responses((status = 200, body = dto::Article), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_article_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetArticleStatus>,
) -> ApiResult<dto::Article> {
    let request = proto::SetArticleStatusRequest { id, status: body.status.into(), note: body.note };
    let article = state.knowledge.clone().set_article_status(caller.request(request)).await?.into_inner();
    Ok(Json(article.into()))
}

/// The article's versions, newest first, without bodies.
#[utoipa::path(get, path = "/v1/kb/articles/{id}/versions", tag = "knowledge base",
    responses((status = 200, body = dto::VersionList), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_versions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(article_id): Path<String>,
) -> ApiResult<dto::VersionList> {
    let request = proto::ListVersionsRequest { article_id };
    let response = state.knowledge.clone().list_versions(caller.request(request)).await?.into_inner();
    Ok(Json(dto::VersionList { versions: response.versions.into_iter().map(dto::ArticleVersion::from).collect() }))
}

#[utoipa::path(get, path = "/v1/kb/articles/{id}/versions/{version}", tag = "knowledge base",
    responses((status = 200, body = dto::ArticleVersion), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_version(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((article_id, number)): Path<(String, String)>,
) -> ApiResult<dto::ArticleVersion> {
    let request = proto::GetVersionRequest { article_id, version: version(&number)? };
    let found = state.knowledge.clone().get_version(caller.request(request)).await?.into_inner();
    Ok(Json(found.into()))
}

/// Make an old version's content current again, as a new version.
#[utoipa::path(post, path = "/v1/kb/articles/{id}/versions/{version}/restore", tag = "knowledge base",
    request_body = RestoreVersion,
    responses((status = 200, body = dto::Article), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn restore_version(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((article_id, number)): Path<(String, String)>,
    JsonBody(body): JsonBody<RestoreVersion>,
) -> ApiResult<dto::Article> {
    let request =
        proto::RestoreVersionRequest { article_id, version: version(&number)?, change_note: body.change_note };
    let article = state.knowledge.clone().restore_version(caller.request(request)).await?.into_inner();
    Ok(Json(article.into()))
}

/// Put the article's pending revision live as its next version. Admins only.
#[utoipa::path(post, path = "/v1/kb/articles/{id}/revision/publish", tag = "knowledge base",
    request_body = RestoreVersion,
    responses((status = 200, body = dto::Article), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn publish_revision(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(article_id): Path<String>,
    JsonBody(body): JsonBody<RestoreVersion>,
) -> ApiResult<dto::Article> {
    let request = proto::PublishRevisionRequest { article_id, change_note: body.change_note };
    let article = state.knowledge.clone().publish_revision(caller.request(request)).await?.into_inner();
    Ok(Json(article.into()))
}

/// Drop the article's pending revision.
#[utoipa::path(delete, path = "/v1/kb/articles/{id}/revision", tag = "knowledge base",
    responses((status = 200, body = dto::Article), (status = 404, body = ErrorBody)))]
pub(crate) async fn discard_revision(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(article_id): Path<String>,
) -> ApiResult<dto::Article> {
    let request = proto::DiscardRevisionRequest { article_id };
    let article = state.knowledge.clone().discard_revision(caller.request(request)).await?.into_inner();
    Ok(Json(article.into()))
}

/// Line by line differences between two versions of an article.
#[utoipa::path(get, path = "/v1/kb/articles/{id}/diff", tag = "knowledge base", params(DiffQuery),
    responses((status = 200, body = dto::VersionDiff), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn diff_versions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(article_id): Path<String>,
    QueryParams(query): QueryParams<DiffQuery>,
) -> ApiResult<dto::VersionDiff> {
    let from_version = query.from.ok_or_else(|| ApiError::field("from", "is required"))?;
    let to_version = query.to.ok_or_else(|| ApiError::field("to", "is required"))?;
    let request = proto::DiffVersionsRequest { article_id, from_version, to_version };
    let diff = state.knowledge.clone().diff_versions(caller.request(request)).await?.into_inner();
    Ok(Json(diff.into()))
}

/// "Was this helpful?": one vote per caller and article; voting again replaces the vote.
#[utoipa::path(post, path = "/v1/kb/articles/{id}/votes", tag = "knowledge base", request_body = Vote,
    responses((status = 200, body = dto::ArticleStats), (status = 404, body = ErrorBody)))]
pub(crate) async fn vote(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(article_id): Path<String>,
    JsonBody(body): JsonBody<Vote>,
) -> ApiResult<dto::ArticleStats> {
    let request = proto::VoteRequest { article_id, helpful: body.helpful };
    let stats = state.knowledge.clone().vote(caller.request(request)).await?.into_inner();
    Ok(Json(stats.into()))
}

/// Every category, parents before children, by position.
#[utoipa::path(get, path = "/v1/kb/categories", tag = "knowledge base",
    responses((status = 200, body = dto::CategoryList)))]
pub(crate) async fn list_categories(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::CategoryList> {
    let request = proto::ListCategoriesRequest {};
    let response = state.knowledge.clone().list_categories(caller.request(request)).await?.into_inner();
    Ok(Json(response.into()))
}

/// Create or replace a category. Admins only.
#[utoipa::path(put, path = "/v1/kb/categories/{id}", tag = "knowledge base", request_body = UpsertCategory,
    responses((status = 200, body = dto::Category), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn upsert_category(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpsertCategory>,
) -> ApiResult<dto::Category> {
    let category = state.knowledge.clone().upsert_category(caller.request(body.into_proto(id))).await?.into_inner();
    Ok(Json(category.into()))
}

/// The locale's synonym groups.
#[utoipa::path(get, path = "/v1/kb/synonyms/{locale}", tag = "knowledge base",
    responses((status = 200, body = dto::Synonyms), (status = 400, body = ErrorBody)))]
pub(crate) async fn get_synonyms(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(locale): Path<String>,
) -> ApiResult<dto::Synonyms> {
    let request = proto::GetSynonymsRequest { locale };
    let synonyms = state.knowledge.clone().get_synonyms(caller.request(request)).await?.into_inner();
    Ok(Json(synonyms.into()))
}

/// Replace the locale's synonym groups: a query for any term of a group also finds the others.
/// Admins only.
#[utoipa::path(put, path = "/v1/kb/synonyms/{locale}", tag = "knowledge base", request_body = SetSynonyms,
    responses((status = 200, body = dto::Synonyms), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_synonyms(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(locale): Path<String>,
    JsonBody(body): JsonBody<SetSynonyms>,
) -> ApiResult<dto::Synonyms> {
    let synonyms = state.knowledge.clone().set_synonyms(caller.request(body.into_proto(locale))).await?.into_inner();
    Ok(Json(synonyms.into()))
}

/// Full-text search, Korean or English, over the published articles the caller may see.
#[utoipa::path(get, path = "/v1/kb/search", tag = "knowledge base", params(SearchQuery),
    responses((status = 200, body = dto::SearchResults), (status = 400, body = ErrorBody)))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<SearchQuery>,
) -> ApiResult<dto::SearchResults> {
    let response = state.knowledge.clone().search(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(response.into()))
}

/// The articles that most likely answer a text; none when no article is a confident match.
#[utoipa::path(post, path = "/v1/kb/suggestions", tag = "knowledge base", request_body = SuggestArticles,
    responses((status = 200, body = dto::Suggestions), (status = 400, body = ErrorBody)))]
pub(crate) async fn suggest(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<SuggestArticles>,
) -> ApiResult<dto::Suggestions> {
    let request = proto::SuggestRequest {
        subject: body.subject,
        body: body.body,
        locale: body.locale,
        limit: body.limit,
        ticket_id: String::new(),
    };
    let response = state.knowledge.clone().suggest(caller.request(request)).await?.into_inner();
    Ok(Json(response.into()))
}

/// Articles that most likely answer the ticket, from its subject and description. Tickets no
/// article answers show up in the content gaps.
#[utoipa::path(get, path = "/v1/tickets/{id}/suggestions", tag = "knowledge base",
    responses((status = 200, body = dto::Suggestions), (status = 404, body = ErrorBody)))]
pub(crate) async fn ticket_suggestions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ticket_id): Path<String>,
) -> ApiResult<dto::Suggestions> {
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
    Ok(Json(response.into()))
}

/// Record that a search hit or suggestion was opened.
#[utoipa::path(post, path = "/v1/kb/clicks", tag = "knowledge base", request_body = RecordClick,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub(crate) async fn record_click(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<RecordClick>,
) -> Result<StatusCode, ApiError> {
    let request = proto::RecordClickRequest { search_id: body.search_id, article_id: body.article_id };
    state.knowledge.clone().record_click(caller.request(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to write next: queries with no results or no clicks, and ticket topics no article
/// answers.
#[utoipa::path(get, path = "/v1/kb/gaps", tag = "knowledge base", params(ContentGapsQuery),
    responses((status = 200, body = dto::ContentGaps), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn content_gaps(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ContentGapsQuery>,
) -> ApiResult<dto::ContentGaps> {
    let response = state.knowledge.clone().content_gaps(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(response.into()))
}

/// Rebuild the tenant's search index from the database while search keeps answering. Admins only.
#[utoipa::path(post, path = "/v1/kb/reindex", tag = "knowledge base",
    responses((status = 200, body = dto::Reindexed), (status = 403, body = ErrorBody)))]
pub(crate) async fn reindex(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::Reindexed> {
    let response = state.knowledge.clone().reindex(caller.request(proto::ReindexRequest {})).await?.into_inner();
    Ok(Json(dto::Reindexed { articles: response.articles, seconds: response.seconds }))
}
