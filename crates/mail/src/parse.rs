//! One message as the email channel needs it: who wrote to whom, the ids that thread it, the
//! text and HTML bodies decoded whatever their charset, and the attachments. Built on Stalwart's
//! `mail-parser`, which reads malformed mail without panicking; what it cannot decode is redone
//! in [`crate::charset`].

use mail_parser::{
    Addr, Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
    decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode},
};
use sha2::{Digest, Sha256};

use crate::{Automatic, charset};

/// Attachments past this many are left out (a 1,000-part multipart is an attack, not a request).
pub const MAX_ATTACHMENTS: usize = 100;

/// A mailbox as written in a header: the address in lowercase, and the display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub address: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    /// Without angle brackets: what `cid:` URLs in the HTML body name.
    pub content_id: Option<String>,
    /// Shown in the body rather than offered as a download.
    pub inline: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Outlook's conversation: the first 22 bytes of `Thread-Index`, in hex, shared by every
    /// message of the conversation.
    pub thread_root: Option<String>,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Where the message was delivered (`Delivered-To`, `X-Original-To`), for mail forwarded
    /// to the support address.
    pub delivered_to: Vec<String>,
    pub subject: String,
    /// Seconds since the epoch, as the sender's `Date` says.
    pub date: Option<i64>,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// Set for auto-replies, bulk mail and bounces, which never open tickets.
    pub automatic: Option<Automatic>,
    /// `Content-Language`, such as `ko`.
    pub language: Option<String>,
    /// What was set aside or guessed, for the record.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing that reads as a message: no header at all.
    NotMail,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotMail => f.write_str("not an internet message: no headers"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> Result<ParsedMail, ParseError> {
    let message = MessageParser::default().parse(raw).ok_or(ParseError::NotMail)?;
    if message.headers().is_empty() {
        return Err(ParseError::NotMail);
    }
    let mut notes = Vec::new();
    let text = body(&message, BodyKind::Text, &mut notes);
    let html = body(&message, BodyKind::Html, &mut notes);
    let text = match (text, &html) {
        (Some(text), _) => text,
        (None, Some(html)) => html_to_text(html),
        // A truncated multipart leaves its text in an unnamed part that reads as an attachment.
        (None, None) => message
            .attachments()
            .find(|part| part.attachment_name().is_none())
            .and_then(|part| match &part.body {
                PartType::Text(text) => Some(text.to_string()),
                _ => None,
            })
            .unwrap_or_default(),
    };
    let mut parsed = ParsedMail {
        message_id: message.message_id().map(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        thread_root: thread_root(&message),
        from: message.from().and_then(first).or_else(|| message.sender().and_then(first)),
        reply_to: message.reply_to().and_then(first),
        to: all(message.to()),
        cc: all(message.cc()),
        delivered_to: delivered_to(&message),
        subject: subject(&message),
        date: message.date().map(|date| date.to_timestamp()),
        text,
        html,
        attachments: attachments(&message, &mut notes),
        automatic: crate::automatic::classify(&message),
        language: message.content_language().as_text_list().and_then(|list| list.first()).map(|l| l.to_lowercase()),
        notes,
    };
    if let Some(from) = parsed.from.as_mut().filter(|from| from.name.contains('\u{fffd}')) {
        from.name = raw_header(&message, HeaderName::From).map(display_name_of).unwrap_or_default();
    }
    Ok(parsed)
}

impl ParsedMail {
    /// A fingerprint of what the sender wrote, the same however many servers relayed it or
    /// mailboxes received it: transport headers (`Received`, `Delivered-To`) are left out.
    pub fn content_hash(&self) -> String {
        let mut hash = Sha256::new();
        let from = self.from.as_ref().map_or("", |from| from.address.as_str());
        for part in [from, &self.subject, &self.date.unwrap_or_default().to_string(), &self.text] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for attachment in &self.attachments {
            hash.update(Sha256::digest(&attachment.data));
        }
        hex::encode(hash.finalize())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum BodyKind {
    Text,
    Html,
}

/// The message's text or HTML body: its parts joined, each decoded with [`charset::redecode`]
/// where the declaration cannot be trusted.
fn body(message: &Message<'_>, kind: BodyKind, notes: &mut Vec<String>) -> Option<String> {
    let parts: Vec<&MessagePart<'_>> = match kind {
        BodyKind::Text => message.text_bodies().collect(),
        BodyKind::Html => message.html_bodies().collect(),
    };
    let mut out = String::new();
    let mut any = false;
    for part in parts {
        // A text body stands in for the missing HTML one and the other way round; keep each kind.
        let text = match (&part.body, kind) {
            (PartType::Text(text), BodyKind::Text) | (PartType::Html(text), BodyKind::Html) => text,
            _ => continue,
        };
        any = true;
        let declared = part.content_type().and_then(|ct| ct.attribute("charset"));
        match charset::redecode(declared, &transfer_decoded(message, part)) {
            Some(redone) => {
                notes
                    .push(format!("charset {} not trusted: detected from the bytes", declared.unwrap_or("undeclared")));
                out.push_str(&redone);
            }
            None => out.push_str(text),
        }
    }
    any.then_some(out)
}

/// A part's bytes with only the transfer encoding undone.
fn transfer_decoded(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let raw = message.raw_message();
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let bytes = raw.get(start..end.min(raw.len())).unwrap_or_default();
    match part.encoding {
        Encoding::Base64 => base64_decode(bytes).unwrap_or_default(),
        Encoding::QuotedPrintable => quoted_printable_decode(bytes).unwrap_or_default(),
        Encoding::None => bytes.to_vec(),
    }
}

fn attachments(message: &Message<'_>, notes: &mut Vec<String>) -> Vec<Attachment> {
    let mut out = Vec::new();
    for part in message.attachments() {
        if out.len() == MAX_ATTACHMENTS {
            notes.push(format!("attachments past {MAX_ATTACHMENTS} left out"));
            break;
        }
        let data = match &part.body {
            PartType::Binary(data) | PartType::InlineBinary(data) => data.to_vec(),
            PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
            PartType::Message(inner) => inner.raw_message().to_vec(),
            PartType::Multipart(_) => continue,
        };
        let content_type = part.content_type().map_or_else(
            || "application/octet-stream".to_owned(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
                None => ct.ctype().to_lowercase(),
            },
        );
        let inline = matches!(part.body, PartType::InlineBinary(_))
            || part.content_disposition().is_some_and(|cd| cd.ctype().eq_ignore_ascii_case("inline"));
        out.push(Attachment {
            filename: part.attachment_name().map_or_else(|| format!("attachment-{}", out.len() + 1), sanitize_filename),
            content_type,
            content_id: part.content_id().map(clean_id),
            inline,
            data,
        });
    }
    out
}

/// A file name without directories or control characters, at most 200 characters.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() || clean == "." || clean == ".." { "attachment".to_owned() } else { clean }
}

fn subject(message: &Message<'_>) -> String {
    let parsed = message.subject().unwrap_or_default();
    if !parsed.contains('\u{fffd}') {
        return parsed.trim().to_owned();
    }
    // 8-bit bytes in the header, not UTF-8: EUC-KR written raw by an old client.
    raw_header(message, HeaderName::Subject).map_or_else(|| parsed.trim().to_owned(), |raw| raw.trim().to_owned())
}

/// A header's value as the bytes say, unfolded, decoded by [`charset::header_text`].
fn raw_header(message: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let header = message.headers().iter().find(|header| header.name == name)?;
    let raw = message.raw_message();
    let bytes = raw.get(header.offset_start as usize..(header.offset_end as usize).min(raw.len()))?;
    let text = charset::header_text(bytes);
    Some(text.split(['\r', '\n']).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" "))
}

/// The display name of a raw `From` value: what precedes `<`, unquoted.
fn display_name_of(raw: String) -> String {
    raw.split('<').next().unwrap_or_default().trim().trim_matches('"').trim().to_owned()
}

fn first(address: &Address<'_>) -> Option<Mailbox> {
    address.first().and_then(mailbox)
}

fn all(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address.map(|address| address.iter().filter_map(mailbox).collect()).unwrap_or_default()
}

fn mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    let address = addr.address.as_deref()?.trim().to_lowercase();
    address.contains('@').then(|| Mailbox { address, name: addr.name.as_deref().unwrap_or_default().trim().to_owned() })
}

fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

/// Message ids of `In-Reply-To` or `References`, oldest first, at most 100.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match value {
        HeaderValue::Text(id) => id.split_whitespace().map(clean_id).collect(),
        HeaderValue::TextList(list) => list.iter().flat_map(|ids| ids.split_whitespace()).map(clean_id).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).take(100).collect()
}

fn delivered_to(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["Delivered-To", "X-Original-To", "X-Forwarded-To"] {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                let address = clean_id(text).to_lowercase();
                if address.contains('@') && !out.contains(&address) {
                    out.push(address);
                }
            }
        }
    }
    out
}

/// Outlook's `Thread-Index` is base64 of 22 bytes for the conversation, then 5 per reply.
fn thread_root(message: &Message<'_>) -> Option<String> {
    let value = message.header("Thread-Index")?.as_text()?;
    let bytes = base64_decode(value.trim().as_bytes())?;
    (bytes.len() >= 22).then(|| hex::encode(&bytes[..22]))
}

/// The text of an HTML-only message: tags dropped, block ends as new lines, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag.chars().take_while(char::is_ascii_alphanumeric).collect();
        if matches!(name.as_str(), "style" | "script" | "head") && !rest[start + 1..].starts_with('/') {
            // Skip to the end of the element: its content is not text.
            let close = format!("</{name}");
            let after = &rest[start + end + 1..];
            rest = after.to_ascii_lowercase().find(&close).map_or("", |at| &after[at..]);
            continue;
        }
        if matches!(name.as_str(), "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "blockquote") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(&decode_entities(rest));
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text_without_styles() {
        let html =
            "<html><head><style>p{}</style></head><body><p>안녕하세요&nbsp;고객님</p><p>A &amp; B</p></body></html>";
        assert_eq!(html_to_text(html), "안녕하세요 고객님\n\nA & B");
    }

    #[test]
    fn a_filename_keeps_no_directories() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\kim\\영수증.pdf"), "영수증.pdf");
        assert_eq!(sanitize_filename(".."), "attachment");
    }
}
