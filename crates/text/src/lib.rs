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
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_cjk(&mut cjk, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_cjk(&mut cjk, &mut out);
    out
}

/// The distinct terms of `text`, sorted: what an index stores once per document.
pub fn distinct_terms(text: &str) -> Vec<String> {
    let mut terms = terms(text);
    terms.sort_unstable();
    terms.dedup();
    terms
}

fn flush_word(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() && word.chars().count() <= MAX_TERM_CHARS {
        out.push(std::mem::take(word));
    }
    word.clear();
}

fn flush_cjk(run: &mut Vec<char>, out: &mut Vec<String>) {
    match run.len() {
        0 => {}
        1 => out.push(run[0].to_string()),
        _ => out.extend(run.windows(2).map(|pair| pair.iter().collect())),
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
    fn distinct_terms_are_sorted_without_repeats() {
        assert_eq!(distinct_terms("b a b"), ["a", "b"]);
        assert!(distinct_terms("  !!! ").is_empty());
    }
}
