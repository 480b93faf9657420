//! The knowledge base's operations: validated at the edge, written to the database, then
//! reflected in the search indexes before the caller hears back.

use std::sync::Arc;

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus, diff_line::Change};
use helpdesk_runtime::{ServiceError, db::Database, time::now_micros};

use crate::{
    gaps::{self, Activity},
    index::{Indexes, SearchParams, Synonyms},
    markdown,
    model::{self, Article, Audience, Stats},
    store,
    suggest::{MIN_CONFIDENCE, Scored},
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;
const MAX_QUERY_CHARS: usize = 500;
/// Suggestions read the start of a ticket: its subject and first paragraphs say what it is about.
const MAX_SUGGEST_CHARS: usize = 2_000;
const MAX_SYNONYM_GROUPS: usize = 1_000;
const DEFAULT_PAGE: i64 = 50;
const MAX_IMPORT: usize = 1_000;
const MAX_PAGE: i64 = 500;

pub struct Knowledge {
    db: Database,
    indexes: Arc<Indexes>,
    activity: Activity,
}

/// A validated draft from a create request, with its change note; translation group and slug
/// are settled by [`insert_new`].
fn new_article(
    tenant: &str,
    author: &str,
    request: proto::CreateArticleRequest,
    now: i64,
) -> Result<NewArticle, ServiceError> {
    model::check_locale("locale", &request.locale)?;
    let title = model::check_title(&request.title)?;
    model::check_body(&request.body_markdown)?;
    let id = uuid::Uuid::now_v7().to_string();
    let article = Article {
        tenant_id: tenant.to_owned(),
        translation_group: request.translation_of,
        locale: request.locale,
        slug: model::slug(&request.slug, &title)?,
        tags: model::labels("tags", &request.tags)?,
        segments: model::labels("segments", &request.segments)?,
        questions: model::questions(&request.questions)?,
        visibility: model::visibility(request.visibility)?,
        title,
        body_html: markdown::to_safe_html(&request.body_markdown),
        body_markdown: request.body_markdown,
        category_id: request.category_id,
        status: ArticleStatus::Draft,
        version: 1,
        author: author.to_owned(),
        created_at: now,
        updated_at: now,
        published_at: None,
        stats: Stats::default(),
        changed_at: now,
        id,
    };
    Ok(NewArticle { article, note: request.change_note, slug_given: !request.slug.is_empty() })
}

/// Names the fields of an error about the `i`th article of a list.
fn in_list(i: usize, mut error: ServiceError) -> ServiceError {
    for violation in &mut error.field_violations {
        violation.field = format!("articles[{i}].{}", violation.field);
    }
    error
}

/// A validated article before it is written.
struct NewArticle {
    article: Article,
    note: String,
    /// A slug asked for must be free; a derived one gets a suffix when taken.
    slug_given: bool,
}

/// Writes a new article and its first version. `translation_group` holds the article it
/// translates, if any, and is replaced by that article's group.
async fn insert_new(tx: &mut sqlx::AnyConnection, new: &mut NewArticle) -> Result<(), ServiceError> {
    let article = &mut new.article;
    if article.translation_group.is_empty() {
        article.translation_group = article.id.clone();
    } else {
        let source = store::article(tx, &article.tenant_id, &article.translation_group)
            .await?
            .ok_or_else(|| ServiceError::invalid_field("translation_of", "no such article"))?;
        if source.locale == article.locale {
            return Err(ServiceError::invalid_field("translation_of", "a translation needs another locale"));
        }
        article.translation_group = source.translation_group;
    }
    if store::slug_taken(tx, &article.tenant_id, &article.locale, &article.slug, &article.id).await? {
        if new.slug_given {
            return Err(ServiceError::invalid_field("slug", "already used by another article in this locale"));
        }
        article.slug = format!("{}-{}", article.slug, &article.id[article.id.len() - 6..]);
    }
    store::insert_article(tx, article).await?;
    store::insert_version(tx, article, &new.note).await
}

fn limit(requested: i32, default: usize, max: usize) -> Result<usize, ServiceError> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(ServiceError::invalid_field("limit", "must not be negative")),
        n => Ok((n as usize).min(max)),
    }
}

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

fn check_id(field: &str, id: &str) -> Result<(), ServiceError> {
    if id.is_empty() {
        return Err(ServiceError::invalid_field(field, "is required"));
    }
    if id.len() > 64 {
        return Err(ServiceError::invalid_field(field, "at most 64 characters"));
    }
    Ok(())
}

fn status(field: &str, value: i32) -> Result<ArticleStatus, ServiceError> {
    match ArticleStatus::try_from(value) {
        Ok(ArticleStatus::Unspecified) | Err(_) => Err(ServiceError::invalid_field(field, "unknown status")),
        Ok(status) => Ok(status),
    }
}

/// Cuts `text` to at most `max` characters.
fn prefix(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(at, _)| &text[..at])
}

impl Knowledge {
    pub(crate) fn new(db: Database, indexes: Arc<Indexes>, activity: Activity) -> Self {
        Self { db, indexes, activity }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Reflects committed articles in the search indexes, off the async threads.
    async fn index(&self, articles: Vec<Article>) -> Result<(), ServiceError> {
        let indexes = self.indexes.clone();
        tokio::task::spawn_blocking(move || indexes.apply(&articles))
            .await
            .map_err(|error| ServiceError::internal(&error))?
    }

    /// The article as `audience` may see it: staff see every translation, who wrote it and the
    /// pending revision; everyone else only the translations they may read, and no staff names.
    async fn article_view(&self, article: &Article, audience: &Audience) -> Result<proto::Article, ServiceError> {
        let mut conn = self.db.reader().acquire().await?;
        let translations = store::translations(&mut conn, &article.tenant_id, &article.translation_group, &article.id)
            .await?
            .iter()
            .filter(|translation| audience.may_read(translation))
            .map(Article::to_translation)
            .collect();
        let mut view = article.to_proto(translations);
        if matches!(audience, Audience::Staff) {
            view.pending_revision = store::revision(&mut conn, &article.tenant_id, &article.id).await?;
        } else {
            view.author.clear();
        }
        Ok(view)
    }

    /// Applies `edit` to the live article, as a new version noted `note`. For a published
    /// article and a caller who may not publish, the edited copy becomes the article's pending
    /// revision instead, and the live article stays as it was.
    async fn edit(
        &self,
        tenant: &str,
        id: &str,
        note: &str,
        editor: (&str, bool),
        edit: impl FnOnce(&mut Article) -> Result<(), ServiceError>,
    ) -> Result<proto::Article, ServiceError> {
        let (author, may_publish) = editor;
        check_id("id", id)?;
        if !may_publish {
            let mut tx = self.db.writer().begin().await?;
            let article = store::article_for_update(&mut tx, tenant, id)
                .await?
                .ok_or_else(|| ServiceError::not_found("article"))?;
            if article.status == ArticleStatus::Published {
                let mut proposed = article.clone();
                edit(&mut proposed)?;
                let now = now_micros();
                let revision = proposed.to_revision(article.version, author, note, now);
                store::save_revision(&mut tx, tenant, id, &revision, now).await?;
                tx.commit().await?;
                return self.article_view(&article, &Audience::Staff).await;
            }
        }
        let article = self
            .change(tenant, id, Some(note), |article| {
                if article.status == ArticleStatus::Published && !may_publish {
                    return Err(ServiceError::conflict("the article was published meanwhile; send the change again"));
                }
                edit(article)
            })
            .await?;
        self.article_view(&article, &Audience::Staff).await
    }

    pub async fn create_article(
        &self,
        tenant: &str,
        author: &str,
        request: proto::CreateArticleRequest,
    ) -> Result<proto::Article, ServiceError> {
        let mut new = new_article(tenant, author, request, now_micros())?;
        let mut tx = self.db.writer().begin().await?;
        insert_new(&mut tx, &mut new).await?;
        tx.commit().await?;
        self.article_view(&new.article, &Audience::Staff).await
    }

    /// Creates many articles in one transaction, published if asked: all or nothing.
    pub async fn import_articles(
        &self,
        tenant: &str,
        author: &str,
        admin: bool,
        request: proto::ImportArticlesRequest,
    ) -> Result<proto::ImportArticlesResponse, ServiceError> {
        if request.articles.is_empty() || request.articles.len() > MAX_IMPORT {
            return Err(ServiceError::invalid_field("articles", format!("1 to {MAX_IMPORT} articles")));
        }
        if request.publish && !admin {
            return Err(ServiceError::permission_denied("only admins publish articles"));
        }
        let now = now_micros();
        let mut articles = Vec::with_capacity(request.articles.len());
        for (i, create) in request.articles.into_iter().enumerate() {
            let in_list = |error| in_list(i, error);
            let mut new = new_article(tenant, author, create, now).map_err(in_list)?;
            if request.publish {
                if new.article.body_markdown.trim().is_empty() {
                    return Err(in_list(ServiceError::invalid_field(
                        "body_markdown",
                        "a published article needs a body",
                    )));
                }
                new.article.status = ArticleStatus::Published;
                new.article.published_at = Some(now);
            }
            articles.push(new);
        }
        let mut tx = self.db.writer().begin().await?;
        for (i, new) in articles.iter_mut().enumerate() {
            insert_new(&mut tx, new).await.map_err(|error| in_list(i, error))?;
        }
        tx.commit().await?;
        let article_ids = articles.iter().map(|new| new.article.id.clone()).collect();
        if request.publish {
            self.index(articles.into_iter().map(|new| new.article).collect()).await?;
        }
        Ok(proto::ImportArticlesResponse { article_ids })
    }

    /// Loads the article for update, lets `change` edit it, and writes it back with a fresh
    /// `changed_at`; a new content version is recorded when `note` is given.
    async fn change(
        &self,
        tenant: &str,
        id: &str,
        note: Option<&str>,
        change: impl FnOnce(&mut Article) -> Result<(), ServiceError>,
    ) -> Result<Article, ServiceError> {
        check_id("id", id)?;
        let mut tx = self.db.writer().begin().await?;
        let mut article =
            store::article_for_update(&mut tx, tenant, id).await?.ok_or_else(|| ServiceError::not_found("article"))?;
        let (before, slug_before) = (article.changed_at, article.slug.clone());
        change(&mut article)?;
        let now = now_micros();
        article.updated_at = now;
        // Strictly increasing, even across replicas with clocks apart: indexes keep the newest.
        article.changed_at = now.max(before + 1);
        if let Some(note) = note {
            article.version += 1;
            store::insert_version(&mut tx, &article, note).await?;
        }
        if article.slug != slug_before
            && store::slug_taken(&mut tx, tenant, &article.locale, &article.slug, &article.id).await?
        {
            return Err(ServiceError::invalid_field("slug", "already used by another article in this locale"));
        }
        store::update_article(&mut tx, &article).await?;
        tx.commit().await?;
        self.index(vec![article.clone()]).await?;
        Ok(article)
    }

    pub async fn update_article(
        &self,
        tenant: &str,
        editor: (&str, bool),
        request: proto::UpdateArticleRequest,
    ) -> Result<proto::Article, ServiceError> {
        let author = editor.0;
        let title = request.title.as_deref().map(model::check_title).transpose()?;
        if let Some(body) = &request.body_markdown {
            model::check_body(body)?;
        }
        let tags = request.tags.as_ref().map(|tags| model::labels("tags", &tags.values)).transpose()?;
        let segments = request.segments.as_ref().map(|s| model::labels("segments", &s.values)).transpose()?;
        let questions = request.questions.as_ref().map(|q| model::questions(&q.values)).transpose()?;
        let visibility = request.visibility.map(model::visibility).transpose()?;
        let slug = match &request.slug {
            Some(slug) if slug.is_empty() => return Err(ServiceError::invalid_field("slug", "must not be empty")),
            Some(slug) => Some(model::slug(slug, "")?),
            None => None,
        };
        self.edit(tenant, &request.id, &request.change_note, editor, |article| {
            if request.expected_version != 0 && request.expected_version != article.version {
                return Err(ServiceError::conflict(format!(
                    "the article is at version {}, not {}",
                    article.version, request.expected_version
                ))
                .with_field("expected_version"));
            }
            if article.status == ArticleStatus::Published
                && request.body_markdown.as_deref().is_some_and(|body| body.trim().is_empty())
            {
                return Err(ServiceError::invalid_field("body_markdown", "a published article needs a body"));
            }
            if let Some(title) = title {
                article.title = title;
            }
            if let Some(body) = request.body_markdown {
                article.body_html = markdown::to_safe_html(&body);
                article.body_markdown = body;
            }
            if let Some(category) = request.category_id {
                article.category_id = category;
            }
            if let Some(tags) = tags {
                article.tags = tags;
            }
            if let Some(segments) = segments {
                article.segments = segments;
            }
            if let Some(questions) = questions {
                article.questions = questions;
            }
            if let Some(visibility) = visibility {
                article.visibility = visibility;
            }
            if let Some(slug) = slug {
                article.slug = slug;
            }
            article.author = author.to_owned();
            Ok(())
        })
        .await
    }

    /// An article as the caller may see it: staff see every article, customers and the public
    /// only published ones meant for them.
    pub async fn get_article(
        &self,
        tenant: &str,
        id: &str,
        audience: &Audience,
    ) -> Result<proto::Article, ServiceError> {
        check_id("id", id)?;
        let mut conn = self.db.reader().acquire().await?;
        let article = store::article(&mut conn, tenant, id).await?;
        drop(conn);
        let article =
            article.filter(|article| audience.may_read(article)).ok_or_else(|| ServiceError::not_found("article"))?;
        if !matches!(audience, Audience::Staff) {
            self.activity.count_view(tenant, &article.id);
        }
        self.article_view(&article, audience).await
    }

    /// A published public article by id or by locale and slug, for the help center.
    pub async fn public_article(
        &self,
        tenant: &str,
        id_or_slug: &str,
        locale: &str,
    ) -> Result<proto::Article, ServiceError> {
        check_id("tenant_id", tenant)?;
        if id_or_slug.is_empty() || id_or_slug.len() > 200 {
            return Err(ServiceError::invalid_field("id_or_slug", "is required, at most 200 characters"));
        }
        let mut conn = self.db.reader().acquire().await?;
        let mut article = store::article(&mut conn, tenant, id_or_slug).await?;
        if article.is_none() && !locale.is_empty() {
            model::check_locale("locale", locale)?;
            article = store::article_by_slug(&mut conn, tenant, locale, id_or_slug).await?;
        }
        drop(conn);
        let article = article
            .filter(|article| Audience::Public.may_read(article))
            .ok_or_else(|| ServiceError::not_found("article"))?;
        self.activity.count_view(tenant, &article.id);
        self.article_view(&article, &Audience::Public).await
    }

    pub async fn list_articles(
        &self,
        tenant: &str,
        request: proto::ListArticlesRequest,
    ) -> Result<proto::ListArticlesResponse, ServiceError> {
        if !request.locale.is_empty() {
            model::check_locale("locale", &request.locale)?;
        }
        let status = match request.status {
            0 => None,
            value => Some(status("status", value)?),
        };
        let page = match request.page_size {
            0 => DEFAULT_PAGE,
            n if n < 0 => return Err(ServiceError::invalid_field("page_size", "must not be negative")),
            n => i64::from(n).min(MAX_PAGE),
        };
        if request.page_token.len() > 64 {
            return Err(ServiceError::invalid_field("page_token", "not a token this list returned"));
        }
        let filter = store::ArticleFilter {
            locale: &request.locale,
            status,
            category_id: &request.category_id,
            tag: &request.tag.to_lowercase(),
            after_id: &request.page_token,
            limit: page + 1,
        };
        let mut conn = self.db.reader().acquire().await?;
        let mut articles = store::list_articles(&mut conn, tenant, &filter).await?;
        let next_page_token = if articles.len() as i64 > page {
            articles.truncate(page as usize);
            articles.last().map(|last| last.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(proto::ListArticlesResponse {
            articles: articles.iter().map(|article| article.to_proto(Vec::new())).collect(),
            next_page_token,
        })
    }

    pub async fn set_status(
        &self,
        tenant: &str,
        admin: bool,
        request: proto::SetArticleStatusRequest,
    ) -> Result<proto::Article, ServiceError> {
        let to = status("status", request.status)?;
        let article = self
            .change(tenant, &request.id, None, |article| {
                model::check_transition(article.status, to, admin)?;
                if to == ArticleStatus::Published {
                    if article.body_markdown.trim().is_empty() {
                        return Err(ServiceError::invalid_field(
                            "body_markdown",
                            "an article needs a body to be published",
                        ));
                    }
                    article.published_at = Some(now_micros());
                }
                article.status = to;
                Ok(())
            })
            .await?;
        self.article_view(&article, &Audience::Staff).await
    }

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

    pub async fn upsert_category(
        &self,
        tenant: &str,
        category: proto::Category,
    ) -> Result<proto::Category, ServiceError> {
        check_id("category.id", &category.id)?;
        if category.names.is_empty() {
            return Err(ServiceError::invalid_field("category.names", "needs a name in at least one locale"));
        }
        for (locale, name) in &category.names {
            model::check_locale("category.names", locale)?;
            if name.trim().is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid_field("category.names", "names must be 1 to 100 characters"));
            }
        }
        let mut tx = self.db.writer().begin().await?;
        if !category.parent_id.is_empty() {
            let categories = store::categories(&mut tx, tenant).await?;
            // Walking up from the parent must end at the top without meeting this category.
            let mut at = category.parent_id.clone();
            while !at.is_empty() {
                if at == category.id {
                    return Err(ServiceError::invalid_field("category.parent_id", "would make a cycle"));
                }
                let parent = categories.iter().find(|c| c.id == at);
                at = parent
                    .ok_or_else(|| ServiceError::invalid_field("category.parent_id", "no such category"))?
                    .parent_id
                    .clone();
            }
        }
        store::upsert_category(&mut tx, tenant, &category).await?;
        tx.commit().await?;
        Ok(category)
    }

    pub async fn categories(&self, tenant: &str) -> Result<proto::ListCategoriesResponse, ServiceError> {
        let mut conn = self.db.reader().acquire().await?;
        let mut categories = store::categories(&mut conn, tenant).await?;
        // Parents before children: order by depth, then position.
        let depth = |category: &proto::Category| {
            let mut depth = 0;
            let mut at = category.parent_id.clone();
            while let Some(parent) = categories.iter().find(|c| c.id == at && depth < 32) {
                depth += 1;
                at = parent.parent_id.clone();
            }
            depth
        };
        let depths: Vec<usize> = categories.iter().map(depth).collect();
        let mut ordered: Vec<(usize, proto::Category)> = depths.into_iter().zip(categories.drain(..)).collect();
        ordered.sort_by_key(|(depth, category)| (*depth, category.position));
        Ok(proto::ListCategoriesResponse { categories: ordered.into_iter().map(|(_, category)| category).collect() })
    }

    pub async fn set_synonyms(
        &self,
        tenant: &str,
        request: proto::SetSynonymsRequest,
    ) -> Result<proto::Synonyms, ServiceError> {
        model::check_locale("locale", &request.locale)?;
        if request.groups.len() > MAX_SYNONYM_GROUPS {
            return Err(ServiceError::invalid_field("groups", format!("at most {MAX_SYNONYM_GROUPS} groups")));
        }
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let terms = model::labels("groups", &group.terms)?;
            if terms.len() < 2 {
                return Err(ServiceError::invalid_field("groups", "each group needs two terms or more"));
            }
            groups.push(terms);
        }
        let mut conn = self.db.writer().acquire().await?;
        store::set_synonyms(&mut conn, tenant, &request.locale, &groups, now_micros()).await?;
        self.indexes.set_synonyms(tenant, &request.locale, Synonyms::new(&groups));
        Ok(proto::Synonyms {
            locale: request.locale,
            groups: groups.into_iter().map(|terms| proto::SynonymGroup { terms }).collect(),
        })
    }

    pub async fn synonyms(&self, tenant: &str, locale: &str) -> Result<proto::Synonyms, ServiceError> {
        model::check_locale("locale", locale)?;
        let mut conn = self.db.reader().acquire().await?;
        let groups = store::synonyms(&mut conn, tenant, locale).await?;
        Ok(proto::Synonyms {
            locale: locale.to_owned(),
            groups: groups.into_iter().map(|terms| proto::SynonymGroup { terms }).collect(),
        })
    }

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

    /// Every candidate for `text`, best first, with scores and confidences, before the
    /// confidence cut: what [`Knowledge::suggest`] chooses from, and what evaluations measure.
    pub async fn rank_suggestions(
        &self,
        tenant: &str,
        audience: Audience,
        text: &str,
        locale: &str,
    ) -> Result<(String, Vec<Scored>), ServiceError> {
        let text = prefix(text.trim(), MAX_SUGGEST_CHARS).to_owned();
        if text.is_empty() {
            return Err(ServiceError::invalid_field("subject", "subject or body is required"));
        }
        let locale = model::locale_for("locale", locale, &text)?;
        let (indexes, tenant, shard_locale) = (self.indexes.clone(), tenant.to_owned(), locale.clone());
        let scored = tokio::task::spawn_blocking(move || indexes.suggest(&tenant, &shard_locale, &text, &audience))
            .await
            .map_err(|error| ServiceError::internal(&error))??;
        Ok((locale, scored))
    }

    pub async fn suggest(
        &self,
        tenant: &str,
        audience: Audience,
        request: proto::SuggestRequest,
    ) -> Result<proto::SuggestResponse, ServiceError> {
        let limit = limit(request.limit, 3, 10)?;
        let text = format!("{}\n{}", request.subject.trim(), request.body.trim());
        let audience_kind = audience.clone();
        let (locale, scored) = self.rank_suggestions(tenant, audience, &text, &request.locale).await?;
        let confidence = scored.first().map_or(0.0, |best| best.confidence);
        let confident: Vec<_> = scored.into_iter().filter(|s| s.confidence >= MIN_CONFIDENCE).take(limit).collect();
        let query = prefix(request.subject.trim(), 200);
        let search_id = self.log_search(tenant, "suggest", query, &locale, confident.len());
        // Only staff's asking says a ticket is uncovered: a customer could name any ticket and any
        // text (their own tickets are noted from ticketing's events).
        if confident.is_empty() && !request.ticket_id.is_empty() && matches!(audience_kind, Audience::Staff) {
            self.record_uncovered(tenant, &request.ticket_id, &request.subject, &request.body, &locale, confidence)
                .await?;
        }
        let mut suggestions = Vec::with_capacity(confident.len());
        let mut conn = self.db.reader().acquire().await?;
        for scored in confident {
            let Some(article) = store::article(&mut conn, tenant, &scored.article_id).await? else { continue };
            suggestions.push(proto::Suggestion {
                url_path: article.url_path(),
                article_id: article.id,
                title: article.title,
                score: f64::from(scored.score),
                confidence: f64::from(scored.confidence),
            });
        }
        Ok(proto::SuggestResponse { suggestions, locale, confidence: f64::from(confidence), search_id })
    }

    /// Checks a new ticket against the articles and records it as uncovered when none answers
    /// it confidently.
    pub async fn note_ticket(&self, tenant: &str, ticket: &str, subject: &str, body: &str) -> Result<(), ServiceError> {
        let text = format!("{}\n{}", subject.trim(), body.trim());
        if text.trim().is_empty() {
            return Ok(());
        }
        let (locale, scored) = self.rank_suggestions(tenant, Audience::Staff, &text, "").await?;
        let confidence = scored.first().map_or(0.0, |best| best.confidence);
        if confidence < MIN_CONFIDENCE {
            self.record_uncovered(tenant, ticket, subject, body, &locale, confidence).await?;
        }
        Ok(())
    }

    async fn record_uncovered(
        &self,
        tenant: &str,
        ticket: &str,
        subject: &str,
        body: &str,
        locale: &str,
        confidence: f32,
    ) -> Result<(), ServiceError> {
        let topic = gaps::topic(subject, body);
        let mut conn = self.db.writer().acquire().await?;
        store::record_uncovered(&mut conn, tenant, ticket, locale, &topic, f64::from(confidence), now_micros()).await
    }

    /// Logs a search of a tenant whose knowledge base has published articles, so that anybody's
    /// made-up tenant names fill nothing; returns its id, for click tracking.
    fn log_search(&self, tenant: &str, kind: &'static str, query: &str, locale: &str, results: usize) -> String {
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

    pub async fn content_gaps(
        &self,
        tenant: &str,
        request: proto::ContentGapsRequest,
    ) -> Result<proto::ContentGapsResponse, ServiceError> {
        if !request.locale.is_empty() {
            model::check_locale("locale", &request.locale)?;
        }
        let until = request.until.as_ref().map_or_else(now_micros, helpdesk_runtime::time::timestamp_to_micros);
        let since =
            request.since.as_ref().map_or(until - 30 * 86_400_000_000, helpdesk_runtime::time::timestamp_to_micros);
        if since >= until {
            return Err(ServiceError::invalid_field("since", "must be before until"));
        }
        if until - since > 400 * 86_400_000_000 {
            return Err(ServiceError::invalid_field("since", "the period may span at most 400 days"));
        }
        let limit = limit(request.limit, 20, 200)? as i64;
        self.activity.flush().await;
        let mut conn = self.db.reader().acquire().await?;
        let period = (since, until);
        let zero_result_queries = store::query_stats(&mut conn, tenant, &request.locale, period, true, limit).await?;
        let mut low_click_queries =
            store::query_stats(&mut conn, tenant, &request.locale, period, false, limit).await?;
        // Low click-through: searched more than once, opened at most a quarter of the time.
        low_click_queries.retain(|stat| stat.searches >= 2 && stat.clicks * 4 <= stat.searches);
        let tickets = store::uncovered(&mut conn, tenant, &request.locale, period).await?;
        Ok(proto::ContentGapsResponse {
            zero_result_queries,
            low_click_queries,
            uncovered_topics: gaps::group_topics(&tickets, limit as usize),
        })
    }

    /// Brings the tenant's suggestion models up to date now, rather than in the background
    /// after the next suggestion: after a bulk import, before measuring.
    pub async fn train_suggestions(&self, tenant: &str) -> Result<(), ServiceError> {
        let (indexes, tenant) = (self.indexes.clone(), tenant.to_owned());
        tokio::task::spawn_blocking(move || indexes.train(&tenant))
            .await
            .map_err(|error| ServiceError::internal(&error))?
    }

    /// Rebuilds the tenant's indexes from the database and swaps them in; search keeps using the
    /// old ones meanwhile.
    pub async fn reindex(&self, tenant: &str) -> Result<proto::ReindexResponse, ServiceError> {
        let started = std::time::Instant::now();
        let articles = crate::follow::rebuild(&self.db, &self.indexes, Some(tenant)).await?;
        Ok(proto::ReindexResponse { articles: articles as i64, seconds: started.elapsed().as_secs_f64() })
    }
}
