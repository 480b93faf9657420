//! Mailbox credentials at rest: XChaCha20-Poly1305 under a 32-byte key from configuration
//! (`email.secrets_key`), or from a key file made in the data directory on first start for a
//! platform on one machine. A database copied without the key reveals no password.

use std::path::Path;

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, OsRng},
};
use helpdesk_runtime::ServiceError;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Nonces are random per write: 24 bytes, so they never repeat in practice.
const NONCE_LEN: usize = 24;

pub(crate) struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Keys ticket tokens, apart from the cipher's key.
    token_key: [u8; 32],
}

impl SecretBox {
    /// The configured key, or the one in `<data_dir>/email-secrets.key`, made if missing.
    pub(crate) fn open(configured: Option<&SecretString>, data_dir: &Path) -> std::io::Result<Self> {
        let key = match configured {
            Some(key) => hex::decode(key.expose_secret()).map_err(std::io::Error::other)?,
            None => key_file(&data_dir.join("email-secrets.key"))?,
        };
        let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(std::io::Error::other)?;
        let token_key = Sha256::new().chain_update(b"helpdesk ticket tokens").chain_update(&key).finalize().into();
        Ok(Self { cipher, token_key })
    }

    /// The ticket's token for replies: keyed by the secret, so every replica and retry agrees on
    /// it and nobody who knows a ticket's id can work it out.
    pub(crate) fn ticket_token(&self, ticket_id: &str) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.token_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(ticket_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut random = [0u8; helpdesk_mail::TOKEN_LEN];
        random.copy_from_slice(&digest[..helpdesk_mail::TOKEN_LEN]);
        helpdesk_mail::encode_token(random)
    }

    pub(crate) fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed =
            self.cipher.encrypt(&nonce, plaintext).map_err(|_| ServiceError::internal(&"encryption failed"))?;
        Ok([&nonce[..], &sealed].concat())
    }

    pub(crate) fn open_sealed(&self, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
        if sealed.len() < NONCE_LEN {
            return Err(ServiceError::internal(&"stored secrets are truncated"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| ServiceError::internal(&"stored nonce is short"))?;
        self.cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| ServiceError::internal(&"stored secrets do not open with the configured email.secrets_key"))
    }
}

fn key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim()).map_err(std::io::Error::other),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_private(path, &hex::encode(key))?;
            tracing::warn!(path = %path.display(), "made a key for mailbox credentials; set email.secrets_key when replicas share a database");
            Ok(key.to_vec())
        }
        Err(error) => Err(error),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::open(None, dir.path()).unwrap();
        let sealed = first.seal(b"imap password").unwrap();
        assert!(!sealed.windows(8).any(|window| window == b"password"));
        // The key file is reused on the next start.
        let again = SecretBox::open(None, dir.path()).unwrap();
        assert_eq!(again.open_sealed(&sealed).unwrap(), b"imap password");
        let other = SecretBox::open(Some(&SecretString::from("00".repeat(32))), dir.path()).unwrap();
        assert!(other.open_sealed(&sealed).is_err());
    }
}
