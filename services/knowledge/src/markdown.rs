//! Article bodies: Markdown rendered to HTML that is safe to insert into a page, and to the plain
//! text that search indexes and quotes in snippets.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS)
}

/// HTML through ammonia's allow-list: no scripts, event handlers or `javascript:` links, whatever
/// the author (or a compromised account) wrote, raw HTML included.
pub fn to_safe_html(markdown: &str) -> String {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser(markdown));
    ammonia::clean(&html)
}

/// The words a reader sees, one block per line; markup and raw HTML left out.
pub fn to_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    for event in parser(markdown) {
        match event {
            Event::Text(words) | Event::Code(words) => text.push_str(&words),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item | TagEnd::CodeBlock | TagEnd::TableRow,
            ) => text.push('\n'),
            Event::Start(Tag::TableCell) => text.push(' '),
            _ => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_never_survive() {
        let html = to_safe_html("Hi <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn markdown_renders_and_text_drops_markup() {
        let markdown = "# 환불 안내\n\n**7일** 이내 `refund` 가능\n\n- one\n- two";
        assert!(to_safe_html(markdown).contains("<strong>7일</strong>"));
        assert_eq!(to_text(markdown), "환불 안내\n7일 이내 refund 가능\none\ntwo\n");
    }
}
