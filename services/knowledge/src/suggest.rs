//! Answer suggestions: which articles answer a ticket or a contact form, and how sure that is.
//!
//! Three signals per article, mixed as tuned on banking77 and clinc150 (`knowledge-eval`):
//! - **B**, BM25 (k1 2, b 0.75) over the whole article (title, questions, body) with word
//!   bigrams added to the terms;
//! - **H**, a linear model trained on the article's example phrasings (its title, body and
//!   questions): an averaged multiclass perceptron with a margin, whose weights exist only for
//!   features the article's own examples contain, so scoring walks an inverted index. Features
//!   are TF-IDF (sublinear, L2) of terms, bigrams and character 3–5-grams of English stems;
//! - **K**, for Korean, the sum of the five best cosines between the query and an article's
//!   examples.
//!
//! The score is `0.5·B/max B + 0.5·(H − max H) + γ·K/max K`; the confidence comes from the best
//! H, which separates answerable from out-of-scope queries best (AUC 0.96 on clinc150).
//! Korean terms are syllables and syllable pairs, with BM25 at k1 0.5, b 0.3.
//!
//! [`Knowledge::suggest`] serves the confident suggestions to tickets and contact forms;
//! [`Knowledge::rank_suggestions`] gives every candidate, for the evaluation.

use std::sync::Arc;

use helpdesk_proto::knowledge::v1 as proto;
use helpdesk_runtime::ServiceError;

use crate::{
    Map, analysis,
    model::{self, Article, Audience},
    service::{Knowledge, limit},
    store,
};

/// A suggested article with its score and a confidence between 0 and 1.
#[derive(Clone, Debug)]
pub struct Scored {
    pub article_id: String,
    pub score: f32,
    pub confidence: f32,
}

/// Below this, a suggestion is noise rather than an answer.
pub const MIN_CONFIDENCE: f32 = 0.5;
/// The ratio of H to the article's own mean H at which confidence is 0.5: the 75th percentile
/// of that ratio on clinc150's out-of-scope training queries (`knowledge-eval --calibrate`).
pub const CONFIDENCE_PIVOT: f32 = 0.48;

const EPOCHS: usize = 10;
/// Fewer passes for large knowledge bases, where training time grows with every example.
const EPOCHS_LARGE: usize = 3;
const LARGE_EXAMPLES: usize = 50_000;
const LEARNING_RATE: f32 = 0.5;
const MARGIN: f32 = 1.0;
/// English features in more articles than this carry no weight in H and find no candidates in
/// BM25 (they only add to the scores of articles rarer features found): they discriminate
/// little, and the cost of training and of a query grows with how many articles its features
/// are in. Korean syllables are fewer and each carries more, so Korean allows ten times as many.
const MAX_FEATURE_ARTICLES: usize = 100;
const KNN: usize = 5;
/// How much of a body counts as one example phrasing: its opening, which says what the article
/// answers (the rest is in BM25).
const BODY_EXAMPLE_CHARS: usize = 160;
const CANDIDATES: usize = 10;
/// Candidates that common terms are looked up for.
const SHORTLIST: usize = 200;
/// Suggestions read the start of a ticket: its subject and first paragraphs say what it is about.
const MAX_SUGGEST_CHARS: usize = 2_000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    English,
    Korean,
}

impl Language {
    pub(crate) fn of_locale(locale: &str) -> Self {
        if locale == "ko" { Language::Korean } else { Language::English }
    }

    fn bm25(self) -> (f32, f32) {
        match self {
            Language::English => (2.0, 0.75),
            Language::Korean => (0.5, 0.3),
        }
    }

    fn max_feature_articles(self) -> usize {
        match self {
            Language::English => MAX_FEATURE_ARTICLES,
            Language::Korean => MAX_FEATURE_ARTICLES * 10,
        }
    }

    fn knn_weight(self) -> f32 {
        match self {
            Language::English => 0.0,
            Language::Korean => 1.0,
        }
    }

    /// Terms for BM25: stems and stem bigrams, or Korean syllables and syllable pairs.
    fn terms(self, text: &str) -> Vec<Feature> {
        match self {
            Language::English => {
                let stems = analysis::terms(text);
                let mut terms: Vec<Feature> = stems.iter().map(|stem| feature(stem)).collect();
                terms.extend(bigrams(&stems));
                terms
            }
            Language::Korean => korean_grams(text).iter().map(|gram| feature(gram)).collect(),
        }
    }

    /// Features for the linear model: the terms plus, in English, character 3–5-grams of
    /// each stem (marked with `#`), which carry typos and word forms.
    fn features(self, text: &str) -> Vec<Feature> {
        match self {
            Language::English => {
                let stems = analysis::terms(text);
                let mut features = Vec::with_capacity(stems.len() * 12);
                let mut gram = String::new();
                // Function words get no features of their own (only in bigrams): in a small
                // knowledge base the model would otherwise learn "my" as evidence for whichever
                // article's examples say it, and answer "my blender broke" with a refund article.
                for stem in stems.iter().filter(|stem| !analysis::FUNCTION_WORDS.contains(&stem.as_str())) {
                    let marked = format!("<{stem}>");
                    let bounds: Vec<usize> = marked.char_indices().map(|(at, _)| at).chain([marked.len()]).collect();
                    let chars = bounds.len() - 1;
                    for n in (3..=5).filter(|n| chars > *n) {
                        for start in 0..=chars - n {
                            gram.clear();
                            gram.push('#');
                            gram.push_str(&marked[bounds[start]..bounds[start + n]]);
                            features.push(feature(&gram));
                        }
                    }
                    features.push(feature(stem));
                }
                features.extend(bigrams(&stems));
                features
            }
            Language::Korean => korean_grams(text).iter().map(|gram| feature(gram)).collect(),
        }
    }
}

fn bigrams(stems: &[String]) -> impl Iterator<Item = Feature> + '_ {
    let mut pair = String::new();
    stems.windows(2).map(move |words| {
        pair.clear();
        pair.push_str(&words[0]);
        pair.push('_');
        pair.push_str(&words[1]);
        feature(&pair)
    })
}

/// Every syllable and adjacent pair of each run of Hangul or of Latin letters and digits.
fn korean_grams(text: &str) -> Vec<String> {
    let mut grams = Vec::new();
    let mut run: Vec<char> = Vec::new();
    let kind = |c: char| {
        if ('가'..='힣').contains(&c) {
            1
        } else if c.is_ascii_alphanumeric() {
            2
        } else {
            0
        }
    };
    let flush = |run: &mut Vec<char>, grams: &mut Vec<String>| {
        grams.extend(run.iter().map(char::to_string));
        grams.extend(run.windows(2).map(|pair| pair.iter().collect()));
        run.clear();
    };
    for c in text.to_lowercase().chars() {
        if kind(c) == 0 || run.last().is_some_and(|last| kind(*last) != kind(c)) {
            flush(&mut run, &mut grams);
        }
        if kind(c) != 0 {
            run.push(c);
        }
    }
    flush(&mut run, &mut grams);
    grams
}

/// A term or feature, by a hash of its text that is the same in every process: there are
/// millions of distinct character grams, and keeping their text would cost more than it tells.
type Feature = u64;

/// Counts of features.
type Bag = Vec<(Feature, f32)>;

fn feature(text: &str) -> Feature {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6b6e_6f77).hash_one(text)
}

fn bag(features: Vec<Feature>) -> Bag {
    let mut counts: Map<Feature, f32> = Map::default();
    for feature in features {
        *counts.entry(feature).or_default() += 1.0;
    }
    let mut bag: Bag = counts.into_iter().collect();
    bag.sort_unstable_by_key(|(feature, _)| *feature);
    bag
}

struct Entry {
    id: String,
    /// BM25 term counts of the whole article, and their total.
    terms: Bag,
    length: f32,
    /// Feature counts of each example phrasing.
    examples: Vec<Bag>,
}

/// The trained part: H's weights and K's example vectors, as inverted indexes.
pub(crate) struct Model {
    /// Smoothed IDF over example phrasings, by feature.
    idf: Map<Feature, f32>,
    /// Feature → (article slot, averaged weight).
    weights: Map<Feature, Vec<(u32, f32)>>,
    /// Feature → (example, TF-IDF weight), and each example's article slot (Korean only).
    examples: Map<Feature, Vec<(u32, f32)>>,
    example_slots: Vec<u32>,
    /// Each article's mean H over its own examples: H is judged against it, so that confidence
    /// means the same in a knowledge base of five articles and of five thousand.
    own_scores: Map<u32, f32>,
}

/// Everything the suggestions of one tenant and locale know. Articles change the BM25 index at
/// once; the model is retrained before the next suggestion that finds it stale.
pub(crate) struct Suggester {
    language: Language,
    slots: Map<String, u32>,
    /// By slot; a removed article leaves its slot empty, so trained weights keep their meaning.
    entries: Vec<Option<Arc<Entry>>>,
    postings: Map<Feature, Vec<(u32, f32)>>,
    total_length: f64,
    live: usize,
    examples: usize,
    model: Option<Arc<Model>>,
    /// Counts changes; the model knows which change it was trained after.
    generation: u64,
    model_generation: u64,
}

/// The articles as they were at one generation, to train on without holding the suggester.
pub(crate) struct Snapshot {
    language: Language,
    entries: Vec<Option<Arc<Entry>>>,
    examples: usize,
    generation: u64,
}

impl Suggester {
    pub(crate) fn new(language: Language) -> Self {
        Self {
            language,
            slots: Map::default(),
            entries: Vec::new(),
            postings: Map::default(),
            total_length: 0.0,
            live: 0,
            examples: 0,
            model: None,
            generation: 0,
            model_generation: 0,
        }
    }

    pub(crate) fn insert(&mut self, article: &Article, body_text: &str) {
        self.remove(&article.id);
        let language = self.language;
        let mut whole = format!("{}\n{}", article.title, body_text);
        for question in &article.questions {
            whole.push('\n');
            whole.push_str(question);
        }
        let terms = bag(whole.lines().flat_map(|line| language.terms(line)).collect());
        let length = terms.iter().map(|(_, count)| count).sum();
        let body_example: String = body_text.chars().take(BODY_EXAMPLE_CHARS).collect();
        let phrasings = [article.title.as_str(), body_example.as_str()]
            .into_iter()
            .chain(article.questions.iter().map(String::as_str));
        let examples: Vec<Bag> =
            phrasings.filter(|text| !text.trim().is_empty()).map(|text| bag(language.features(text))).collect();
        let slot = self.entries.len() as u32;
        for &(term, count) in &terms {
            self.postings.entry(term).or_default().push((slot, count));
        }
        self.total_length += f64::from(length);
        self.live += 1;
        self.examples += examples.len();
        self.slots.insert(article.id.clone(), slot);
        self.entries.push(Some(Arc::new(Entry { id: article.id.clone(), terms, length, examples })));
        self.generation += 1;
    }

    pub(crate) fn remove(&mut self, id: &str) {
        let Some(slot) = self.slots.remove(id) else { return };
        let Some(entry) = self.entries[slot as usize].take() else { return };
        for (term, _) in &entry.terms {
            if let Some(postings) = self.postings.get_mut(term) {
                postings.retain(|(owner, _)| *owner != slot);
            }
        }
        self.total_length -= f64::from(entry.length);
        self.live -= 1;
        self.examples -= entry.examples.len();
        self.generation += 1;
    }

    /// Whether articles changed since the model was trained.
    pub(crate) fn is_stale(&self) -> bool {
        self.model_generation != self.generation
    }

    /// How many example phrasings training would read.
    pub(crate) fn examples(&self) -> usize {
        self.examples
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            language: self.language,
            entries: self.entries.clone(),
            examples: self.examples,
            generation: self.generation,
        }
    }

    /// Uses a model trained on `snapshot`'s generation, unless a newer one is in place.
    pub(crate) fn install(&mut self, model: Model, generation: u64) {
        if generation > self.model_generation || self.model.is_none() {
            self.model = Some(Arc::new(model));
            self.model_generation = generation;
        }
    }
}

impl Snapshot {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn examples(&self) -> usize {
        self.examples
    }

    pub(crate) fn fit(&self) -> Model {
        // Examples, their owners, and example-level document frequencies.
        let mut owners: Vec<u32> = Vec::new();
        let mut bags: Vec<&Bag> = Vec::new();
        let mut df: Map<Feature, f32> = Map::default();
        let mut article_df: Map<Feature, usize> = Map::default();
        for (slot, entry) in self.entries.iter().enumerate() {
            let Some(entry) = entry else { continue };
            let mut seen: Vec<Feature> = Vec::new();
            for example in &entry.examples {
                owners.push(slot as u32);
                bags.push(example);
                for &(feature, _) in example {
                    *df.entry(feature).or_default() += 1.0;
                    seen.push(feature);
                }
            }
            seen.sort_unstable();
            seen.dedup();
            for feature in seen {
                *article_df.entry(feature).or_default() += 1;
            }
        }
        let count = bags.len() as f32;
        let idf: Map<Feature, f32> = df.iter().map(|(&f, &df)| (f, ((1.0 + count) / (1.0 + df)).ln() + 1.0)).collect();
        let vectors: Vec<Bag> = bags.iter().map(|bag| tf_idf(bag, &idf)).collect();

        let cap = self.language.max_feature_articles();
        let kept = |feature: &Feature| article_df.get(feature).is_some_and(|n| *n <= cap);
        // H's support: the (feature, article) pairs of the articles' own examples.
        let mut support: Map<Feature, Vec<u32>> = Map::default();
        for (vector, &owner) in vectors.iter().zip(&owners) {
            for (feature, _) in vector.iter().filter(|(feature, _)| kept(feature)) {
                support.entry(*feature).or_default().push(owner);
            }
        }
        for owners in support.values_mut() {
            owners.sort_unstable();
            owners.dedup();
        }
        let epochs = if self.examples > LARGE_EXAMPLES { EPOCHS_LARGE } else { EPOCHS };
        let weights = train(&vectors, &owners, &support, self.entries.len(), epochs);

        let (mut examples, mut example_slots) = (Map::<Feature, Vec<(u32, f32)>>::default(), Vec::new());
        if self.language.knn_weight() > 0.0 {
            for (vector, &owner) in vectors.iter().zip(&owners) {
                let example = example_slots.len() as u32;
                example_slots.push(owner);
                for &(feature, weight) in vector.iter().filter(|(feature, _)| kept(feature)) {
                    examples.entry(feature).or_default().push((example, weight));
                }
            }
        }
        let mut own: Map<u32, (f32, f32)> = Map::default();
        for (vector, &owner) in vectors.iter().zip(&owners) {
            let score: f32 = vector
                .iter()
                .filter_map(|(feature, x)| {
                    let weights = weights.get(feature)?;
                    let at = weights.binary_search_by_key(&owner, |(slot, _)| *slot).ok()?;
                    Some(x * weights[at].1)
                })
                .sum();
            let entry = own.entry(owner).or_default();
            entry.0 += score;
            entry.1 += 1.0;
        }
        let own_scores = own.into_iter().map(|(slot, (sum, n))| (slot, (sum / n).max(0.1))).collect();
        Model { idf, weights, examples, example_slots, own_scores }
    }
}

impl Suggester {
    /// The best articles for `text` that `visible` allows, best first.
    pub(crate) fn suggest(&self, text: &str, visible: &dyn Fn(&str) -> bool) -> Vec<Scored> {
        if self.live == 0 {
            return Vec::new();
        }
        let slots = self.entries.len();
        let mut candidates: Vec<u32> = Vec::new();
        let mut touched = vec![false; slots];
        let mut touch = |slot: u32, candidates: &mut Vec<u32>| {
            if !std::mem::replace(&mut touched[slot as usize], true) {
                candidates.push(slot);
            }
        };

        // B: BM25 over whole articles, query terms as a set.
        let (k1, b) = self.language.bm25();
        let average = (self.total_length / self.live as f64) as f32;
        let mut terms: Vec<Feature> = self.language.terms(text);
        terms.sort_unstable();
        terms.dedup();
        let mut bm25 = vec![0f32; slots];
        let bm25_of = |idf: f32, tf: f32, slot: u32| {
            let length = self.entries[slot as usize].as_ref().map_or(average, |entry| entry.length);
            idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * length / average))
        };
        // Terms in many articles add to the articles other terms found, rather than making
        // every article a candidate: the cost of a query stays with its rare words.
        let cap = self.language.max_feature_articles();
        let mut common: Vec<(&[(u32, f32)], f32)> = Vec::new();
        for term in &terms {
            let Some(postings) = self.postings.get(term).filter(|postings| !postings.is_empty()) else { continue };
            let df = postings.len() as f32;
            let idf = ((self.live as f32 - df + 0.5) / (df + 0.5) + 1.0).ln();
            if postings.len() > cap {
                common.push((postings, idf));
                continue;
            }
            for &(slot, tf) in postings {
                bm25[slot as usize] += bm25_of(idf, tf, slot);
                touch(slot, &mut candidates);
            }
        }

        // H and K from the trained model, if any.
        let mut linear = vec![0f32; slots];
        let mut knn = vec![0f32; slots];
        if let Some(model) = &self.model {
            let mut counts: Map<Feature, f32> = Map::default();
            for feature in self.language.features(text).into_iter().filter(|f| model.idf.contains_key(f)) {
                *counts.entry(feature).or_default() += 1.0;
            }
            let query = tf_idf(&counts.into_iter().collect::<Vec<_>>(), &model.idf);
            for &(feature, x) in &query {
                for &(slot, weight) in model.weights.get(&feature).into_iter().flatten() {
                    if (slot as usize) < slots {
                        linear[slot as usize] += x * weight;
                        touch(slot, &mut candidates);
                    }
                }
            }
            if !model.example_slots.is_empty() {
                let mut cosines: Map<u32, f32> = Map::default();
                for &(feature, x) in &query {
                    for &(example, weight) in model.examples.get(&feature).into_iter().flatten() {
                        *cosines.entry(example).or_default() += x * weight;
                    }
                }
                let mut best: Map<u32, Vec<f32>> = Map::default();
                for (example, cosine) in cosines {
                    best.entry(model.example_slots[example as usize]).or_default().push(cosine);
                }
                for (slot, mut cosines) in best {
                    if (slot as usize) < slots {
                        cosines.sort_by(|a, b| b.total_cmp(a));
                        knn[slot as usize] = cosines.iter().take(KNN).sum();
                        touch(slot, &mut candidates);
                    }
                }
            }
        }

        candidates.retain(|slot| self.entries[*slot as usize].as_ref().is_some_and(|entry| visible(&entry.id)));
        if candidates.is_empty() {
            return Vec::new();
        }
        // Articles the query did not reach score 0 in H, which may beat negative scores.
        let untouched = candidates.len() < self.live;
        let gamma = self.language.knn_weight();
        let score = |candidates: &[u32], bm25: &[f32]| -> Vec<(u32, f32)> {
            let max_of = |values: &[f32]| candidates.iter().map(|slot| values[*slot as usize]).fold(f32::MIN, f32::max);
            let max_linear = if untouched { max_of(&linear).max(0.0) } else { max_of(&linear) };
            let (max_bm25, max_knn) = (max_of(bm25).max(f32::EPSILON), max_of(&knn).max(f32::EPSILON));
            candidates
                .iter()
                .map(|&slot| {
                    let s = slot as usize;
                    (slot, 0.5 * bm25[s] / max_bm25 + 0.5 * (linear[s] - max_linear) + gamma * knn[s] / max_knn)
                })
                .collect()
        };
        // Common terms are looked up only for the best candidates by everything else: in a
        // large knowledge base their postings are long, and one lookup each per candidate
        // would cost more than the rest of the query.
        if !common.is_empty() {
            let mut preliminary = score(&candidates, &bm25);
            if preliminary.len() > SHORTLIST {
                preliminary.select_nth_unstable_by(SHORTLIST, |a, b| b.1.total_cmp(&a.1));
                preliminary.truncate(SHORTLIST);
            }
            candidates = preliminary.into_iter().map(|(slot, _)| slot).collect();
            // Postings are in slot order: slots are handed out in order and removal keeps it.
            for &slot in &candidates {
                for &(postings, idf) in &common {
                    if let Ok(at) = postings.binary_search_by_key(&slot, |(owner, _)| *owner) {
                        bm25[slot as usize] += bm25_of(idf, postings[at].1, slot);
                    }
                }
            }
        }
        let mut scored = score(&candidates, &bm25);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(CANDIDATES);
        scored
            .into_iter()
            .filter_map(|(slot, score)| {
                let entry = self.entries[slot as usize].as_ref()?;
                let own = self.model.as_ref().and_then(|model| model.own_scores.get(&slot).copied());
                let ratio = own.map_or(0.0, |own| linear[slot as usize].max(0.0) / own);
                Some(Scored { article_id: entry.id.clone(), score, confidence: ratio / (ratio + CONFIDENCE_PIVOT) })
            })
            .collect()
    }
}

/// Sublinear TF times IDF, L2-normalized; features without an IDF are dropped.
fn tf_idf(bag: &[(Feature, f32)], idf: &Map<Feature, f32>) -> Bag {
    let mut vector: Bag = bag.iter().filter_map(|&(f, tf)| idf.get(&f).map(|idf| (f, (1.0 + tf.ln()) * idf))).collect();
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, weight) in &mut vector {
            *weight /= norm;
        }
    }
    vector
}

/// The averaged multiclass perceptron with a margin (Crammer–Singer hinge by SGD), with
/// weights only on `support`. Returns feature → (article, averaged weight).
fn train(
    vectors: &[Bag],
    owners: &[u32],
    support: &Map<Feature, Vec<u32>>,
    articles: usize,
    epochs: usize,
) -> Map<Feature, Vec<(u32, f32)>> {
    // Dense numbering of the supported features, so the loop below does no hashing: per
    // feature, its articles (sorted) and their current and summed weights.
    let features: Vec<Feature> = support.keys().copied().collect();
    let dense: Map<Feature, usize> = features.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let supported: Vec<&[u32]> = features.iter().map(|f| support[f].as_slice()).collect();
    let mut w: Vec<Vec<f32>> = supported.iter().map(|owners| vec![0.0; owners.len()]).collect();
    let mut sum: Vec<Vec<f32>> = w.clone();
    let examples: Vec<Vec<(usize, f32)>> = vectors
        .iter()
        .map(|vector| vector.iter().filter_map(|(f, x)| dense.get(f).map(|i| (*i, *x))).collect())
        .collect();

    let mut scores = vec![0f32; articles];
    let mut is_touched = vec![false; articles];
    let mut touched: Vec<u32> = Vec::new();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut c = 1f32;
    for _ in 0..epochs {
        // Fisher–Yates with xorshift: the same order on every replica.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let (example, gold) = (&examples[i], owners[i]);
            for &(feature, x) in example {
                for (owner, weight) in supported[feature].iter().zip(&w[feature]) {
                    if !std::mem::replace(&mut is_touched[*owner as usize], true) {
                        touched.push(*owner);
                    }
                    scores[*owner as usize] += x * weight;
                }
            }
            let gold_score = scores[gold as usize];
            let mut rival: Option<(u32, f32)> = None;
            for &owner in touched.iter().filter(|owner| **owner != gold) {
                let score = scores[owner as usize];
                if rival.is_none_or(|(best, best_score)| score > best_score || (score == best_score && owner < best)) {
                    rival = Some((owner, score));
                }
            }
            // Articles the example did not reach score 0: one of them is the rival when every
            // reached one scores below that (its update touches no weight).
            let reached_others = touched.len() - usize::from(is_touched[gold as usize]);
            let unreached_exists = articles > reached_others + 1;
            let (rival, rival_score) = match rival {
                Some((owner, score)) if score >= 0.0 || !unreached_exists => (Some(owner), score),
                _ => (None, 0.0),
            };
            for owner in touched.drain(..) {
                scores[owner as usize] = 0.0;
                is_touched[owner as usize] = false;
            }
            if gold_score - rival_score < MARGIN {
                for &(feature, x) in example {
                    let step = LEARNING_RATE * x;
                    if let Ok(at) = supported[feature].binary_search(&gold) {
                        w[feature][at] += step;
                        sum[feature][at] += c * step;
                    }
                    if let Some(Ok(at)) = rival.map(|rival| supported[feature].binary_search(&rival)) {
                        w[feature][at] -= step;
                        sum[feature][at] -= c * step;
                    }
                }
            }
            c += 1.0;
        }
    }
    features
        .iter()
        .enumerate()
        .map(|(i, feature)| {
            let averaged = supported[i]
                .iter()
                .zip(w[i].iter().zip(&sum[i]))
                .map(|(owner, (w, sum))| (*owner, w - sum / c))
                .collect();
            (*feature, averaged)
        })
        .collect()
}

/// Cuts `text` to at most `max` characters.
fn prefix(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(at, _)| &text[..at])
}

impl Knowledge {
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

    /// Brings the tenant's suggestion models up to date now, rather than in the background
    /// after the next suggestion: after a bulk import, before measuring.
    pub async fn train_suggestions(&self, tenant: &str) -> Result<(), ServiceError> {
        let (indexes, tenant) = (self.indexes.clone(), tenant.to_owned());
        tokio::task::spawn_blocking(move || indexes.train(&tenant))
            .await
            .map_err(|error| ServiceError::internal(&error))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_grams_are_syllables_and_pairs_per_run() {
        assert_eq!(korean_grams("환불 ok"), ["환", "불", "환불", "o", "k", "ok"]);
        assert_eq!(korean_grams("카드A"), ["카", "드", "카드", "a"]);
    }

    #[test]
    fn english_features_add_bigrams_and_character_grams() {
        let features = Language::English.features("lost cards");
        assert!(features.contains(&feature("lost_card")));
        assert!(features.contains(&feature("#<ca")));
        assert!(features.contains(&feature("card")));
    }
}
