//! Search: full-text queries over the published articles an audience may find, and the clicks on
//! their hits. Searches and clicks are logged for the content-gap reports ([`crate::gaps`]).

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{ServiceError, time::now_micros};

use crate::{
    index::SearchParams,
    model::{self, Audience},
    service::{Knowledge, check_id, limit},
    store,
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;
const MAX_QUERY_CHARS: usize = 500;

fn check_query(query: &str) -> Result<&str, ServiceError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(ServiceError::invalid_field("query", "is required"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ServiceError::invalid_field("query", format!("at most {MAX_QUERY_CHARS} characters")));
    }
    Ok(query)
}

impl Knowledge {
    pub async fn search(
        &self,
        tenant: &str,
        audience: Audience,
        request: proto::SearchRequest,
    ) -> Result<proto::SearchResponse, ServiceError> {
        let query = check_query(&request.query)?.to_owned();
        let locale = model::locale_for("locale", &request.locale, &query)?;
        let limit = limit(request.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let (indexes, tenant_owned, locale_owned) = (self.indexes.clone(), tenant.to_owned(), locale.clone());
        let result = tokio::task::spawn_blocking(move || {
            let params = SearchParams {
                query: &query,
                category_id: &request.category_id,
                tag: &request.tag,
                limit,
                audience: &audience,
            };
            indexes.search(&tenant_owned, &locale_owned, &params).map(|result| (result, query))
        })
        .await
        .map_err(|error| ServiceError::internal(&error))??;
        let (result, query) = result;
        let search_id = self.log_search(tenant, "search", &query, &locale, result.hits.len());
        Ok(proto::SearchResponse {
            hits: result
                .hits
                .into_iter()
                .map(|hit| proto::SearchHit {
                    url_path: model::url_path(&locale, &hit.slug),
                    article_id: hit.article_id,
                    title: hit.title,
                    slug: hit.slug,
                    category_id: hit.category_id,
                    snippet_html: hit.snippet_html,
                    score: f64::from(hit.score),
                    visibility: hit.visibility as i32,
                })
                .collect(),
            locale,
            search_id,
            fuzzy: result.fuzzy,
        })
    }

    /// Logs a search of a tenant whose knowledge base has published articles, so that anybody's
    /// made-up tenant names fill nothing; returns its id, for click tracking.
    pub(crate) fn log_search(
        &self,
        tenant: &str,
        kind: &'static str,
        query: &str,
        locale: &str,
        results: usize,
    ) -> String {
        if !self.indexes.knows(tenant) {
            return String::new();
        }
        self.activity.log_search(tenant, kind, query, locale, results)
    }

    pub async fn record_click(&self, tenant: &str, search_id: &str, article_id: &str) -> Result<(), ServiceError> {
        check_id("search_id", search_id)?;
        check_id("article_id", article_id)?;
        if !self.indexes.knows(tenant) {
            return Ok(());
        }
        let mut conn = self.db.writer().acquire().await?;
        store::record_click(&mut conn, tenant, search_id, article_id, now_micros()).await
    }
}
