//! Article Markdown: nothing a writer types renders as script, and no input panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|markdown: &str| {
    let html = helpdesk_knowledge::markdown::to_safe_html(markdown).to_lowercase();
    // Text is escaped, so every `<` opens a real tag: look inside the tags only.
    for tag in html.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or_default()) {
        let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace()).next().unwrap_or_default();
        assert!(!["script", "iframe", "object", "embed", "style", "form"].contains(&name), "<{tag}> survived");
        assert!(!tag.contains("javascript:"), "<{tag}> survived");
        let handler = tag.split_whitespace().skip(1).any(|attribute| attribute.starts_with("on"));
        assert!(!handler, "an event handler survived in <{tag}>");
    }
    let _ = helpdesk_knowledge::markdown::to_text(markdown);
});
