//! A reply without the history it quotes: the attribution line ("On … wrote:", "… 님이 작성:",
//! Apple's "… 작성:"), Outlook's and Naver's header blocks, "-----Original Message-----" and
//! Daum's "원본 메일", `>` quotes at the end, and signatures. What is cut is kept by the caller
//! with the original message; an answer that is nothing but quotes is left whole.

/// The reply's own text, and whether anything was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub quoted: bool,
}

/// Strips quoted history and the signature from a plain-text reply.
pub fn strip_quoted(text: &str) -> Reply {
    let lines: Vec<&str> = text.lines().collect();
    let cut = (0..lines.len()).find(|&at| starts_history(&lines, at));
    let mut own: Vec<&str> = lines[..cut.unwrap_or(lines.len())].to_vec();
    let mut quoted = cut.is_some();
    // Bottom-quoted `>` lines with nothing after them.
    while own.last().is_some_and(|line| line.trim().is_empty() || line.trim_start().starts_with('>')) {
        quoted |= own.last().is_some_and(|line| line.trim_start().starts_with('>'));
        own.pop();
    }
    if let Some(signature) = own.iter().rposition(|line| is_signature_start(line)) {
        own.truncate(signature);
        quoted = true;
    }
    let reply = own.join("\n").trim().to_owned();
    if reply.is_empty() {
        return Reply { text: text.trim().to_owned(), quoted: false };
    }
    Reply { text: reply, quoted }
}

/// Where the HTML of a reply starts quoting, by the markers mail clients leave: Gmail's quote
/// block, Apple Mail's cite blockquote, Outlook's reply header, Yahoo's and Naver's.
pub fn html_quote_start(html: &str) -> Option<usize> {
    const MARKERS: &[&str] = &[
        "<div class=\"gmail_quote",
        "<blockquote type=\"cite\"",
        "<div id=\"appendonsend\"",
        "<div id=\"divRplyFwdMsg\"",
        "<hr id=\"stopSpelling\"",
        "<div class=\"yahoo_quoted\"",
        "<blockquote class=\"naver",
        "<div class=\"moz-cite-prefix\"",
        "<div id=\"mail-app-auto-default-signature\"",
    ];
    let lower = html.to_ascii_lowercase();
    MARKERS.iter().filter_map(|marker| lower.find(&marker.to_ascii_lowercase())).min()
}

fn starts_history(lines: &[&str], at: usize) -> bool {
    let line = lines[at].trim();
    if line.is_empty() {
        return false;
    }
    let lower = line.to_lowercase();
    // "-----Original Message-----", "----- 원본 메시지 -----", "------ 원본 메일 ------".
    let unframed = lower.trim_matches(|c: char| c == '-' || c == '=' || c.is_whitespace());
    if line.starts_with("--")
        && matches!(unframed, "original message" | "원본 메시지" | "원본 메일" | "원본메일" | "forwarded message")
    {
        return true;
    }
    if attribution(&lower) {
        return true;
    }
    // An attribution wrapped over two lines: "On Tue, 1 Dec 2026 at 10:00, Kim <kim@x>" + "wrote:".
    if let Some(next) = lines.get(at + 1) {
        let joined = format!("{lower} {}", next.trim().to_lowercase());
        if (lower.starts_with("on ") || lower.starts_with("20")) && attribution(&joined) {
            return true;
        }
    }
    header_block(lines, at)
}

/// "On … wrote:", "Le … a écrit :", "… 님이 작성:", "2026. 12. 1. 오전 10:00, 김민수 <kim@x> 작성:".
fn attribution(lower: &str) -> bool {
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || lower.ends_with("님이 작성:")
        || lower.ends_with("님이 작성했습니다:")
        || (lower.ends_with("작성:") && lower.contains('@'))
        || (lower.starts_with("le ") && lower.ends_with("a écrit :"))
        || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
}

/// Outlook's and Naver's block: `From:`/`보낸 사람:` followed within four lines by a sent date.
fn header_block(lines: &[&str], at: usize) -> bool {
    const FROM: &[&str] = &["from:", "보낸 사람:", "보낸사람:", "발신:", "from :"];
    const SENT: &[&str] = &["sent:", "date:", "보낸 날짜:", "날짜:", "sent :", "발송:", "to:", "받는 사람:"];
    let starts = |line: &str, names: &[&str]| {
        let lower = line.trim().trim_start_matches('*').to_lowercase();
        names.iter().any(|name| lower.starts_with(name))
    };
    starts(lines[at], FROM) && lines.iter().skip(at + 1).take(4).any(|line| starts(line, SENT))
}

fn is_signature_start(line: &str) -> bool {
    let trimmed = line.trim_end();
    trimmed == "--"
        || line == "-- "
        || matches!(
            trimmed.trim().to_lowercase().as_str(),
            "sent from my iphone" | "sent from my ipad" | "iphone에서 보냄" | "ipad에서 보냄" | "sent from outlook"
        )
        || trimmed.trim().starts_with("Sent from my ")
        || trimmed.trim().starts_with("Get Outlook for ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> String {
        strip_quoted(text).text
    }

    #[test]
    fn gmail_english_attribution() {
        let text = "Still broken, sorry.\n\nOn Tue, Dec 1, 2026 at 10:00 AM Support <support@acme.test> wrote:\n> Please try again.\n";
        assert_eq!(strip_quoted(text), Reply { text: "Still broken, sorry.".into(), quoted: true });
    }

    #[test]
    fn gmail_korean_attribution() {
        let text = "다시 확인 부탁드립니다.\n\n2026년 12월 1일 (화) 오전 10:00, 고객센터 <support@acme.test>님이 작성:\n> 확인했습니다.";
        assert_eq!(reply(text), "다시 확인 부탁드립니다.");
    }

    #[test]
    fn apple_mail_korean_attribution() {
        let text = "네 감사합니다\n\n2026. 12. 1. 오전 10:00, 고객센터 <support@acme.test> 작성:\n\n> 안내드립니다";
        assert_eq!(reply(text), "네 감사합니다");
    }

    #[test]
    fn wrapped_attribution_over_two_lines() {
        let text = "Thanks!\n\nOn Tue, 1 Dec 2026 at 10:00, Acme Support <support@acme.test>\nwrote:\n> hello";
        assert_eq!(reply(text), "Thanks!");
    }

    #[test]
    fn outlook_header_block_in_korean() {
        let text = "첨부 확인 바랍니다.\n\n보낸 사람: 고객센터 <support@acme.test>\n보낸 날짜: 2026년 12월 1일 화요일 오전 10:00\n받는 사람: 김민수\n제목: RE: 환불";
        assert_eq!(reply(text), "첨부 확인 바랍니다.");
    }

    #[test]
    fn naver_and_daum_original_message_markers() {
        assert_eq!(
            reply("환불 부탁드려요\n\n-----Original Message-----\nFrom: \"고객센터\" <support@acme.test>"),
            "환불 부탁드려요"
        );
        assert_eq!(reply("배송 언제 되나요?\n\n------ 원본 메일 ------\n보낸사람 : 고객센터"), "배송 언제 되나요?");
    }

    #[test]
    fn outlook_english_header_block() {
        let text = "See attached.\n\nFrom: Acme Support <support@acme.test>\nSent: Tuesday, December 1, 2026 10:00 AM\nTo: Kim\nSubject: RE: refund";
        assert_eq!(reply(text), "See attached.");
    }

    #[test]
    fn signatures_and_mobile_footers_go() {
        assert_eq!(reply("OK, thanks\n-- \nKim Minsu\nACME Corp"), "OK, thanks");
        assert_eq!(reply("확인했습니다\n\niPhone에서 보냄"), "확인했습니다");
    }

    #[test]
    fn a_reply_that_is_only_quotes_is_kept_whole() {
        let text = "> Please try again.";
        assert_eq!(strip_quoted(text), Reply { text: "> Please try again.".into(), quoted: false });
    }

    #[test]
    fn interleaved_answers_are_kept() {
        let text = "> Which order?\nA-1042\n> Which colour?\nBlue";
        assert_eq!(reply(text), "> Which order?\nA-1042\n> Which colour?\nBlue");
    }

    #[test]
    fn text_that_mentions_from_is_not_a_header_block() {
        let text = "From: what I can tell, it failed twice.\nThanks";
        assert_eq!(reply(text), text);
    }

    #[test]
    fn html_quotes_are_found_by_their_markers() {
        let html = "<div>Thanks</div><div class=\"gmail_quote\"><blockquote>old</blockquote></div>";
        assert_eq!(html_quote_start(html), Some(17));
        assert_eq!(html_quote_start("<p>no quote</p>"), None);
    }
}
