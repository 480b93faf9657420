-- Content proposed for a published article by someone who may not publish: one per article,
-- the encoded helpdesk.knowledge.v1.ArticleRevision. It goes live only when an admin publishes it.
CREATE TABLE article_revisions (
    tenant_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    revision BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, article_id)
);
