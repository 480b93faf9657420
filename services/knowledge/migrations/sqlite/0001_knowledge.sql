-- Knowledge-base schema for SQLite. Kept in step with ../postgres. Lists (tags, segments,
-- questions) and localized names are JSON text. Times are Unix microseconds.
CREATE TABLE articles (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    translation_group TEXT NOT NULL,
    locale TEXT NOT NULL,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    body_html TEXT NOT NULL,
    category_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    visibility BIGINT NOT NULL,
    segments TEXT NOT NULL,
    status BIGINT NOT NULL,
    version BIGINT NOT NULL,
    questions TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT,
    views BIGINT NOT NULL DEFAULT 0,
    helpful_votes BIGINT NOT NULL DEFAULT 0,
    unhelpful_votes BIGINT NOT NULL DEFAULT 0,
    -- When anything the search index reflects last changed: replicas poll it to converge.
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, locale, slug)
);
CREATE INDEX articles_changed ON articles (changed_at);
CREATE INDEX articles_group ON articles (tenant_id, translation_group);

CREATE TABLE article_versions (
    tenant_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    title TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    category_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    questions TEXT NOT NULL,
    author TEXT NOT NULL,
    change_note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, article_id, version)
);

CREATE TABLE categories (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    names TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE synonyms (
    tenant_id TEXT NOT NULL,
    locale TEXT NOT NULL,
    groups TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, locale)
);

CREATE TABLE votes (
    tenant_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    helpful BIGINT NOT NULL,
    voted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, article_id, voter)
);

-- Searches and suggestions, for the content-gap reports.
CREATE TABLE searches (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    query TEXT NOT NULL,
    locale TEXT NOT NULL,
    results BIGINT NOT NULL,
    searched_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX searches_time ON searches (tenant_id, searched_at);

CREATE TABLE clicks (
    tenant_id TEXT NOT NULL,
    search_id TEXT NOT NULL,
    article_id TEXT NOT NULL,
    clicked_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, search_id, article_id)
);

-- Tickets that got no confident suggestion: topics the knowledge base does not cover yet.
CREATE TABLE uncovered_tickets (
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    locale TEXT NOT NULL,
    topic TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX uncovered_time ON uncovered_tickets (tenant_id, created_at);
