//! The knowledge base's core: the [`Knowledge`] type, which the resource modules (articles,
//! revisions, categories, synonyms, search, suggestions, votes, content gaps, reindexing) give
//! their operations, and the checks and index update they share. Every operation is validated
//! at the edge, written to the database, then reflected in the search indexes before the caller
//! hears back.

use std::sync::Arc;

use helpdesk_runtime::{ServiceError, db::Database};

use crate::{gaps::Activity, index::Indexes, model::Article};

/// The knowledge base's operations, over its database, its search indexes and the activity
/// log that feeds the content-gap reports.
pub struct Knowledge {
    pub(crate) db: Database,
    pub(crate) indexes: Arc<Indexes>,
    pub(crate) activity: Activity,
}

impl Knowledge {
    pub(crate) fn new(db: Database, indexes: Arc<Indexes>, activity: Activity) -> Self {
        Self { db, indexes, activity }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Reflects committed articles in the search indexes, off the async threads.
    pub(crate) async fn index(&self, articles: Vec<Article>) -> Result<(), ServiceError> {
        let indexes = self.indexes.clone();
        tokio::task::spawn_blocking(move || indexes.apply(&articles))
            .await
            .map_err(|error| ServiceError::internal(&error))?
    }
}

/// A requested number of results: `default` when not given, at most `max`.
pub(crate) fn limit(requested: i32, default: usize, max: usize) -> Result<usize, ServiceError> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(ServiceError::invalid_field("limit", "must not be negative")),
        n => Ok((n as usize).min(max)),
    }
}

pub(crate) fn check_id(field: &str, id: &str) -> Result<(), ServiceError> {
    if id.is_empty() {
        return Err(ServiceError::invalid_field(field, "is required"));
    }
    if id.len() > 64 {
        return Err(ServiceError::invalid_field(field, "at most 64 characters"));
    }
    Ok(())
}
