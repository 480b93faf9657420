//! The public help center: no credentials, the tenant in the path, published public articles
//! only. Each client (the peer address, or the one trusted proxies saw) has its own rate limit
//! per tenant.

use std::collections::HashMap;

use axum::{
    Extension, Json,
    extract::{Path, Request, State, rejection::PathRejection},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use helpdesk_proto::knowledge::v1 as proto;
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    dto::{PublicArticleQuery, PublicSearchQuery, RecordClick, SuggestArticles, Vote},
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
    rest::json_of,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Who a public request comes from.
#[derive(Clone)]
pub(crate) struct Visitor {
    client: std::net::IpAddr,
}

/// The cookie naming a visitor of the help center, which the gateway issues on a first vote.
const VISITOR_COOKIE: &str = "hd_visitor";

/// The visitor id the request's cookie names, if it is one the gateway could have issued.
fn visitor_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().strip_prefix(VISITOR_COOKIE)?.strip_prefix('='))
        .find(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// What knowledge keeps of a visitor of a tenant: an opaque, stable id, so that a repeated vote
/// replaces the earlier one.
fn voter_id(tenant: &str, visitor: &str) -> String {
    let mut id = hex::encode(Sha256::new().chain_update(tenant.as_bytes()).chain_update(visitor.as_bytes()).finalize());
    id.truncate(32);
    id
}

/// Applies the per-client limit before anything else, and hands the handlers the [`Visitor`].
/// A route layer, so that the tenant in the path is known.
pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let params = match params {
        Ok(Path(params)) => params,
        Err(rejection) => return ApiError::field("path", rejection.body_text()).into_response(),
    };
    let tenant = params.get("tenant").map(String::as_str).unwrap_or_default();
    let client = match state.auth.check_client(&format!("help/{tenant}"), &request) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    request.extensions_mut().insert(Visitor { client });
    next.run(request).await
}

/// Search the tenant's published public articles, Korean or English, best first.
#[utoipa::path(get, path = "/v1/help/{tenant}/search", tag = "help center", params(PublicSearchQuery),
    security(()), responses((status = 200, body = ref("#/components/schemas/SearchResponse")), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn public_search(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    QueryParams(query): QueryParams<PublicSearchQuery>,
) -> ApiResult<serde_json::Value> {
    let request = query.into_proto(tenant_id)?;
    let response = state.help_center.clone().search_articles(state.public_request(request)?).await?.into_inner();
    json_of(&response)
}

/// A published public article by id, or by slug with `locale`; counts a view.
#[utoipa::path(get, path = "/v1/help/{tenant}/articles/{id_or_slug}", tag = "help center",
    params(PublicArticleQuery), security(()),
    responses((status = 200, body = ref("#/components/schemas/Article")), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn public_article(
    State(state): State<AppState>,
    Path((tenant_id, id_or_slug)): Path<(String, String)>,
    QueryParams(query): QueryParams<PublicArticleQuery>,
) -> ApiResult<serde_json::Value> {
    let request = proto::PublicGetArticleRequest { tenant_id, id_or_slug, locale: query.locale.unwrap_or_default() };
    let article = state.help_center.clone().get_article(state.public_request(request)?).await?.into_inner();
    json_of(&article)
}

/// The tenant's categories, parents before children, by position.
#[utoipa::path(get, path = "/v1/help/{tenant}/categories", tag = "help center", security(()),
    responses((status = 200, body = ref("#/components/schemas/ListCategoriesResponse")), (status = 429, body = ErrorBody)))]
pub(crate) async fn public_categories(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> ApiResult<serde_json::Value> {
    let request = proto::PublicListCategoriesRequest { tenant_id };
    let response = state.help_center.clone().list_categories(state.public_request(request)?).await?.into_inner();
    json_of(&response)
}

/// Articles that may answer a contact form before it is sent.
#[utoipa::path(post, path = "/v1/help/{tenant}/suggestions", tag = "help center", request_body = SuggestArticles,
    security(()), responses((status = 200, body = ref("#/components/schemas/SuggestResponse")), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn public_suggest(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    JsonBody(body): JsonBody<SuggestArticles>,
) -> ApiResult<serde_json::Value> {
    let request = proto::PublicSuggestRequest {
        tenant_id,
        subject: body.subject,
        body: body.body,
        locale: body.locale,
        limit: body.limit,
    };
    let response = state.help_center.clone().suggest_articles(state.public_request(request)?).await?.into_inner();
    json_of(&response)
}

/// "Was this helpful?": a visitor's repeated vote replaces the earlier one. The visitor is named
/// by the `hd_visitor` cookie, which the first vote sets; each client address may vote a few times
/// a minute.
#[utoipa::path(post, path = "/v1/help/{tenant}/articles/{id}/votes", tag = "help center", request_body = Vote,
    security(()), responses((status = 200, body = ref("#/components/schemas/ArticleStats")), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn public_vote(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path((tenant_id, article_id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Vote>,
) -> Result<Response, ApiError> {
    state.auth.check_vote(visitor.client)?;
    let (cookie, issued) = match visitor_cookie(&headers) {
        Some(cookie) => (cookie, false),
        None => (uuid::Uuid::new_v4().simple().to_string(), true),
    };
    let request = proto::PublicVoteRequest {
        visitor_id: voter_id(&tenant_id, &cookie),
        tenant_id,
        article_id,
        helpful: body.helpful,
    };
    let stats = state.help_center.clone().vote(state.public_request(request)?).await?.into_inner();
    let mut response = json_of(&stats)?.into_response();
    if issued {
        let set = format!("{VISITOR_COOKIE}={cookie}; Path=/v1/help; Max-Age=31536000; HttpOnly; SameSite=Lax");
        if let Ok(value) = header::HeaderValue::from_str(&set) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Record that a search hit or suggestion was opened.
#[utoipa::path(post, path = "/v1/help/{tenant}/clicks", tag = "help center", request_body = RecordClick,
    security(()), responses((status = 204), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn public_click(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    JsonBody(body): JsonBody<RecordClick>,
) -> Result<StatusCode, ApiError> {
    let request = proto::PublicClickRequest { tenant_id, search_id: body.search_id, article_id: body.article_id };
    state.help_center.clone().record_click(state.public_request(request)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use axum::{Router, body::Body, http::Request};
    use helpdesk_runtime::{
        ServiceError,
        auth::{Authenticator, BoxFuture, CredentialResolver, Resolved},
        config::Config,
    };
    use tower::ServiceExt;

    use super::*;
    use crate::Backends;

    struct NoKeys;

    impl CredentialResolver for NoKeys {
        fn resolve<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Resolved, ServiceError>> {
            Box::pin(async { Err(ServiceError::unauthenticated("unknown")) })
        }
    }

    /// The gateway in front of services that are never reached, with one request per client.
    pub(crate) fn gateway() -> Router {
        let env = [
            ("HELPDESK_GATEWAY__RATE_LIMIT_PER_SECOND".to_owned(), "1".to_owned()),
            ("HELPDESK_GATEWAY__RATE_LIMIT_BURST".to_owned(), "1".to_owned()),
            // Requests sent with `oneshot` have no peer address: trust it as the ingress.
            ("HELPDESK_GATEWAY__TRUSTED_PROXIES".to_owned(), "0.0.0.0".to_owned()),
        ];
        let config = Config::load_from(None, env).expect("valid config");
        let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(NoKeys)));
        let nowhere = helpdesk_runtime::grpc::lazy_channel("http://127.0.0.1:1").expect("channel");
        let secret = "a-test-service-secret-of-32-bytes-or-more".to_owned().into();
        let backends = Backends {
            ticketing: nowhere.clone(),
            identity: nowhere.clone(),
            routing: nowhere.clone(),
            knowledge: nowhere.clone(),
            feedback: nowhere.clone(),
            email: nowhere,
            tokens: Arc::new(helpdesk_runtime::auth::ServiceTokens::new("gateway", &secret)),
        };
        crate::router(&config.gateway, authenticator, backends).expect("the contract loads")
    }

    pub(crate) async fn get(gateway: &Router, uri: &str, forwarded_for: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(uri).header("x-forwarded-for", forwarded_for).body(Body::empty()).expect("request");
        let response = gateway.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_public_search_without_q_is_refused_naming_q_and_needs_no_credentials() {
        let gateway = gateway();

        let (status, body) = get(&gateway, "/v1/help/acme/search?locale=ko", "203.0.113.1").await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["fields"][0]["field"], "q");
    }

    #[tokio::test]
    async fn the_knowledge_base_api_still_needs_credentials() {
        let gateway = gateway();

        let (status, _) = get(&gateway, "/v1/kb/search", "203.0.113.1").await;

        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn each_client_of_the_help_center_has_its_own_rate_limit() {
        let gateway = gateway();

        let first = get(&gateway, "/v1/help/acme/search", "10.0.0.1, 203.0.113.1").await.0;
        // Addresses a client puts in front of the one the ingress appended change nothing.
        let again = get(&gateway, "/v1/help/acme/search", "198.51.100.7, 203.0.113.1").await.0;
        let other_client = get(&gateway, "/v1/help/acme/search", "203.0.113.2").await.0;

        assert_eq!(first, StatusCode::BAD_REQUEST);
        assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(other_client, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_visitor_is_named_by_the_cookie_the_gateway_issued_and_differs_by_tenant() {
        let mut headers = HeaderMap::new();
        headers
            .insert(header::COOKIE, "theme=dark; hd_visitor=0123456789abcdef0123456789abcdef".parse().expect("value"));
        let visitor = visitor_cookie(&headers).expect("issued cookie");

        let acme = voter_id("acme", &visitor);

        assert_eq!(acme.len(), 32);
        assert_eq!(acme, voter_id("acme", &visitor));
        assert_ne!(acme, voter_id("globex", &visitor));
        let mut forged = HeaderMap::new();
        forged.insert(header::COOKIE, "hd_visitor=<script>".parse().expect("value"));
        assert!(visitor_cookie(&forged).is_none(), "only ids the gateway could have issued");
    }
}
