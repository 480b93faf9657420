//! Articles: created one at a time or imported in bulk, edited, read by staff, customers and the
//! help center, listed, and moved through the publishing workflow (draft, in review, published,
//! archived). Every write changes the database first and the search indexes after it commits.

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus};
use helpdesk_runtime::{ServiceError, time::now_micros};

use crate::{
    markdown,
    model::{self, Article, Audience, Stats},
    service::{Knowledge, check_id},
    store,
};

const DEFAULT_PAGE: i64 = 50;
const MAX_IMPORT: usize = 1_000;
const MAX_PAGE: i64 = 500;

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

fn status(field: &str, value: i32) -> Result<ArticleStatus, ServiceError> {
    match ArticleStatus::try_from(value) {
        Ok(ArticleStatus::Unspecified) | Err(_) => Err(ServiceError::invalid_field(field, "unknown status")),
        Ok(status) => Ok(status),
    }
}

impl Knowledge {
    /// The article as `audience` may see it: staff see every translation, who wrote it and the
    /// pending revision; everyone else only the translations they may read, and no staff names.
    pub(crate) async fn article_view(
        &self,
        article: &Article,
        audience: &Audience,
    ) -> Result<proto::Article, ServiceError> {
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
    pub(crate) async fn edit(
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

    /// Creates many articles in one transaction, published if asked (whether the caller may is
    /// checked before): all or nothing.
    pub async fn import_articles(
        &self,
        tenant: &str,
        author: &str,
        request: proto::ImportArticlesRequest,
    ) -> Result<proto::ImportArticlesResponse, ServiceError> {
        if request.articles.is_empty() || request.articles.len() > MAX_IMPORT {
            return Err(ServiceError::invalid_field("articles", format!("1 to {MAX_IMPORT} articles")));
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
    pub(crate) async fn change(
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

    /// Moves the article through the workflow; whether the caller may publish or archive is
    /// checked before.
    pub async fn set_status(
        &self,
        tenant: &str,
        request: proto::SetArticleStatusRequest,
    ) -> Result<proto::Article, ServiceError> {
        let to = status("status", request.status)?;
        let article = self
            .change(tenant, &request.id, None, |article| {
                model::check_transition(article.status, to)?;
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
}
