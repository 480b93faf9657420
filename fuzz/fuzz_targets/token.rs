//! Bearer tokens as identity checks them: no input panics, and none verifies without the key.
#![no_main]

use helpdesk_identity::tokens::{SigningAlgorithm, SigningKey, key_id, verify};
use helpdesk_runtime::auth::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    let key = SigningKey {
        id: "sk_fuzz".into(),
        tenant_id: "demo".into(),
        name: "fuzz".into(),
        algorithm: SigningAlgorithm::Hs256,
        secret: "a-secret-the-fuzzer-never-learns-0123456789".to_owned().into(),
        public_key_pem: String::new(),
        roles: vec![Role::Customer],
        issuer: String::new(),
        audience: String::new(),
        created_at: 0,
        retires_at: None,
    };
    if let Ok((_, algorithm)) = key_id(token) {
        assert!(verify(&key, token, algorithm, 0, 30).is_err(), "a token verified without the key: {token}");
    }
});
