//! The ticket token that outgoing mail carries, so that a reply finds its ticket even when every
//! header that would tie it was dropped: in the reply-to address (`support+<token>@…`) and at the
//! end of the subject (`[#<token>]`). Tokens are random, not ticket ids, so that nobody can write
//! into a ticket by guessing its number.

/// Characters of a token: RFC 4648 base32 in lowercase, as servers lowercase addresses.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Marks a token apart from sub-addresses people choose (`kim+newsletter@…`).
const PREFIX: &str = "hd";
/// Random characters after the prefix: 50 bits.
pub const TOKEN_LEN: usize = 10;

/// A token from ten random bytes.
pub fn encode_token(random: [u8; TOKEN_LEN]) -> String {
    let mut token = String::from(PREFIX);
    token.extend(random.iter().map(|byte| ALPHABET[usize::from(byte & 31)] as char));
    token
}

fn is_token(candidate: &str) -> bool {
    candidate.len() == PREFIX.len() + TOKEN_LEN
        && candidate.starts_with(PREFIX)
        && candidate.bytes().all(|byte| ALPHABET.contains(&byte))
}

/// Tokens written as `[#token]` in a subject, in order.
pub fn tokens_in_subject(subject: &str) -> Vec<String> {
    subject
        .split("[#")
        .skip(1)
        .filter_map(|rest| rest.split_once(']'))
        .map(|(candidate, _)| candidate.trim().to_ascii_lowercase())
        .filter(|candidate| is_token(candidate))
        .collect()
}

/// The token of a sub-address: `support+token@example.com`.
pub fn token_in_address(address: &str) -> Option<String> {
    let (local, _domain) = address.rsplit_once('@')?;
    let (_, tag) = local.split_once('+')?;
    let tag = tag.to_ascii_lowercase();
    is_token(&tag).then_some(tag)
}

/// The address with its sub-address removed: what a mailbox is registered as.
pub fn base_address(address: &str) -> String {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
        None => address,
    }
}

/// `subject` ending in the ticket's token, once.
pub fn subject_with_token(subject: &str, token: &str) -> String {
    if tokens_in_subject(subject).iter().any(|found| found == token) {
        return subject.to_owned();
    }
    format!("{} [#{token}]", subject.trim())
}

/// The address replies should go to: the mailbox's, sub-addressed with the token.
pub fn reply_address(mailbox_address: &str, token: &str) -> String {
    match mailbox_address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => mailbox_address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_survives_the_round_trip_through_subject_and_address() {
        let token = encode_token([7, 200, 13, 99, 250, 1, 2, 3, 4, 5]);
        assert_eq!(token.len(), 12);
        let subject = subject_with_token("환불 문의", &token);
        assert_eq!(tokens_in_subject(&format!("RE: 답장: {subject}")), vec![token.clone()]);
        assert_eq!(subject_with_token(&subject, &token), subject);
        let address = reply_address("support@acme.test", &token);
        assert_eq!(token_in_address(&address.to_uppercase()), Some(token));
        assert_eq!(base_address(&address), "support@acme.test");
    }

    #[test]
    fn things_that_look_like_tokens_are_not() {
        assert!(tokens_in_subject("Order [#123] and [#abc]").is_empty());
        assert_eq!(token_in_address("kim+newsletter@example.com"), None);
        assert_eq!(token_in_address("kim+hdnewsletters@example.com"), None);
        assert_eq!(token_in_address("no-at-sign"), None);
    }
}
