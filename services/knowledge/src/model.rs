//! Articles as stored, their validation at the edge, and their protobuf form.

use helpdesk_proto::knowledge::v1::{self as proto, ArticleStatus, Visibility};
use helpdesk_runtime::{
    ServiceError,
    time::{micros_to_timestamp, optional_timestamp},
};

/// Locales articles are written in. Search analyses both the same way; the locale picks the
/// index and the help center's language.
pub(crate) const LOCALES: &[&str] = &["ko", "en"];

const MAX_TITLE_CHARS: usize = 300;
const MAX_BODY_BYTES: usize = 200 * 1024;
const MAX_LIST_ITEMS: usize = 50;
const MAX_LABEL_CHARS: usize = 64;
const MAX_QUESTIONS: usize = 500;
const MAX_QUESTION_CHARS: usize = 500;
const MAX_SLUG_CHARS: usize = 80;

/// Who is asking decides which articles they may find.
#[derive(Clone, Debug)]
pub enum Audience {
    /// Agents and admins: every article.
    Staff,
    /// A signed-in customer: published public articles and restricted ones for their segments.
    Customer(Vec<String>),
    /// The anonymous help center: published public articles only.
    Public,
}

impl Audience {
    /// Whether this audience may find a published article of `visibility` meant for `segments`.
    pub(crate) fn may_see(&self, visibility: Visibility, segments: &[String]) -> bool {
        match self {
            Audience::Staff => true,
            Audience::Customer(mine) => {
                visibility == Visibility::Public
                    || (visibility == Visibility::Restricted && segments.iter().any(|segment| mine.contains(segment)))
            }
            Audience::Public => visibility == Visibility::Public,
        }
    }

    /// Whether this audience may read `article`, published or not.
    pub(crate) fn may_read(&self, article: &Article) -> bool {
        matches!(self, Audience::Staff)
            || (article.status == ArticleStatus::Published && self.may_see(article.visibility, &article.segments))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Article {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) translation_group: String,
    pub(crate) locale: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) body_markdown: String,
    pub(crate) body_html: String,
    pub(crate) category_id: String,
    pub(crate) tags: Vec<String>,
    pub(crate) visibility: Visibility,
    pub(crate) segments: Vec<String>,
    pub(crate) status: ArticleStatus,
    pub(crate) version: i32,
    pub(crate) questions: Vec<String>,
    pub(crate) author: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) published_at: Option<i64>,
    pub(crate) stats: Stats,
    pub(crate) changed_at: i64,
}

/// Views and votes: the popularity and helpfulness that weigh in ranking.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Stats {
    pub(crate) views: i64,
    pub(crate) helpful: i64,
    pub(crate) unhelpful: i64,
}

impl Stats {
    /// How much ranking favours the article: helpfulness (votes with a Laplace prior, neutral
    /// at 1.0) and, gently, popularity. Between 0.8 and about 1.5.
    pub(crate) fn boost(self) -> f32 {
        let helpful = (self.helpful as f32 + 1.0) / ((self.helpful + self.unhelpful) as f32 + 2.0);
        let popularity = 1.0 + 0.03 * (1.0 + self.views.max(0) as f32).ln();
        (0.8 + 0.4 * helpful) * popularity
    }

    pub(crate) fn to_proto(self) -> proto::ArticleStats {
        proto::ArticleStats { views: self.views, helpful_votes: self.helpful, unhelpful_votes: self.unhelpful }
    }
}

impl Article {
    pub(crate) fn url_path(&self) -> String {
        url_path(&self.locale, &self.slug)
    }

    /// Whether a search index holds the article: published ones only.
    pub(crate) fn is_searchable(&self) -> bool {
        self.status == ArticleStatus::Published
    }

    pub(crate) fn to_translation(&self) -> proto::Translation {
        proto::Translation {
            article_id: self.id.clone(),
            locale: self.locale.clone(),
            slug: self.slug.clone(),
            title: self.title.clone(),
            status: self.status as i32,
        }
    }

    /// This article's content as a proposal for version `based_on_version` of it.
    pub(crate) fn to_revision(
        &self,
        based_on_version: i32,
        author: &str,
        note: &str,
        at: i64,
    ) -> proto::ArticleRevision {
        proto::ArticleRevision {
            based_on_version,
            title: self.title.clone(),
            body_markdown: self.body_markdown.clone(),
            body_html: self.body_html.clone(),
            category_id: self.category_id.clone(),
            tags: self.tags.clone(),
            visibility: self.visibility as i32,
            segments: self.segments.clone(),
            questions: self.questions.clone(),
            slug: self.slug.clone(),
            author: author.to_owned(),
            change_note: note.to_owned(),
            proposed_at: Some(micros_to_timestamp(at)),
        }
    }

    /// Takes the content a revision proposed.
    pub(crate) fn apply_revision(&mut self, revision: &proto::ArticleRevision) {
        self.title = revision.title.clone();
        self.body_markdown = revision.body_markdown.clone();
        self.body_html = crate::markdown::to_safe_html(&revision.body_markdown);
        self.category_id = revision.category_id.clone();
        self.tags = revision.tags.clone();
        self.visibility = Visibility::try_from(revision.visibility).unwrap_or(self.visibility);
        self.segments = revision.segments.clone();
        self.questions = revision.questions.clone();
        self.slug = revision.slug.clone();
        self.author = revision.author.clone();
    }

    pub(crate) fn to_proto(&self, translations: Vec<proto::Translation>) -> proto::Article {
        proto::Article {
            id: self.id.clone(),
            translation_group: self.translation_group.clone(),
            locale: self.locale.clone(),
            slug: self.slug.clone(),
            url_path: self.url_path(),
            title: self.title.clone(),
            body_markdown: self.body_markdown.clone(),
            body_html: self.body_html.clone(),
            category_id: self.category_id.clone(),
            tags: self.tags.clone(),
            visibility: self.visibility as i32,
            segments: self.segments.clone(),
            status: self.status as i32,
            version: self.version,
            questions: self.questions.clone(),
            author: self.author.clone(),
            created_at: Some(micros_to_timestamp(self.created_at)),
            updated_at: Some(micros_to_timestamp(self.updated_at)),
            published_at: optional_timestamp(self.published_at),
            stats: Some(self.stats.to_proto()),
            translations,
            pending_revision: None,
        }
    }
}

pub(crate) fn url_path(locale: &str, slug: &str) -> String {
    format!("/help/{locale}/articles/{slug}")
}

pub(crate) fn check_locale(field: &str, locale: &str) -> Result<(), ServiceError> {
    if LOCALES.contains(&locale) {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(field, format!("must be one of {}", LOCALES.join(", "))))
    }
}

/// The locale to search in: the one asked for, or the query's script (Hangul means Korean).
pub(crate) fn locale_for(field: &str, requested: &str, text: &str) -> Result<String, ServiceError> {
    if requested.is_empty() {
        return Ok(if helpdesk_text::has_hangul(text) { "ko" } else { "en" }.to_owned());
    }
    check_locale(field, requested)?;
    Ok(requested.to_owned())
}

pub(crate) fn check_title(title: &str) -> Result<String, ServiceError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(ServiceError::invalid_field("title", "is required"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ServiceError::invalid_field("title", format!("at most {MAX_TITLE_CHARS} characters")));
    }
    Ok(title.to_owned())
}

pub(crate) fn check_body(body: &str) -> Result<(), ServiceError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ServiceError::invalid_field("body_markdown", format!("at most {MAX_BODY_BYTES} bytes")));
    }
    Ok(())
}

/// Tags and segments: trimmed, lowercased, without repeats.
pub(crate) fn labels(field: &str, values: &[String]) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_LIST_ITEMS {
        return Err(ServiceError::invalid_field(field, format!("at most {MAX_LIST_ITEMS} items")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = value.trim().to_lowercase();
        if value.is_empty() || value.chars().count() > MAX_LABEL_CHARS || value.chars().any(char::is_control) {
            return Err(ServiceError::invalid_field(field, format!("items must be 1 to {MAX_LABEL_CHARS} characters")));
        }
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

pub(crate) fn questions(values: &[String]) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_QUESTIONS {
        return Err(ServiceError::invalid_field("questions", format!("at most {MAX_QUESTIONS} items")));
    }
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let value = value.trim();
        if value.chars().count() > MAX_QUESTION_CHARS {
            return Err(ServiceError::invalid_field(
                "questions",
                format!("items must be at most {MAX_QUESTION_CHARS} characters"),
            ));
        }
        if !value.is_empty() {
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

pub(crate) fn visibility(value: i32) -> Result<Visibility, ServiceError> {
    match Visibility::try_from(value) {
        Ok(Visibility::Unspecified) => Ok(Visibility::Public),
        Ok(visibility) => Ok(visibility),
        Err(_) => Err(ServiceError::invalid_field("visibility", "unknown visibility")),
    }
}

/// A slug as given (checked) or made from the title: lowercase letters, digits and Hangul
/// joined by hyphens.
pub(crate) fn slug(given: &str, title: &str) -> Result<String, ServiceError> {
    if given.is_empty() {
        let made = slugify(title);
        return Ok(if made.is_empty() { "article".to_owned() } else { made });
    }
    if given.chars().count() > MAX_SLUG_CHARS || slugify(given) != given {
        return Err(ServiceError::invalid_field(
            "slug",
            "must be lowercase letters, digits or Hangul joined by single hyphens, at most 80 characters",
        ));
    }
    Ok(given.to_owned())
}

fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.chars().count() >= MAX_SLUG_CHARS {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// Whether the workflow allows moving from `from` to `to` (who may publish and archive is a
/// role check, in [`crate::grpc`]).
pub(crate) fn check_transition(from: ArticleStatus, to: ArticleStatus) -> Result<(), ServiceError> {
    use ArticleStatus::*;
    let allowed = matches!(
        (from, to),
        (Draft, InReview)
            | (InReview, Draft)
            | (InReview, Published)
            | (Draft, Published)
            | (Published, Draft)
            | (Published, Archived)
            | (Archived, Draft)
            | (Draft, Archived)
            | (InReview, Archived)
    );
    if !allowed {
        return Err(ServiceError::failed_precondition(format!(
            "an article cannot go from {} to {}",
            from.as_str_name(),
            to.as_str_name()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_hangul_and_join_words_with_hyphens() {
        assert_eq!(slug("", "How do I get a refund?").unwrap(), "how-do-i-get-a-refund");
        assert_eq!(slug("", "환불은 어떻게 받나요?").unwrap(), "환불은-어떻게-받나요");
        assert_eq!(slug("", "???").unwrap(), "article");
        assert!(slug("Bad Slug", "x").is_err());
        assert!(slug("ok-slug-2", "x").is_ok());
    }

    #[test]
    fn the_workflow_has_no_shortcuts() {
        use ArticleStatus::*;
        assert!(check_transition(Draft, InReview).is_ok());
        assert!(check_transition(InReview, Published).is_ok());
        assert!(check_transition(Archived, Published).is_err());
    }

    #[test]
    fn helpful_articles_rank_higher_and_views_count_a_little() {
        let neutral = Stats::default().boost();
        assert!(Stats { helpful: 10, ..Stats::default() }.boost() > neutral);
        assert!(Stats { unhelpful: 10, ..Stats::default() }.boost() < neutral);
        assert!(Stats { views: 1000, ..Stats::default() }.boost() < neutral * 1.3);
    }
}
