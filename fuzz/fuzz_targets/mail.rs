//! Mail as the email channel reads it: no message panics the parser, threading's token and
//! address readers, or the quote stripper, and what they return stays within what was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let Ok(mail) = helpdesk_mail::parse(raw) else { return };
    let _ = mail.content_hash();
    let reply = helpdesk_mail::strip_quoted(&mail.text);
    assert!(reply.text.len() <= mail.text.len(), "the stripped reply grew");
    for token in helpdesk_mail::tokens_in_subject(&mail.subject) {
        assert_eq!(token.len(), "hd".len() + helpdesk_mail::TOKEN_LEN, "a token of another length: {token}");
    }
    for address in mail.to.iter().chain(&mail.cc) {
        let _ = helpdesk_mail::token_in_address(&address.address);
        let _ = helpdesk_mail::base_address(&address.address);
    }
    if let Some(html) = &mail.html
        && let Some(at) = helpdesk_mail::html_quote_start(html)
    {
        assert!(html.is_char_boundary(at), "a quote start inside a character");
    }
});
