//! Search terms that work for Korean as well as English, with no dictionary: alphabetic and numeric
//! words are lowercased; runs of Hangul, Han or Kana become overlapping bigrams (a lone character
//! stays a unigram), as Lucene's CJK analyzer does. "환불을 요청합니다" yields 환불, 불을, 요청,
//! 청합, 합니, 니다 — so a query for 환불 finds it whatever particle follows.

/// Longest term kept; longer tokens are almost always noise (hashes, base64).
const MAX_TERM_CHARS: usize = 40;

fn is_hangul(c: char) -> bool {
    matches!(c, '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}' | '\u{AC00}'..='\u{D7AF}')
}

/// Whether `text` is written in Korean: any Hangul (syllables or jamo) at all.
pub fn has_hangul(text: &str) -> bool {
    text.chars().any(is_hangul)
}

fn is_cjk(c: char) -> bool {
    is_hangul(c)
        || matches!(c,
            '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
            | '\u{3400}'..='\u{4DBF}' // Han extension A
            | '\u{4E00}'..='\u{9FFF}' // Han
            | '\u{F900}'..='\u{FAFF}' // Han compatibility
        )
}

/// The terms of `text`, in order of appearance, with repeats.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |term, _| out.push(term.to_owned()));
    out
}

/// The distinct terms of `text`, sorted: what an index stores once per document.
pub fn distinct_terms(text: &str) -> Vec<String> {
    let mut terms = terms(text);
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Calls `emit` with each term of `text` and the byte range it came from (a bigram's range
/// spans both characters), in order of appearance: for highlighting and for search engines'
/// tokenizers.
pub fn for_each_term(text: &str, mut emit: impl FnMut(&str, std::ops::Range<usize>)) {
    let mut word = String::new();
    let mut word_start = 0;
    let mut cjk: Vec<(usize, char)> = Vec::new();
    for (at, c) in text.char_indices() {
        if is_cjk(c) {
            flush_word(&mut word, word_start..at, &mut emit);
            cjk.push((at, c));
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut emit);
            if word.is_empty() {
                word_start = at;
            }
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, word_start..at, &mut emit);
            flush_cjk(&mut cjk, &mut emit);
        }
    }
    flush_word(&mut word, word_start..text.len(), &mut emit);
    flush_cjk(&mut cjk, &mut emit);
}

fn flush_word(word: &mut String, range: std::ops::Range<usize>, emit: &mut impl FnMut(&str, std::ops::Range<usize>)) {
    if !word.is_empty() && word.chars().count() <= MAX_TERM_CHARS {
        emit(word, range);
    }
    word.clear();
}

fn flush_cjk(run: &mut Vec<(usize, char)>, emit: &mut impl FnMut(&str, std::ops::Range<usize>)) {
    let end = |(at, c): (usize, char)| at + c.len_utf8();
    let mut pair = String::new();
    match run.len() {
        0 => {}
        1 => emit(run[0].1.encode_utf8(&mut [0; 4]), run[0].0..end(run[0])),
        _ => {
            for window in run.windows(2) {
                pair.clear();
                pair.push(window[0].1);
                pair.push(window[1].1);
                emit(&pair, window[0].0..end(window[1]));
            }
        }
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_runs_become_bigrams_and_latin_words_are_lowercased() {
        assert_eq!(terms("환불을 요청"), ["환불", "불을", "요청"]);
        assert_eq!(terms("Refund my ORDER #42"), ["refund", "my", "order", "42"]);
        assert_eq!(terms("주문 A123 배송"), ["주문", "a123", "배송"]);
    }

    #[test]
    fn a_lone_cjk_character_stays_a_unigram() {
        assert_eq!(terms("돈 refund"), ["돈", "refund"]);
    }

    #[test]
    fn mixed_script_words_split_at_the_script_boundary() {
        assert_eq!(terms("iPhone수리"), ["iphone", "수리"]);
    }

    #[test]
    fn each_term_knows_the_bytes_it_came_from() {
        let text = "Card 환불을";
        let mut seen = Vec::new();
        for_each_term(text, |term, range| seen.push((term.to_owned(), text[range].to_owned())));
        assert_eq!(
            seen,
            [("card".into(), "Card".into()), ("환불".into(), "환불".into()), ("불을".into(), "불을".into())]
        );
    }

    #[test]
    fn distinct_terms_are_sorted_without_repeats() {
        assert_eq!(distinct_terms("b a b"), ["a", "b"]);
        assert!(distinct_terms("  !!! ").is_empty());
    }
}
