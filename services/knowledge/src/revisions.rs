//! An article's history and proposals: each content change is a numbered version, which can be
//! listed, read, compared with another and restored; an edit of a published article by someone
//! who may not publish waits as the article's pending revision until an admin publishes it or
//! it is discarded.

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus, diff_line::Change};
use helpdesk_runtime::ServiceError;

use crate::{
    markdown,
    model::Audience,
    service::{Knowledge, check_id},
    store,
};

impl Knowledge {
    pub async fn versions(&self, tenant: &str, article: &str) -> Result<proto::ListVersionsResponse, ServiceError> {
        check_id("article_id", article)?;
        let mut conn = self.db.reader().acquire().await?;
        let versions = store::versions(&mut conn, tenant, article).await?;
        if versions.is_empty() {
            return Err(ServiceError::not_found("article"));
        }
        Ok(proto::ListVersionsResponse { versions })
    }

    pub async fn version(
        &self,
        tenant: &str,
        article: &str,
        version: i32,
    ) -> Result<proto::ArticleVersion, ServiceError> {
        check_id("article_id", article)?;
        if version <= 0 {
            return Err(ServiceError::invalid_field("version", "must be positive"));
        }
        let mut conn = self.db.reader().acquire().await?;
        store::version(&mut conn, tenant, article, version).await?.ok_or_else(|| ServiceError::not_found("version"))
    }

    pub async fn diff(
        &self,
        tenant: &str,
        request: proto::DiffVersionsRequest,
    ) -> Result<proto::VersionDiff, ServiceError> {
        let from = self
            .version(tenant, &request.article_id, request.from_version)
            .await
            .map_err(|e| e.with_field("from_version"))?;
        let to = self
            .version(tenant, &request.article_id, request.to_version)
            .await
            .map_err(|e| e.with_field("to_version"))?;
        let diff = similar::TextDiff::from_lines(&from.body_markdown, &to.body_markdown);
        let lines = diff
            .iter_all_changes()
            .map(|change| proto::DiffLine {
                change: match change.tag() {
                    similar::ChangeTag::Equal => Change::Equal,
                    similar::ChangeTag::Insert => Change::Insert,
                    similar::ChangeTag::Delete => Change::Delete,
                } as i32,
                text: change.value().trim_end_matches('\n').to_owned(),
            })
            .collect();
        Ok(proto::VersionDiff {
            article_id: request.article_id,
            from_version: request.from_version,
            to_version: request.to_version,
            title_changed: from.title != to.title,
            lines,
        })
    }

    pub async fn restore(
        &self,
        tenant: &str,
        editor: (&str, bool),
        request: proto::RestoreVersionRequest,
    ) -> Result<proto::Article, ServiceError> {
        let old = self.version(tenant, &request.article_id, request.version).await?;
        let note = if request.change_note.is_empty() {
            format!("restored version {}", request.version)
        } else {
            request.change_note
        };
        self.edit(tenant, &request.article_id, &note, editor, |article| {
            if article.status == ArticleStatus::Published && old.body_markdown.trim().is_empty() {
                return Err(ServiceError::invalid_field("version", "a published article needs a body"));
            }
            article.title = old.title;
            article.body_html = markdown::to_safe_html(&old.body_markdown);
            article.body_markdown = old.body_markdown;
            article.category_id = old.category_id;
            article.tags = old.tags;
            article.questions = old.questions;
            article.author = editor.0.to_owned();
            Ok(())
        })
        .await
    }

    /// Puts the article's pending revision live as its next version, if the article has not
    /// moved since it was proposed.
    pub async fn publish_revision(
        &self,
        tenant: &str,
        request: proto::PublishRevisionRequest,
    ) -> Result<proto::Article, ServiceError> {
        check_id("article_id", &request.article_id)?;
        let mut conn = self.db.reader().acquire().await?;
        let revision = store::revision(&mut conn, tenant, &request.article_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("pending revision"))?;
        drop(conn);
        let note = if request.change_note.is_empty() { revision.change_note.clone() } else { request.change_note };
        let article = self
            .change(tenant, &request.article_id, Some(&note), |article| {
                if article.version != revision.based_on_version {
                    return Err(ServiceError::conflict(format!(
                        "the article moved to version {} after the revision was proposed on {}; discard it and \
                         propose again",
                        article.version, revision.based_on_version
                    )));
                }
                if article.status == ArticleStatus::Published && revision.body_markdown.trim().is_empty() {
                    return Err(ServiceError::invalid_field("body_markdown", "a published article needs a body"));
                }
                article.apply_revision(&revision);
                Ok(())
            })
            .await?;
        // The one published: a proposal made since stays pending.
        let proposed_at = revision.proposed_at.as_ref().map(helpdesk_runtime::time::timestamp_to_micros);
        let mut conn = self.db.writer().acquire().await?;
        store::delete_revision(&mut conn, tenant, &article.id, proposed_at).await?;
        drop(conn);
        self.article_view(&article, &Audience::Staff).await
    }

    pub async fn discard_revision(&self, tenant: &str, article_id: &str) -> Result<proto::Article, ServiceError> {
        check_id("article_id", article_id)?;
        let mut conn = self.db.writer().acquire().await?;
        if !store::delete_revision(&mut conn, tenant, article_id, None).await? {
            return Err(ServiceError::not_found("pending revision"));
        }
        let article =
            store::article(&mut conn, tenant, article_id).await?.ok_or_else(|| ServiceError::not_found("article"))?;
        drop(conn);
        self.article_view(&article, &Audience::Staff).await
    }
}
