//! Votes: whether readers found a published article helpful, one vote per voter (a later vote
//! replaces theirs). The counts weigh in ranking, so the article is reindexed with them.

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus};
use helpdesk_runtime::{ServiceError, time::now_micros};

use crate::{
    model::Audience,
    service::{Knowledge, check_id},
    store,
};

impl Knowledge {
    pub async fn vote(
        &self,
        tenant: &str,
        audience: &Audience,
        article_id: &str,
        voter: &str,
        helpful: bool,
    ) -> Result<proto::ArticleStats, ServiceError> {
        check_id("article_id", article_id)?;
        if voter.is_empty() || voter.len() > 200 {
            return Err(ServiceError::invalid_field("visitor_id", "is required, at most 200 characters"));
        }
        let mut tx = self.db.writer().begin().await?;
        let article = store::article_for_update(&mut tx, tenant, article_id).await?;
        let article = article
            .filter(|article| article.status == ArticleStatus::Published && audience.may_read(article))
            .ok_or_else(|| ServiceError::not_found("article"))?;
        store::vote(&mut tx, tenant, article_id, voter, helpful, now_micros().max(article.changed_at + 1)).await?;
        let article =
            store::article(&mut tx, tenant, article_id).await?.ok_or_else(|| ServiceError::not_found("article"))?;
        tx.commit().await?;
        let stats = article.stats.to_proto();
        self.index(vec![article]).await?;
        Ok(stats)
    }
}
