//! Search indexes: one tantivy index in memory per tenant and locale, holding the published
//! articles, plus the suggestion model built from the same articles. The database is the source
//! of truth: indexes are built from it at start-up, follow every change (local ones at once,
//! other replicas' through [`crate::follow`]), and a rebuild swaps in a fresh index while the old
//! one keeps answering.

use std::sync::{Arc, Mutex, RwLock, atomic::Ordering};

use helpdesk_proto::knowledge::v1::Visibility;
use helpdesk_runtime::ServiceError;
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
    collector::TopDocs,
    query::{BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery},
    schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value},
    snippet::SnippetGenerator,
};

use crate::{
    Map,
    analysis::{ANALYZER, Analyzer},
    markdown,
    model::{Article, Audience, Stats},
    suggest::{Language, Snapshot, Suggester},
};

/// The most query terms used; the rest of a pasted essay adds cost, not precision.
const MAX_QUERY_TERMS: usize = 32;
/// Hits considered before popularity and helpfulness re-rank them.
const RERANK_DEPTH: usize = 30;
const SNIPPET_CHARS: usize = 200;
/// Writer memory per index: tantivy's minimum is 15 MB per indexing thread.
const WRITER_BYTES: usize = 40_000_000;
/// Suggestion models with up to this many example phrasings train before the next suggestion
/// (well under a second); larger ones train in the background.
const SYNC_TRAINING_EXAMPLES: usize = 20_000;

type ShardKey = (String, String);

pub(crate) struct SearchParams<'a> {
    pub(crate) query: &'a str,
    pub(crate) category_id: &'a str,
    pub(crate) tag: &'a str,
    pub(crate) limit: usize,
    pub(crate) audience: &'a Audience,
}

pub(crate) struct Hit {
    pub(crate) article_id: String,
    pub(crate) title: String,
    pub(crate) slug: String,
    pub(crate) category_id: String,
    pub(crate) visibility: Visibility,
    pub(crate) snippet_html: String,
    pub(crate) score: f32,
}

pub(crate) struct SearchResult {
    pub(crate) hits: Vec<Hit>,
    pub(crate) fuzzy: bool,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    questions: Field,
    body: Field,
    slug: Field,
    category: Field,
    tags: Field,
    visibility: Field,
    segments: Field,
}

/// What an index holds of an article: enough to ignore stale changes and to re-rank.
#[derive(Clone)]
struct Indexed {
    changed_at: i64,
    version: i32,
    searchable: bool,
    visibility: Visibility,
    segments: Vec<String>,
    stats: Stats,
}

struct Shard {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    articles: RwLock<Map<String, Indexed>>,
    /// Shared with the shard a reindex replaces: suggestions follow every change anyway, and
    /// their model takes longer to train than the search index to build.
    suggester: Arc<RwLock<Suggester>>,
    /// Whether a model is being trained in the background.
    training: std::sync::atomic::AtomicBool,
}

/// Synonym groups of one tenant and locale, as analyzed terms: each term maps to the other
/// members of its group (each member a sequence of terms).
#[derive(Default)]
pub(crate) struct Synonyms {
    alternatives: Map<String, Vec<Vec<String>>>,
}

impl Synonyms {
    pub(crate) fn new(groups: &[Vec<String>]) -> Self {
        let mut alternatives: Map<String, Vec<Vec<String>>> = Map::default();
        for group in groups {
            let analyzed: Vec<Vec<String>> = group.iter().map(|words| crate::analysis::terms(words)).collect();
            for (i, member) in analyzed.iter().enumerate() {
                // Only one-term members expand a query term; longer ones are found as phrases.
                let [term] = member.as_slice() else { continue };
                let others = analyzed.iter().enumerate().filter(|(j, other)| *j != i && !other.is_empty());
                alternatives.entry(term.clone()).or_default().extend(others.map(|(_, other)| other.clone()));
            }
        }
        Self { alternatives }
    }
}

#[derive(Default)]
pub(crate) struct Indexes {
    shards: RwLock<Map<ShardKey, Arc<Shard>>>,
    synonyms: RwLock<Map<ShardKey, Arc<Synonyms>>>,
}

fn lock_error(_: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(&"search index lock poisoned")
}

fn engine_error(error: tantivy::TantivyError) -> ServiceError {
    ServiceError::internal(&error)
}

impl Shard {
    fn new(locale: &str, suggester: Option<Arc<RwLock<Suggester>>>) -> Result<Self, ServiceError> {
        let mut schema = Schema::builder();
        let analyzed = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: schema.add_text_field("id", STRING | STORED),
            title: schema.add_text_field("title", analyzed.clone().set_stored()),
            questions: schema.add_text_field("questions", analyzed.clone()),
            body: schema.add_text_field("body", analyzed.set_stored()),
            slug: schema.add_text_field("slug", STORED),
            category: schema.add_text_field("category", STRING | STORED),
            tags: schema.add_text_field("tags", STRING),
            visibility: schema.add_u64_field("visibility", tantivy::schema::INDEXED | STORED),
            segments: schema.add_text_field("segments", STRING),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, tantivy::tokenizer::TextAnalyzer::from(Analyzer));
        let writer = index.writer_with_num_threads(1, WRITER_BYTES).map_err(engine_error)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(engine_error)?;
        Ok(Self {
            reader,
            writer: Mutex::new(writer),
            fields,
            articles: RwLock::new(Map::default()),
            suggester: suggester.unwrap_or_else(|| Arc::new(RwLock::new(Suggester::new(Language::of_locale(locale))))),
            training: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn document(&self, article: &Article, body_text: String) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &article.id);
        doc.add_text(f.title, &article.title);
        for question in &article.questions {
            doc.add_text(f.questions, question);
        }
        doc.add_text(f.body, body_text);
        doc.add_text(f.slug, &article.slug);
        doc.add_text(f.category, &article.category_id);
        for tag in &article.tags {
            doc.add_text(f.tags, tag);
        }
        doc.add_u64(f.visibility, article.visibility as u64);
        for segment in &article.segments {
            doc.add_text(f.segments, segment);
        }
        doc
    }

    /// Stages `articles` in the writer (newer than what the index has), and in the suggester
    /// unless it already has them; returns how many changed. Nothing is visible before
    /// [`Shard::commit`].
    fn stage(&self, articles: &[&Article], suggester_too: bool) -> Result<usize, ServiceError> {
        let writer = self.writer.lock().map_err(lock_error)?;
        let mut known = self.articles.write().map_err(lock_error)?;
        let mut suggester = self.suggester.write().map_err(lock_error)?;
        let mut changed = 0;
        for article in articles {
            let previous = known.get(&article.id);
            if previous.is_some_and(|previous| previous.changed_at >= article.changed_at) {
                continue;
            }
            let was_searchable = previous.is_some_and(|previous| previous.searchable);
            let same_content = previous.is_some_and(|previous| previous.version == article.version);
            let searchable = article.is_searchable();
            let entry = Indexed {
                changed_at: article.changed_at,
                version: article.version,
                searchable,
                visibility: article.visibility,
                segments: article.segments.clone(),
                stats: article.stats,
            };
            known.insert(article.id.clone(), entry);
            // Views and votes change the ranking, not the document.
            if was_searchable == searchable && (!searchable || same_content) {
                continue;
            }
            changed += 1;
            writer.delete_term(Term::from_field_text(self.fields.id, &article.id));
            if suggester_too {
                suggester.remove(&article.id);
            }
            if searchable {
                let body_text = markdown::to_text(&article.body_markdown);
                if suggester_too {
                    suggester.insert(article, &body_text);
                }
                writer.add_document(self.document(article, body_text)).map_err(engine_error)?;
            }
        }
        Ok(changed)
    }

    /// Retrains the suggestion model if articles changed: at once for small knowledge bases,
    /// in the background for large ones (suggestions use the previous model meanwhile).
    fn refresh_model(self: &Arc<Self>) -> Result<(), ServiceError> {
        let snapshot = {
            let suggester = self.suggester.read().map_err(lock_error)?;
            if !suggester.is_stale() {
                return Ok(());
            }
            if suggester.examples() > SYNC_TRAINING_EXAMPLES && self.training.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            suggester.snapshot()
        };
        if snapshot.examples() > SYNC_TRAINING_EXAMPLES {
            let shard = self.clone();
            std::thread::spawn(move || {
                shard.train_on(snapshot);
                shard.training.store(false, Ordering::Release);
            });
        } else {
            self.train_on(snapshot);
        }
        Ok(())
    }

    /// Trains the suggestion model on this thread, whatever its size.
    fn train_now(&self) -> Result<(), ServiceError> {
        let snapshot = self.suggester.read().map_err(lock_error)?.snapshot();
        self.train_on(snapshot);
        Ok(())
    }

    fn train_on(&self, snapshot: Snapshot) {
        let model = snapshot.fit();
        if let Ok(mut suggester) = self.suggester.write() {
            suggester.install(model, snapshot.generation());
        }
    }

    fn commit(&self) -> Result<(), ServiceError> {
        self.writer.lock().map_err(lock_error)?.commit().map_err(engine_error)?;
        self.reader.reload().map_err(engine_error)
    }
}

impl Indexes {
    /// Whether the tenant has an index: some article of theirs was published.
    pub(crate) fn knows(&self, tenant: &str) -> bool {
        crate::model::LOCALES.iter().any(|locale| self.shard(tenant, locale).is_some())
    }

    fn shard(&self, tenant: &str, locale: &str) -> Option<Arc<Shard>> {
        let shards = self.shards.read().ok()?;
        shards.get(&(tenant.to_owned(), locale.to_owned())).cloned()
    }

    fn shard_or_new(&self, tenant: &str, locale: &str) -> Result<Arc<Shard>, ServiceError> {
        if let Some(shard) = self.shard(tenant, locale) {
            return Ok(shard);
        }
        let mut shards = self.shards.write().map_err(lock_error)?;
        let key = (tenant.to_owned(), locale.to_owned());
        if let Some(shard) = shards.get(&key) {
            return Ok(shard.clone());
        }
        let shard = Arc::new(Shard::new(locale, None)?);
        shards.insert(key, shard.clone());
        Ok(shard)
    }

    /// Trains the tenant's stale suggestion models on this thread. Blocking.
    pub(crate) fn train(&self, tenant: &str) -> Result<(), ServiceError> {
        let shards: Vec<Arc<Shard>> = {
            let shards = self.shards.read().map_err(lock_error)?;
            shards.iter().filter(|((owner, _), _)| owner == tenant).map(|(_, shard)| shard.clone()).collect()
        };
        for shard in shards {
            if shard.suggester.read().map_err(lock_error)?.is_stale() {
                shard.train_now()?;
            }
        }
        Ok(())
    }

    /// Whether the indexes have not seen the article's change at `changed_at` yet.
    pub(crate) fn is_behind(&self, tenant: &str, locale: &str, id: &str, changed_at: i64) -> bool {
        let Some(shard) = self.shard(tenant, locale) else { return true };
        let Ok(known) = shard.articles.read() else { return true };
        known.get(id).is_none_or(|indexed| indexed.changed_at < changed_at)
    }

    /// Brings the indexes up to date with `articles` (any tenants and locales, published or
    /// not) and makes the change searchable. Blocking: call from a blocking thread.
    pub(crate) fn apply(&self, articles: &[Article]) -> Result<(), ServiceError> {
        let mut by_shard: Map<ShardKey, Vec<&Article>> = Map::default();
        for article in articles {
            by_shard.entry((article.tenant_id.clone(), article.locale.clone())).or_default().push(article);
        }
        for ((tenant, locale), articles) in by_shard {
            let shard = self.shard_or_new(&tenant, &locale)?;
            if shard.stage(&articles, true)? > 0 {
                shard.commit()?;
            }
        }
        Ok(())
    }

    /// Builds fresh search indexes for `articles` (all published articles of the tenants they
    /// cover) and swaps them in, replacing those tenants' old indexes; search answers from the old
    /// ones until then. A first build also builds the suggesters (large models train in the
    /// background); a rebuild keeps the ones it replaces. Blocking.
    pub(crate) fn replace(&self, tenants: &[String], articles: &[Article]) -> Result<(), ServiceError> {
        let mut fresh: Map<ShardKey, Arc<Shard>> = Map::default();
        let mut by_shard: Map<ShardKey, Vec<&Article>> = Map::default();
        for article in articles {
            by_shard.entry((article.tenant_id.clone(), article.locale.clone())).or_default().push(article);
        }
        for (key, articles) in by_shard {
            let kept = self.shard(&key.0, &key.1).map(|old| old.suggester.clone());
            let first_build = kept.is_none();
            let shard = Arc::new(Shard::new(&key.1, kept)?);
            shard.stage(&articles, first_build)?;
            shard.commit()?;
            shard.refresh_model()?;
            fresh.insert(key, shard);
        }
        let mut shards = self.shards.write().map_err(lock_error)?;
        shards.retain(|(tenant, _), _| !tenants.contains(tenant));
        shards.extend(fresh);
        Ok(())
    }

    pub(crate) fn set_synonyms(&self, tenant: &str, locale: &str, synonyms: Synonyms) {
        if let Ok(mut map) = self.synonyms.write() {
            map.insert((tenant.to_owned(), locale.to_owned()), Arc::new(synonyms));
        }
    }

    fn synonyms(&self, tenant: &str, locale: &str) -> Arc<Synonyms> {
        let map = self.synonyms.read();
        map.ok().and_then(|map| map.get(&(tenant.to_owned(), locale.to_owned())).cloned()).unwrap_or_default()
    }

    /// Full-text search. Blocking.
    pub(crate) fn search(
        &self,
        tenant: &str,
        locale: &str,
        params: &SearchParams<'_>,
    ) -> Result<SearchResult, ServiceError> {
        let empty = SearchResult { hits: Vec::new(), fuzzy: false };
        let Some(shard) = self.shard(tenant, locale) else { return Ok(empty) };
        let searcher = shard.reader.searcher();
        let f = shard.fields;
        let synonyms = self.synonyms(tenant, locale);
        let mut terms = crate::analysis::terms(params.query);
        dedup_in_order(&mut terms);
        terms.truncate(MAX_QUERY_TERMS);
        if terms.is_empty() {
            return Ok(empty);
        }

        // Example questions weigh most, titles twice the body: on banking77 and clinc150 heavier
        // titles and bodies cost recall (`knowledge-eval`).
        let text_fields = [(f.title, 0.6), (f.questions, 1.0), (f.body, 0.3)];
        let mut fuzzy = false;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in &terms {
            let mut alternatives: Vec<(Box<dyn Query>, f32)> = Vec::new();
            let mut known = false;
            for (field, weight) in text_fields {
                let exact = Term::from_field_text(field, term);
                known |= searcher.doc_freq(&exact).map_err(engine_error)? > 0;
                alternatives.push((Box::new(TermQuery::new(exact, IndexRecordOption::WithFreqs)), weight));
            }
            for synonym in synonyms.alternatives.get(term).into_iter().flatten() {
                for (field, weight) in text_fields {
                    alternatives.push((phrase_or_term(field, synonym), weight * 0.8));
                }
            }
            // Typos: an unknown word of four letters or more matches words one edit away
            // (a transposition counts as one) in titles and bodies, at a discount.
            if !known && term.len() >= 4 && term.bytes().all(|b| b.is_ascii_alphabetic()) {
                fuzzy = true;
                for (field, weight) in [(f.title, 3.0), (f.body, 1.0)] {
                    let fuzzy_query = FuzzyTermQuery::new(Term::from_field_text(field, term), 1, true);
                    alternatives.push((Box::new(fuzzy_query), weight * 0.6));
                }
            }
            let alternatives = alternatives
                .into_iter()
                .map(|(query, weight)| (Occur::Should, Box::new(BoostQuery::new(query, weight)) as Box<dyn Query>))
                .collect();
            clauses.push((Occur::Should, Box::new(BooleanQuery::new(alternatives))));
        }
        for phrase in quoted_phrases(params.query) {
            for (field, weight) in [(f.title, 3.0), (f.body, 2.0)] {
                clauses.push((Occur::Should, Box::new(BoostQuery::new(phrase_or_term(field, &phrase), weight))));
            }
        }
        let text_query = BooleanQuery::new(clauses);
        let mut query_parts: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(text_query.clone()))];
        for filter in filters(f, params) {
            query_parts.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))));
        }
        let query = BooleanQuery::new(query_parts);

        let depth = RERANK_DEPTH.max(params.limit);
        let top = searcher.search(&query, &TopDocs::with_limit(depth).order_by_score()).map_err(engine_error)?;
        let known = shard.articles.read().map_err(lock_error)?;
        let mut ranked: Vec<(f32, TantivyDocument, String)> = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(engine_error)?;
            let id = text(&doc, f.id);
            let boost = known.get(&id).map_or(1.0, |indexed| indexed.stats.boost());
            ranked.push((score * boost, doc, id));
        }
        drop(known);
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.truncate(params.limit);

        let mut snippets = SnippetGenerator::create(&searcher, &text_query, f.body).map_err(engine_error)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);
        let mut hits = Vec::with_capacity(ranked.len());
        for (score, doc, article_id) in ranked {
            let mut snippet = snippets.snippet_from_doc(&doc);
            snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
            let snippet_html = if snippet.is_empty() { leading_text(&text(&doc, f.body)) } else { snippet.to_html() };
            let visibility = doc.get_first(f.visibility).and_then(|value| value.as_u64()).unwrap_or_default();
            hits.push(Hit {
                article_id,
                title: text(&doc, f.title),
                slug: text(&doc, f.slug),
                category_id: text(&doc, f.category),
                visibility: Visibility::try_from(visibility as i32).unwrap_or(Visibility::Internal),
                snippet_html,
                score,
            });
        }
        Ok(SearchResult { hits, fuzzy })
    }

    /// The articles that best answer `text`, best first, with their confidence. Blocking.
    pub(crate) fn suggest(
        &self,
        tenant: &str,
        locale: &str,
        text: &str,
        audience: &Audience,
    ) -> Result<Vec<crate::suggest::Scored>, ServiceError> {
        let Some(shard) = self.shard(tenant, locale) else { return Ok(Vec::new()) };
        shard.refresh_model()?;
        let known = shard.articles.read().map_err(lock_error)?;
        let suggester = shard.suggester.read().map_err(lock_error)?;
        let visible =
            |id: &str| known.get(id).is_some_and(|indexed| audience.may_see(indexed.visibility, &indexed.segments));
        Ok(suggester.suggest(text, &visible))
    }
}

fn filters(f: Fields, params: &SearchParams<'_>) -> Vec<Box<dyn Query>> {
    let mut filters: Vec<Box<dyn Query>> = Vec::new();
    let visibility = |v: Visibility| -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_u64(f.visibility, v as u64), IndexRecordOption::Basic))
    };
    match params.audience {
        Audience::Staff => {}
        Audience::Public => filters.push(visibility(Visibility::Public)),
        Audience::Customer(segments) => {
            let mut allowed: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, visibility(Visibility::Public))];
            for segment in segments {
                let in_segment = BooleanQuery::new(vec![
                    (Occur::Must, visibility(Visibility::Restricted)),
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(Term::from_field_text(f.segments, segment), IndexRecordOption::Basic)),
                    ),
                ]);
                allowed.push((Occur::Should, Box::new(in_segment)));
            }
            filters.push(Box::new(BooleanQuery::new(allowed)));
        }
    }
    if !params.category_id.is_empty() {
        let term = Term::from_field_text(f.category, params.category_id);
        filters.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
    }
    if !params.tag.is_empty() {
        let term = Term::from_field_text(f.tags, &params.tag.to_lowercase());
        filters.push(Box::new(TermQuery::new(term, IndexRecordOption::Basic)));
    }
    filters
}

fn phrase_or_term(field: Field, terms: &[String]) -> Box<dyn Query> {
    match terms {
        [one] => Box::new(TermQuery::new(Term::from_field_text(field, one), IndexRecordOption::WithFreqs)),
        _ => Box::new(PhraseQuery::new(terms.iter().map(|term| Term::from_field_text(field, term)).collect())),
    }
}

/// The analyzed terms of each balanced "quoted phrase" of two terms or more; an unbalanced
/// quote is just a character.
fn quoted_phrases(query: &str) -> Vec<Vec<String>> {
    let parts: Vec<&str> = query.split('"').collect();
    let balanced = parts.len() % 2 == 1;
    parts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1 && (balanced || *i + 1 < parts.len() - 1))
        .map(|(_, phrase)| crate::analysis::terms(phrase))
        .filter(|terms| terms.len() >= 2)
        .collect()
}

fn dedup_in_order(terms: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    terms.retain(|term| seen.insert(term.clone()));
}

fn text(doc: &TantivyDocument, field: Field) -> String {
    doc.get_first(field).and_then(|value| value.as_str()).unwrap_or_default().to_owned()
}

/// The start of the body, escaped, when no matched term is in it (the title matched).
fn leading_text(body: &str) -> String {
    let mut end = body.len().min(SNIPPET_CHARS);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    escape_html(&body[..end])
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
