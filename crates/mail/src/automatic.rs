//! Mail that no person wrote: auto-replies and out-of-office notices (RFC 3834), bulk and list
//! mail, and bounces (RFC 3464 delivery status notifications, or a mailer daemon's prose). None of
//! it opens a ticket or gets an acknowledgement, which is how two autoresponders would otherwise
//! mail each other forever; a bounce of one of our replies marks that delivery failed.

use mail_parser::{Message, MimeHeaders, PartType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Automatic {
    /// An autoresponder's answer: out of office, vacation, "we received your message".
    AutoReply { reason: String },
    /// Bulk, list or junk mail.
    Bulk { reason: String },
    /// A delivery failure report, with what it says of the message that failed.
    Bounce(Bounce),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bounce {
    /// The `Message-ID` of the message that could not be delivered, without angle brackets.
    pub original_message_id: Option<String>,
    pub recipient: Option<String>,
    /// The DSN status, such as `5.1.1`.
    pub status: Option<String>,
    /// Whether delivery failed for good, rather than was delayed.
    pub permanent: bool,
}

/// Subject prefixes of autoresponders that send no RFC 3834 header (Outlook's, Korean webmail's).
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "out of office:",
    "out of the office:",
    "자동 회신:",
    "자동회신:",
    "[자동응답]",
    "부재중 자동응답",
];

/// Senders that only ever send bounces.
const DAEMON_LOCAL_PARTS: &[&str] = &["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"];

pub(crate) fn classify(message: &Message<'_>) -> Option<Automatic> {
    if let Some(bounce) = bounce(message) {
        return Some(Automatic::Bounce(bounce));
    }
    let header = |name: &str| message.header(name).and_then(|value| value.as_text()).map(str::to_ascii_lowercase);
    if let Some(value) = header("Auto-Submitted").filter(|value| value.trim() != "no") {
        return Some(Automatic::AutoReply { reason: format!("Auto-Submitted: {}", value.trim()) });
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if header(name).is_some() {
            return Some(Automatic::AutoReply { reason: name.to_owned() });
        }
    }
    if let Some(value) = header("X-Auto-Response-Suppress")
        .filter(|value| ["all", "oof", "autoreply"].iter().any(|word| value.contains(word)))
    {
        return Some(Automatic::AutoReply { reason: format!("X-Auto-Response-Suppress: {}", value.trim()) });
    }
    if let Some(value) =
        header("Precedence").filter(|value| matches!(value.trim(), "bulk" | "junk" | "list" | "auto_reply"))
    {
        return Some(Automatic::Bulk { reason: format!("Precedence: {}", value.trim()) });
    }
    if message.header("List-Id").is_some() || message.header("List-Unsubscribe").is_some() {
        return Some(Automatic::Bulk { reason: "mailing list".to_owned() });
    }
    let subject = message.subject().unwrap_or_default().trim().to_lowercase();
    if let Some(prefix) = AUTO_REPLY_SUBJECTS.iter().find(|prefix| subject.starts_with(*prefix)) {
        return Some(Automatic::AutoReply { reason: format!("subject starts with {prefix}") });
    }
    None
}

fn bounce(message: &Message<'_>) -> Option<Bounce> {
    let report = message.is_content_type("multipart", "report");
    let daemon = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address.as_deref())
        .and_then(|address| address.split('@').next())
        .is_some_and(|local| DAEMON_LOCAL_PARTS.iter().any(|daemon| local.eq_ignore_ascii_case(daemon)));
    // A null reverse path (`Return-Path: <>`) is how RFC 5321 marks notifications.
    let null_sender = message.header_raw("Return-Path").is_some_and(|path| path.trim() == "<>");
    if !report && !daemon && !null_sender {
        return None;
    }
    let mut bounce = Bounce { permanent: true, ..Bounce::default() };
    for part in message.parts.iter() {
        let delivery_status = part.is_content_type("message", "delivery-status")
            || part.is_content_type("message", "global-delivery-status");
        match &part.body {
            PartType::Text(text) | PartType::Html(text) if delivery_status => read_status(text, &mut bounce),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) if delivery_status => {
                read_status(&String::from_utf8_lossy(bytes), &mut bounce);
            }
            PartType::Message(original) if bounce.original_message_id.is_none() => {
                bounce.original_message_id = original.message_id().map(|id| id.trim_matches(['<', '>']).to_owned());
            }
            PartType::Text(text) | PartType::Html(text)
                if part.is_content_type("text", "rfc822-headers") && bounce.original_message_id.is_none() =>
            {
                bounce.original_message_id = message_id_line(text);
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes)
                if part.is_content_type("text", "rfc822-headers") && bounce.original_message_id.is_none() =>
            {
                bounce.original_message_id = message_id_line(&String::from_utf8_lossy(bytes));
            }
            _ => {}
        }
    }
    if bounce.original_message_id.is_none() {
        // A daemon's prose: the returned headers are quoted in the text.
        bounce.original_message_id = message.body_text(0).and_then(|text| message_id_line(&text));
    }
    Some(bounce)
}

/// The fields of a `message/delivery-status` body that say what failed.
fn read_status(text: &str, bounce: &mut Bounce) {
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" if bounce.recipient.is_none() => {
                let address = value.rsplit(';').next().unwrap_or(value).trim();
                bounce.recipient = Some(address.trim_matches(['<', '>']).to_lowercase());
            }
            "status" => {
                bounce.permanent = value.starts_with('5');
                bounce.status = Some(value.split_whitespace().next().unwrap_or(value).to_owned());
            }
            "action" if value.eq_ignore_ascii_case("delayed") => bounce.permanent = false,
            _ => {}
        }
    }
}

fn message_id_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("message-id").then(|| value.trim().trim_matches(['<', '>']).to_owned())
    })
}
