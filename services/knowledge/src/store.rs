//! The knowledge base's tables. The database is the source of truth; search indexes are rebuilt
//! from it and follow its `changed_at` column.

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus, Visibility};
use helpdesk_runtime::{
    ServiceError,
    db::{positional, row_lock},
    time::micros_to_timestamp,
};
use prost::Message;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use crate::model::{Article, Stats};

const ARTICLE_COLUMNS: &str = "tenant_id, id, translation_group, locale, slug, title, body_markdown, body_html, \
    category_id, tags, visibility, segments, status, version, questions, author, created_at, updated_at, \
    published_at, views, helpful_votes, unhelpful_votes, changed_at";

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

/// A JSON column's value; unreadable JSON is a corrupt row, an error rather than an empty value.
fn json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text)
        .map_err(|error| sqlx::Error::ColumnDecode { index: column.to_owned(), source: Box::new(error) })
}

/// An `articles` row as stored: lists as JSON text, enums as integers. Integers are `BIGINT` on
/// PostgreSQL, so every one is read as `i64`.
#[derive(sqlx::FromRow)]
struct ArticleRow {
    tenant_id: String,
    id: String,
    translation_group: String,
    locale: String,
    slug: String,
    title: String,
    body_markdown: String,
    body_html: String,
    category_id: String,
    tags: String,
    visibility: i64,
    segments: String,
    status: i64,
    version: i64,
    questions: String,
    author: String,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    views: i64,
    helpful_votes: i64,
    unhelpful_votes: i64,
    changed_at: i64,
}

impl TryFrom<ArticleRow> for Article {
    type Error = sqlx::Error;

    fn try_from(row: ArticleRow) -> Result<Self, sqlx::Error> {
        Ok(Article {
            tags: json("tags", &row.tags)?,
            visibility: Visibility::try_from(row.visibility as i32).unwrap_or(Visibility::Internal),
            segments: json("segments", &row.segments)?,
            status: ArticleStatus::try_from(row.status as i32).unwrap_or(ArticleStatus::Draft),
            version: row.version as i32,
            questions: json("questions", &row.questions)?,
            stats: Stats { views: row.views, helpful: row.helpful_votes, unhelpful: row.unhelpful_votes },
            tenant_id: row.tenant_id,
            id: row.id,
            translation_group: row.translation_group,
            locale: row.locale,
            slug: row.slug,
            title: row.title,
            body_markdown: row.body_markdown,
            body_html: row.body_html,
            category_id: row.category_id,
            author: row.author,
            created_at: row.created_at,
            updated_at: row.updated_at,
            published_at: row.published_at,
            changed_at: row.changed_at,
        })
    }
}

fn articles(rows: Vec<ArticleRow>) -> Result<Vec<Article>, ServiceError> {
    Ok(rows.into_iter().map(Article::try_from).collect::<Result<_, _>>()?)
}

/// The article, locked for the rest of the transaction on PostgreSQL (SQLite's writer lock
/// serializes writes already).
pub(crate) async fn article_for_update(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<Article>, ServiceError> {
    let sql = format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND id = $2{}", row_lock(conn));
    let row: Option<ArticleRow> = sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(&mut *conn).await?;
    Ok(row.map(Article::try_from).transpose()?)
}

pub(crate) async fn article(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<Option<Article>, ServiceError> {
    let sql = format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND id = $2");
    let row: Option<ArticleRow> = sqlx::query_as(&sql).bind(tenant).bind(id).fetch_optional(&mut *conn).await?;
    Ok(row.map(Article::try_from).transpose()?)
}

pub(crate) async fn article_by_slug(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
    slug: &str,
) -> Result<Option<Article>, ServiceError> {
    let sql = format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND locale = $2 AND slug = $3");
    let row: Option<ArticleRow> =
        sqlx::query_as(&sql).bind(tenant).bind(locale).bind(slug).fetch_optional(&mut *conn).await?;
    Ok(row.map(Article::try_from).transpose()?)
}

pub(crate) async fn slug_taken(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
    slug: &str,
    except_id: &str,
) -> Result<bool, ServiceError> {
    // Planned afresh each time: a plan cached while a bulk import's table was small would scan it
    // on PostgreSQL for the rest of the import.
    let row = sqlx::query("SELECT id FROM articles WHERE tenant_id = $1 AND locale = $2 AND slug = $3 AND id <> $4")
        .persistent(false)
        .bind(tenant)
        .bind(locale)
        .bind(slug)
        .bind(except_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

pub(crate) async fn insert_article(conn: &mut AnyConnection, article: &Article) -> Result<(), ServiceError> {
    let placeholders: Vec<String> = (1..=23).map(|n| format!("${n}")).collect();
    let sql = format!("INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES ({})", placeholders.join(", "));
    bind_article(sqlx::query(&sql), article).execute(&mut *conn).await?;
    Ok(())
}

/// Writes every column but the key and the creation time.
pub(crate) async fn update_article(conn: &mut AnyConnection, article: &Article) -> Result<(), ServiceError> {
    let sql = "UPDATE articles SET translation_group = $3, locale = $4, slug = $5, title = $6, body_markdown = $7, \
        body_html = $8, category_id = $9, tags = $10, visibility = $11, segments = $12, status = $13, version = $14, \
        questions = $15, author = $16, created_at = $17, updated_at = $18, published_at = $19, views = $20, \
        helpful_votes = $21, unhelpful_votes = $22, changed_at = $23 WHERE tenant_id = $1 AND id = $2";
    bind_article(sqlx::query(sql), article).execute(&mut *conn).await?;
    Ok(())
}

fn bind_article<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    article: &'q Article,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&article.tenant_id)
        .bind(&article.id)
        .bind(&article.translation_group)
        .bind(&article.locale)
        .bind(&article.slug)
        .bind(&article.title)
        .bind(&article.body_markdown)
        .bind(&article.body_html)
        .bind(&article.category_id)
        .bind(json_list(&article.tags))
        .bind(article.visibility as i64)
        .bind(json_list(&article.segments))
        .bind(article.status as i64)
        .bind(i64::from(article.version))
        .bind(json_list(&article.questions))
        .bind(&article.author)
        .bind(article.created_at)
        .bind(article.updated_at)
        .bind(article.published_at)
        .bind(article.stats.views)
        .bind(article.stats.helpful)
        .bind(article.stats.unhelpful)
        .bind(article.changed_at)
}

pub(crate) async fn insert_version(
    conn: &mut AnyConnection,
    article: &Article,
    note: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO article_versions (tenant_id, article_id, version, title, body_markdown, category_id, tags, \
         questions, author, change_note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&article.tenant_id)
    .bind(&article.id)
    .bind(i64::from(article.version))
    .bind(&article.title)
    .bind(&article.body_markdown)
    .bind(&article.category_id)
    .bind(json_list(&article.tags))
    .bind(json_list(&article.questions))
    .bind(&article.author)
    .bind(note)
    .bind(article.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An `article_versions` row without the content, as lists of versions read it.
#[derive(sqlx::FromRow)]
struct VersionSummaryRow {
    article_id: String,
    version: i64,
    title: String,
    category_id: String,
    tags: String,
    author: String,
    change_note: String,
    created_at: i64,
}

/// A whole `article_versions` row.
#[derive(sqlx::FromRow)]
struct VersionRow {
    #[sqlx(flatten)]
    summary: VersionSummaryRow,
    body_markdown: String,
    questions: String,
}

impl TryFrom<VersionSummaryRow> for proto::ArticleVersion {
    type Error = sqlx::Error;

    fn try_from(row: VersionSummaryRow) -> Result<Self, sqlx::Error> {
        Ok(proto::ArticleVersion {
            article_id: row.article_id,
            version: row.version as i32,
            title: row.title,
            body_markdown: String::new(),
            category_id: row.category_id,
            tags: json("tags", &row.tags)?,
            questions: Vec::new(),
            author: row.author,
            change_note: row.change_note,
            created_at: Some(micros_to_timestamp(row.created_at)),
        })
    }
}

impl TryFrom<VersionRow> for proto::ArticleVersion {
    type Error = sqlx::Error;

    fn try_from(row: VersionRow) -> Result<Self, sqlx::Error> {
        let summary = proto::ArticleVersion::try_from(row.summary)?;
        Ok(proto::ArticleVersion {
            body_markdown: row.body_markdown,
            questions: json("questions", &row.questions)?,
            ..summary
        })
    }
}

pub(crate) async fn versions(
    conn: &mut AnyConnection,
    tenant: &str,
    article: &str,
) -> Result<Vec<proto::ArticleVersion>, ServiceError> {
    let rows: Vec<VersionSummaryRow> = sqlx::query_as(
        "SELECT article_id, version, title, category_id, tags, author, change_note, created_at FROM article_versions \
         WHERE tenant_id = $1 AND article_id = $2 ORDER BY version DESC",
    )
    .bind(tenant)
    .bind(article)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(proto::ArticleVersion::try_from).collect::<Result<_, _>>()?)
}

pub(crate) async fn version(
    conn: &mut AnyConnection,
    tenant: &str,
    article: &str,
    version: i32,
) -> Result<Option<proto::ArticleVersion>, ServiceError> {
    let row: Option<VersionRow> = sqlx::query_as(
        "SELECT article_id, version, title, body_markdown, category_id, tags, questions, author, change_note, \
         created_at FROM article_versions WHERE tenant_id = $1 AND article_id = $2 AND version = $3",
    )
    .bind(tenant)
    .bind(article)
    .bind(i64::from(version))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(proto::ArticleVersion::try_from).transpose()?)
}

/// The other articles of `group`: an article's translations.
pub(crate) async fn translations(
    conn: &mut AnyConnection,
    tenant: &str,
    group: &str,
    except_id: &str,
) -> Result<Vec<Article>, ServiceError> {
    let sql = format!(
        "SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND translation_group = $2 AND id <> $3 \
         ORDER BY locale"
    );
    let rows: Vec<ArticleRow> =
        sqlx::query_as(&sql).bind(tenant).bind(group).bind(except_id).fetch_all(&mut *conn).await?;
    articles(rows)
}

/// The article's pending revision, if any.
pub(crate) async fn revision(
    conn: &mut AnyConnection,
    tenant: &str,
    article_id: &str,
) -> Result<Option<proto::ArticleRevision>, ServiceError> {
    let bytes: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT revision FROM article_revisions WHERE tenant_id = $1 AND article_id = $2")
            .bind(tenant)
            .bind(article_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(bytes) = bytes else { return Ok(None) };
    proto::ArticleRevision::decode(bytes.as_slice())
        .map(Some)
        .map_err(|error| ServiceError::internal(&format!("stored revision of {article_id}: {error}")))
}

/// Stores `revision` as the article's pending one, replacing an earlier proposal.
pub(crate) async fn save_revision(
    conn: &mut AnyConnection,
    tenant: &str,
    article_id: &str,
    revision: &proto::ArticleRevision,
    at: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO article_revisions (tenant_id, article_id, revision, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, article_id) DO UPDATE SET revision = excluded.revision, created_at = excluded.created_at",
    )
    .bind(tenant)
    .bind(article_id)
    .bind(revision.encode_to_vec())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops the article's pending revision — only the one proposed at `proposed_at` (microseconds),
/// when given, so that a newer proposal survives; whether there was one.
pub(crate) async fn delete_revision(
    conn: &mut AnyConnection,
    tenant: &str,
    article_id: &str,
    proposed_at: Option<i64>,
) -> Result<bool, ServiceError> {
    let result = sqlx::query(
        "DELETE FROM article_revisions WHERE tenant_id = $1 AND article_id = $2 AND ($3 < 0 OR created_at = $3)",
    )
    .bind(tenant)
    .bind(article_id)
    .bind(proposed_at.unwrap_or(-1))
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

pub(crate) struct ArticleFilter<'a> {
    pub(crate) locale: &'a str,
    pub(crate) status: Option<ArticleStatus>,
    pub(crate) category_id: &'a str,
    pub(crate) tag: &'a str,
    /// Articles with ids after this one, in id order (ids are time-ordered UUIDv7).
    pub(crate) after_id: &'a str,
    pub(crate) limit: i64,
}

pub(crate) async fn list_articles(
    conn: &mut AnyConnection,
    tenant: &str,
    filter: &ArticleFilter<'_>,
) -> Result<Vec<Article>, ServiceError> {
    // Tags are a JSON array: match the quoted tag, which labels never contain.
    let sql = format!(
        "SELECT {ARTICLE_COLUMNS} FROM articles WHERE tenant_id = $1 AND ($2 = '' OR locale = $2) \
         AND ($3 < 0 OR status = $3) AND ($4 = '' OR category_id = $4) AND ($5 = '' OR tags LIKE $5) AND id > $6 \
         ORDER BY id LIMIT $7"
    );
    let tag =
        if filter.tag.is_empty() { String::new() } else { format!("%\"{}\"%", filter.tag.replace(['%', '_'], "")) };
    let rows: Vec<ArticleRow> = sqlx::query_as(&sql)
        .bind(tenant)
        .bind(filter.locale)
        .bind(filter.status.map_or(-1, |status| status as i64))
        .bind(filter.category_id)
        .bind(tag)
        .bind(filter.after_id)
        .bind(filter.limit)
        .fetch_all(&mut *conn)
        .await?;
    articles(rows)
}

/// That an article changed, and when: how search indexes follow the database without reading
/// whole rows they already have.
#[derive(sqlx::FromRow)]
pub(crate) struct ArticleChange {
    pub(crate) tenant_id: String,
    pub(crate) locale: String,
    pub(crate) id: String,
    pub(crate) changed_at: i64,
}

/// Which articles of every tenant changed at or after `since`.
pub(crate) async fn changes_since(conn: &mut AnyConnection, since: i64) -> Result<Vec<ArticleChange>, ServiceError> {
    Ok(sqlx::query_as("SELECT tenant_id, locale, id, changed_at FROM articles WHERE changed_at >= $1")
        .bind(since)
        .fetch_all(&mut *conn)
        .await?)
}

/// One page of a tenant's published articles in id order, for a full rebuild.
pub(crate) async fn published_page(
    conn: &mut AnyConnection,
    tenant: Option<&str>,
    after: (&str, &str),
    limit: i64,
) -> Result<Vec<Article>, ServiceError> {
    let sql = format!(
        "SELECT {ARTICLE_COLUMNS} FROM articles WHERE status = $1 AND ($2 = '' OR tenant_id = $2) \
         AND (tenant_id > $3 OR (tenant_id = $3 AND id > $4)) ORDER BY tenant_id, id LIMIT $5"
    );
    let rows: Vec<ArticleRow> = sqlx::query_as(&sql)
        .bind(ArticleStatus::Published as i64)
        .bind(tenant.unwrap_or(""))
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    articles(rows)
}

pub(crate) async fn upsert_category(
    conn: &mut AnyConnection,
    tenant: &str,
    category: &proto::Category,
) -> Result<(), ServiceError> {
    let names = serde_json::to_string(&category.names).unwrap_or_else(|_| "{}".to_owned());
    sqlx::query(
        "INSERT INTO categories (tenant_id, id, parent_id, names, position) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET parent_id = $3, names = $4, position = $5",
    )
    .bind(tenant)
    .bind(&category.id)
    .bind(&category.parent_id)
    .bind(names)
    .bind(i64::from(category.position))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CategoryRow {
    id: String,
    parent_id: String,
    /// Locale to name, as a JSON object.
    names: String,
    position: i64,
}

impl TryFrom<CategoryRow> for proto::Category {
    type Error = sqlx::Error;

    fn try_from(row: CategoryRow) -> Result<Self, sqlx::Error> {
        Ok(proto::Category {
            names: json("names", &row.names)?,
            id: row.id,
            parent_id: row.parent_id,
            position: row.position as i32,
        })
    }
}

/// The tenant's categories, by position.
pub(crate) async fn categories(conn: &mut AnyConnection, tenant: &str) -> Result<Vec<proto::Category>, ServiceError> {
    let rows: Vec<CategoryRow> = sqlx::query_as(
        "SELECT id, parent_id, names, position FROM categories WHERE tenant_id = $1 ORDER BY position, id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(proto::Category::try_from).collect::<Result<_, _>>()?)
}

pub(crate) async fn set_synonyms(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
    groups: &[Vec<String>],
    at: i64,
) -> Result<(), ServiceError> {
    let groups = serde_json::to_string(groups).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        "INSERT INTO synonyms (tenant_id, locale, groups, changed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, locale) DO UPDATE SET groups = $3, changed_at = $4",
    )
    .bind(tenant)
    .bind(locale)
    .bind(groups)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The tenant's synonym groups for a locale; none when never set.
pub(crate) async fn synonyms(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
) -> Result<Vec<Vec<String>>, ServiceError> {
    let groups: Option<String> = sqlx::query_scalar("SELECT groups FROM synonyms WHERE tenant_id = $1 AND locale = $2")
        .bind(tenant)
        .bind(locale)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(groups) = groups else { return Ok(Vec::new()) };
    Ok(json("groups", &groups)?)
}

/// A tenant's synonym groups for one locale.
pub(crate) struct SynonymSet {
    pub(crate) tenant_id: String,
    pub(crate) locale: String,
    pub(crate) groups: Vec<Vec<String>>,
}

/// A `synonyms` row as stored: the groups as JSON text.
#[derive(sqlx::FromRow)]
struct SynonymRow {
    tenant_id: String,
    locale: String,
    groups: String,
}

impl TryFrom<SynonymRow> for SynonymSet {
    type Error = sqlx::Error;

    fn try_from(row: SynonymRow) -> Result<Self, sqlx::Error> {
        Ok(SynonymSet { groups: json("groups", &row.groups)?, tenant_id: row.tenant_id, locale: row.locale })
    }
}

/// Synonym sets changed at or after `since` (all of them from 0).
pub(crate) async fn synonyms_since(conn: &mut AnyConnection, since: i64) -> Result<Vec<SynonymSet>, ServiceError> {
    let rows: Vec<SynonymRow> = sqlx::query_as("SELECT tenant_id, locale, groups FROM synonyms WHERE changed_at >= $1")
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(SynonymSet::try_from).collect::<Result<_, _>>()?)
}

/// Records a voter's vote (replacing their earlier one) and recounts the article's votes.
pub(crate) async fn vote(
    conn: &mut AnyConnection,
    tenant: &str,
    article: &str,
    voter: &str,
    helpful: bool,
    at: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO votes (tenant_id, article_id, voter, helpful, voted_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, article_id, voter) DO UPDATE SET helpful = $4, voted_at = $5",
    )
    .bind(tenant)
    .bind(article)
    .bind(voter)
    .bind(i64::from(helpful))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE articles SET \
         helpful_votes = (SELECT COUNT(*) FROM votes WHERE tenant_id = $1 AND article_id = $2 AND helpful = 1), \
         unhelpful_votes = (SELECT COUNT(*) FROM votes WHERE tenant_id = $1 AND article_id = $2 AND helpful = 0), \
         changed_at = $3 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(article)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds counted views to their articles.
pub(crate) async fn add_views(
    conn: &mut AnyConnection,
    views: &[((String, String), i64)],
    at: i64,
) -> Result<(), ServiceError> {
    for ((tenant, article), count) in views {
        sqlx::query("UPDATE articles SET views = views + $3, changed_at = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(article)
            .bind(count)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A search or suggestion, for the content-gap reports.
pub(crate) struct SearchLog {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) query: String,
    pub(crate) locale: String,
    pub(crate) results: i64,
    pub(crate) at: i64,
}

pub(crate) async fn log_searches(conn: &mut AnyConnection, logs: &[SearchLog]) -> Result<(), ServiceError> {
    const COLUMNS: usize = 7;
    for chunk in logs.chunks(100) {
        let mut sql =
            String::from("INSERT INTO searches (tenant_id, id, kind, query, locale, results, searched_at) VALUES ");
        for (row, _) in chunk.iter().enumerate() {
            let marks: Vec<String> = (1..=COLUMNS).map(|column| positional(conn, row * COLUMNS + column)).collect();
            sql.push_str(if row == 0 { "(" } else { ", (" });
            sql.push_str(&marks.join(", "));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut query = sqlx::query(&sql);
        for log in chunk {
            query = query
                .bind(&log.tenant_id)
                .bind(&log.id)
                .bind(log.kind)
                .bind(&log.query)
                .bind(&log.locale)
                .bind(log.results)
                .bind(log.at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn record_click(
    conn: &mut AnyConnection,
    tenant: &str,
    search: &str,
    article: &str,
    at: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO clicks (tenant_id, search_id, article_id, clicked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(search)
    .bind(article)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes searches and clicks from before `before` (microseconds); returns how many.
pub(crate) async fn delete_activity_before(pool: &sqlx::AnyPool, before: i64) -> Result<u64, ServiceError> {
    let mut tx = pool.begin().await?;
    let clicks = sqlx::query("DELETE FROM clicks WHERE clicked_at < $1").bind(before).execute(&mut *tx).await?;
    let searches = sqlx::query("DELETE FROM searches WHERE searched_at < $1").bind(before).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(clicks.rows_affected() + searches.rows_affected())
}

pub(crate) async fn record_uncovered(
    conn: &mut AnyConnection,
    tenant: &str,
    ticket: &str,
    locale: &str,
    topic: &str,
    confidence: f64,
    at: i64,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO uncovered_tickets (tenant_id, ticket_id, locale, topic, confidence, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(ticket)
    .bind(locale)
    .bind(topic)
    .bind(confidence)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct QueryStatRow {
    query: String,
    locale: String,
    searches: i64,
    clicks: i64,
    average_results: f64,
}

impl From<QueryStatRow> for proto::QueryStat {
    fn from(row: QueryStatRow) -> Self {
        proto::QueryStat {
            query: row.query,
            locale: row.locale,
            searches: row.searches,
            clicks: row.clicks,
            average_results: row.average_results,
        }
    }
}

/// Queries of a period by how often they were searched: results and clicks per normalized query.
pub(crate) async fn query_stats(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
    period: (i64, i64),
    zero_results: bool,
    limit: i64,
) -> Result<Vec<proto::QueryStat>, ServiceError> {
    let having = if zero_results { "MAX(s.results) = 0" } else { "MIN(s.results) > 0" };
    let sql = format!(
        "SELECT s.query, s.locale, COUNT(*) AS searches, SUM(CASE WHEN c.search_id IS NULL THEN 0 ELSE 1 END) AS clicks, \
         AVG(CAST(s.results AS DOUBLE PRECISION)) AS average_results \
         FROM searches s LEFT JOIN (SELECT DISTINCT tenant_id, search_id FROM clicks) c \
           ON c.tenant_id = s.tenant_id AND c.search_id = s.id \
         WHERE s.tenant_id = $1 AND s.kind = 'search' AND ($2 = '' OR s.locale = $2) \
           AND s.searched_at >= $3 AND s.searched_at < $4 \
         GROUP BY s.query, s.locale HAVING {having} \
         ORDER BY COUNT(*) * 1.0 - 3.0 * SUM(CASE WHEN c.search_id IS NULL THEN 0 ELSE 1 END) DESC, s.query LIMIT $5"
    );
    let rows: Vec<QueryStatRow> = sqlx::query_as(&sql)
        .bind(tenant)
        .bind(locale)
        .bind(period.0)
        .bind(period.1)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(proto::QueryStat::from).collect())
}

/// A ticket that no article answered, with the terms that name its topic.
#[derive(sqlx::FromRow)]
pub(crate) struct Uncovered {
    pub(crate) ticket_id: String,
    pub(crate) locale: String,
    pub(crate) topic: String,
}

/// Tickets of a period that no article answered, newest first.
pub(crate) async fn uncovered(
    conn: &mut AnyConnection,
    tenant: &str,
    locale: &str,
    period: (i64, i64),
) -> Result<Vec<Uncovered>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT ticket_id, locale, topic FROM uncovered_tickets WHERE tenant_id = $1 AND ($2 = '' OR locale = $2) \
         AND created_at >= $3 AND created_at < $4 ORDER BY created_at DESC LIMIT 20000",
    )
    .bind(tenant)
    .bind(locale)
    .bind(period.0)
    .bind(period.1)
    .fetch_all(&mut *conn)
    .await?)
}
