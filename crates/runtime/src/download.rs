//! The headers of a file sent to a browser (an attachment downloaded through the gateway or the
//! workspace): what someone attached never runs, and only what browsers show safely is shown in
//! place.

use http::{HeaderName, HeaderValue, header};

/// Types a browser may show in place: images (inline images of mail among them), PDF and plain
/// text. Anything else, HTML and SVG included, is only ever downloaded.
const SHOWN_INLINE: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"];

/// The response headers for the file `name` of `content_type` whose content hashes to `sha256`.
pub fn file_headers(name: &str, content_type: &str, sha256: &str) -> [(HeaderName, HeaderValue); 6] {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let inline = SHOWN_INLINE.contains(&essence);
    let content_type = if inline { content_type } else { "application/octet-stream" };
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_fallback(name),
        percent_encode(name)
    );
    let value = |value: &str, fallback: &'static str| {
        HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static(fallback))
    };
    [
        (header::CONTENT_TYPE, value(content_type, "application/octet-stream")),
        (header::CONTENT_DISPOSITION, value(&disposition, "attachment")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        // Even a file shown in place runs nothing and loads nothing.
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox")),
        // Content-addressed: what a URL names never changes; access is checked on every request.
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
        (header::ETAG, value(&format!("\"{sha256}\""), "\"\"")),
    ]
}

/// The name as plain ASCII for clients that ignore `filename*`: other characters become `_`.
fn ascii_fallback(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect()
}

/// RFC 5987 / RFC 8187 `attr-char` encoding.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'!'
            | b'#'
            | b'$'
            | b'&'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_names_are_encoded_for_content_disposition() {
        assert_eq!(percent_encode("영수증 1.pdf"), "%EC%98%81%EC%88%98%EC%A6%9D%201.pdf");
        assert_eq!(ascii_fallback("영수증 \"1\".pdf"), "___ _1_.pdf");
    }

    #[test]
    fn what_a_browser_would_run_is_only_downloaded() {
        let headers = file_headers("x.html", "text/html", "ab");
        assert_eq!(headers[0].1, "application/octet-stream");
        assert!(headers[1].1.to_str().unwrap_or_default().starts_with("attachment;"));
        assert_eq!(file_headers("a.png", "image/png", "ab")[0].1, "image/png");
    }
}
