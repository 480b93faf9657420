//! Answer suggestions: which articles answer a ticket or a contact form.

use crate::{Map, analysis, model::Article};

/// A suggested article with its score and a confidence between 0 and 1.
#[derive(Clone, Debug)]
pub struct Scored {
    pub article_id: String,
    pub score: f32,
    pub confidence: f32,
}

#[derive(Default)]
pub(crate) struct Suggester {
    slots: Map<String, u32>,
    ids: Vec<Option<String>>,
    postings: Map<String, Vec<(u32, f32)>>,
    lengths: Vec<f32>,
    total_length: f64,
    live: usize,
}

/// Below this, a suggestion is noise rather than an answer.
pub const MIN_CONFIDENCE: f32 = 0.5;

const K1: f32 = 2.0;
const B: f32 = 0.75;

fn features(text: &str) -> Vec<String> {
    let terms = analysis::terms(text);
    let mut features = terms.clone();
    features.extend(terms.windows(2).map(|pair| format!("{}_{}", pair[0], pair[1])));
    features
}

impl Suggester {
    pub(crate) fn insert(&mut self, article: &Article) {
        let mut text = article.title.clone();
        for question in &article.questions {
            text.push('\n');
            text.push_str(question);
        }
        let mut counts: Map<String, f32> = Map::default();
        let mut length = 0.0;
        for line in text.lines() {
            for feature in features(line) {
                *counts.entry(feature).or_default() += 1.0;
                length += 1.0;
            }
        }
        let slot = self.ids.len() as u32;
        self.ids.push(Some(article.id.clone()));
        self.lengths.push(length);
        self.total_length += f64::from(length);
        self.live += 1;
        self.slots.insert(article.id.clone(), slot);
        for (feature, count) in counts {
            self.postings.entry(feature).or_default().push((slot, count));
        }
    }

    pub(crate) fn remove(&mut self, id: &str) {
        let Some(slot) = self.slots.remove(id) else { return };
        self.ids[slot as usize] = None;
        self.total_length -= f64::from(self.lengths[slot as usize]);
        self.live -= 1;
        for postings in self.postings.values_mut() {
            postings.retain(|(s, _)| *s != slot);
        }
    }

    pub(crate) fn suggest(&self, text: &str, visible: &dyn Fn(&str) -> bool) -> Vec<Scored> {
        if self.live == 0 {
            return Vec::new();
        }
        let average = (self.total_length / self.live as f64) as f32;
        let mut query = features(text);
        query.sort_unstable();
        query.dedup();
        let mut scores: Map<u32, f32> = Map::default();
        for feature in &query {
            let Some(postings) = self.postings.get(feature) else { continue };
            let df = postings.len() as f32;
            let idf = ((self.live as f32 - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(slot, tf) in postings {
                let norm = K1 * (1.0 - B + B * self.lengths[slot as usize] / average);
                *scores.entry(slot).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut ranked: Vec<(u32, f32)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
            .into_iter()
            .filter_map(|(slot, score)| {
                let id = self.ids[slot as usize].as_ref()?;
                visible(id).then(|| Scored { article_id: id.clone(), score, confidence: 0.0 })
            })
            .take(10)
            .collect()
    }
}
