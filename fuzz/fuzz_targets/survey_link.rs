//! Survey links: no input panics, and only what the key signed verifies.
#![no_main]

use helpdesk_feedback::token::LinkSigner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    let signer = LinkSigner::new(b"a-key-the-fuzzer-never-learns");
    if let Ok(claims) = signer.verify(token, 0) {
        assert_eq!(signer.sign(&claims), token, "a link verified that the key did not sign");
    }
    let _ = signer.is_revision_key("inv", "first", token);
});
