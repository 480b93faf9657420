//! Internet mail as the email channel reads it: a MIME parser that decodes every charset Korean
//! and international mail uses (EUC-KR, `ks_c_5601-1987` as CP949, ISO-2022-KR, ISO-2022-JP,
//! GB18030, Windows-125x, RFC 2047 words, RFC 2231 parameters, UTF-8 headers) and detects the
//! charset where the declaration is missing or wrong; the ids and tokens that thread a reply; the
//! quoted history a reply carries; and the mail no person wrote. No I/O: the email service stores
//! and delivers, this crate reads.

mod automatic;
mod charset;
mod parse;
mod quote;
mod thread;

pub use automatic::{Automatic, Bounce};
pub use parse::{Attachment, MAX_ATTACHMENTS, Mailbox, ParseError, ParsedMail, html_to_text, parse};
pub use quote::{Reply, html_quote_start, strip_quoted};
pub use thread::{
    TOKEN_LEN, base_address, encode_token, reply_address, subject_with_token, token_in_address, tokens_in_subject,
};
