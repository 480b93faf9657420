//! How text becomes search terms, the same at indexing and query time: Hangul and Han runs as
//! overlapping bigrams (as Lucene's CJK analyzer does, from `helpdesk-text`), other words
//! lowercased and reduced to their English stem, so "refunds" and "refunded" find "refund".

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// English function words, as stems: they say nothing of what a text is about.
pub(crate) const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "i", "me", "my", "you", "your", "we", "our", "it", "is", "are", "was", "be", "am", "to", "of",
    "in", "on", "for", "and", "or", "with", "at", "by", "from", "this", "that", "so", "if", "pleas", "hi", "hello",
    "thank",
];

/// The name the analyzer is registered under in every index.
pub(crate) const ANALYZER: &str = "helpdesk";

static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Calls `emit` with each search term of `text` and the bytes it came from.
pub(crate) fn for_each_term(text: &str, mut emit: impl FnMut(&str, std::ops::Range<usize>)) {
    helpdesk_text::for_each_term(text, |term, range| {
        if term.bytes().all(|b| b.is_ascii_alphabetic()) {
            emit(&ENGLISH.stem(term), range);
        } else {
            emit(term, range);
        }
    });
}

/// The search terms of `text`, in order.
pub(crate) fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |term, _| out.push(term.to_owned()));
    out
}

/// The analyzer as a tantivy tokenizer.
#[derive(Clone, Default)]
pub(crate) struct Analyzer;

pub(crate) struct Terms {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for Analyzer {
    type TokenStream<'a> = Terms;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Terms {
        let mut tokens = Vec::new();
        for_each_term(text, |term, range| {
            let position = tokens.len();
            tokens.push(Token {
                offset_from: range.start,
                offset_to: range.end,
                position,
                text: term.to_owned(),
                position_length: 1,
            });
        });
        Terms { tokens, next: 0 }
    }
}

impl TokenStream for Terms {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_stemmed_and_korean_becomes_bigrams() {
        assert_eq!(terms("Refunds refunded"), ["refund", "refund"]);
        assert_eq!(terms("환불을 요청"), ["환불", "불을", "요청"]);
        assert_eq!(terms("iPhone15 수리"), ["iphone15", "수리"]);
    }

    #[test]
    fn the_token_stream_carries_offsets_for_highlighting() {
        let text = "cards 카드";
        let mut stream = Analyzer.token_stream(text);
        let mut seen = Vec::new();
        while let Some(token) = stream.next() {
            seen.push((token.text.clone(), &text[token.offset_from..token.offset_to]));
        }
        assert_eq!(seen, [("card".to_owned(), "cards"), ("카드".to_owned(), "카드")]);
    }
}
