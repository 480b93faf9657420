//! Keeping every replica's indexes equal to the database: a full build at start-up (and on
//! request), then polling for rows whose `changed_at` moved, with an overlap that covers
//! transactions committing late and replicas' clocks drifting apart. Each index keeps an
//! article's newest change only, so seeing a row twice is harmless.

use std::{sync::Arc, time::Duration};

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::{ServiceError, db::Database, shutdown::Shutdown, time::now_micros};

use crate::{
    index::{Indexes, Synonyms},
    model::Article,
    service::Knowledge,
    store,
};

/// How often replicas look for other replicas' changes.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(500);
/// How far back each poll looks again, in microseconds.
const OVERLAP: i64 = 30_000_000;
const PAGE: i64 = 5_000;

/// Rebuilds the indexes of `tenant` (or of every tenant) from the database and swaps them in.
/// Returns the number of published articles indexed.
pub(crate) async fn rebuild(
    db: &Database,
    indexes: &Arc<Indexes>,
    tenant: Option<&str>,
) -> Result<usize, ServiceError> {
    let started = now_micros();
    let mut articles: Vec<Article> = Vec::new();
    let mut conn = db.reader().acquire().await?;
    loop {
        let after = articles.last().map_or((String::new(), String::new()), |a| (a.tenant_id.clone(), a.id.clone()));
        let page = store::published_page(&mut conn, tenant, (&after.0, &after.1), PAGE).await?;
        let done = (page.len() as i64) < PAGE;
        articles.extend(page);
        if done {
            break;
        }
    }
    let synonyms = store::synonyms_since(&mut conn, 0).await?;
    drop(conn);
    for row in synonyms.iter().filter(|row| tenant.is_none_or(|tenant| row.tenant_id == tenant)) {
        indexes.set_synonyms(&row.tenant_id, &row.locale, Synonyms::new(&row.groups));
    }
    let mut tenants: Vec<String> = articles.iter().map(|a| a.tenant_id.clone()).collect();
    tenants.dedup();
    if let Some(tenant) = tenant {
        tenants = vec![tenant.to_owned()];
    }
    let count = articles.len();
    let target = indexes.clone();
    tokio::task::spawn_blocking(move || target.replace(&tenants, &articles))
        .await
        .map_err(|error| ServiceError::internal(&error))??;
    // Changes committed while the new indexes were built.
    catch_up(db, indexes, started - OVERLAP).await?;
    Ok(count)
}

/// Applies every change since `since` that the indexes do not have yet; returns the newest
/// `changed_at` seen.
async fn catch_up(db: &Database, indexes: &Arc<Indexes>, since: i64) -> Result<i64, ServiceError> {
    let mut conn = db.reader().acquire().await?;
    let changes = store::changes_since(&mut conn, since).await?;
    let newest = changes.iter().map(|change| change.changed_at).max().unwrap_or(since);
    let mut articles = Vec::new();
    for change in changes {
        if indexes.is_behind(&change.tenant_id, &change.locale, &change.id, change.changed_at)
            && let Some(article) = store::article(&mut conn, &change.tenant_id, &change.id).await?
        {
            articles.push(article);
        }
    }
    for row in store::synonyms_since(&mut conn, since).await? {
        indexes.set_synonyms(&row.tenant_id, &row.locale, Synonyms::new(&row.groups));
    }
    drop(conn);
    if !articles.is_empty() {
        let target = indexes.clone();
        tokio::task::spawn_blocking(move || target.apply(&articles))
            .await
            .map_err(|error| ServiceError::internal(&error))??;
    }
    Ok(newest)
}

impl Knowledge {
    /// Rebuilds the tenant's indexes from the database and swaps them in; search keeps using the
    /// old ones meanwhile.
    pub async fn reindex(&self, tenant: &str) -> Result<proto::ReindexResponse, ServiceError> {
        let started = std::time::Instant::now();
        let articles = rebuild(&self.db, &self.indexes, Some(tenant)).await?;
        Ok(proto::ReindexResponse { articles: articles as i64, seconds: started.elapsed().as_secs_f64() })
    }
}

/// Polls for changes until shutdown.
pub(crate) async fn run(db: Database, indexes: Arc<Indexes>, shutdown: Shutdown) {
    let mut since = now_micros() - OVERLAP;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = shutdown.clone().wait() => return,
        }
        match catch_up(&db, &indexes, since).await {
            // Look again over the overlap: a transaction that began earlier may commit later.
            Ok(newest) => since = newest.min(now_micros()) - OVERLAP,
            Err(error) => tracing::warn!(error = %error.message, "knowledge index could not follow the database"),
        }
    }
}
