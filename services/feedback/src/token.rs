//! Survey links: `<tenant>.<invitation>.<expiry>.<signature>`, an HMAC-SHA256 over the first
//! three parts with a key only the feedback service holds. The link names one invitation, so it
//! answers for one customer's ticket, and stops working when it expires.

use helpdesk_runtime::ServiceError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a verified link stands for.
#[derive(Debug, PartialEq, Eq)]
pub struct Claims {
    pub tenant: String,
    pub invitation: String,
    /// Unix seconds.
    pub expires_at: i64,
}

pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        mac.update(payload.as_bytes());
        mac
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = format!("{}.{}.{}", claims.tenant, claims.invitation, claims.expires_at);
        let signature = hex::encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The key that lets the submitter of `first_submission` revise their answer to `invitation`.
    pub fn revision_key(&self, invitation: &str, first_submission: &str) -> String {
        hex::encode(self.mac(&revision_payload(invitation, first_submission)).finalize().into_bytes())
    }

    /// Whether `key` is [`Self::revision_key`], compared in constant time.
    pub fn is_revision_key(&self, invitation: &str, first_submission: &str, key: &str) -> bool {
        let Ok(key) = hex::decode(key) else { return false };
        !first_submission.is_empty()
            && self.mac(&revision_payload(invitation, first_submission)).verify_slice(&key).is_ok()
    }

    /// The claims of a genuine, unexpired link at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ServiceError> {
        let forged = || ServiceError::invalid_field("token", "is not a valid survey link");
        if token.len() > 300 {
            return Err(forged());
        }
        let (payload, signature) = token.rsplit_once('.').ok_or_else(forged)?;
        let signature = hex::decode(signature).map_err(|_| forged())?;
        // Constant-time comparison, so the signature cannot be guessed byte by byte.
        self.mac(payload).verify_slice(&signature).map_err(|_| forged())?;
        let mut parts = payload.split('.');
        let (Some(tenant), Some(invitation), Some(expires_at), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(forged());
        };
        let expires_at: i64 = expires_at.parse().map_err(|_| forged())?;
        if expires_at <= now {
            return Err(ServiceError::failed_precondition("this survey link has expired").with_field("token"));
        }
        Ok(Claims { tenant: tenant.to_owned(), invitation: invitation.to_owned(), expires_at })
    }
}

/// What a revision key signs. `:` never appears in a link's payload (tenant ids have none), so no
/// revision key is a link's signature.
fn revision_payload(invitation: &str, first_submission: &str) -> String {
    format!("revision:{invitation}:{first_submission}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims { tenant: "acme".into(), invitation: "inv-1".into(), expires_at: 2_000 }
    }

    #[test]
    fn a_revision_key_belongs_to_one_invitation_and_first_submission() {
        let signer = LinkSigner::new(b"secret");
        let key = signer.revision_key("inv-1", "click-1");
        assert!(signer.is_revision_key("inv-1", "click-1", &key));
        assert!(!signer.is_revision_key("inv-2", "click-1", &key));
        assert!(!signer.is_revision_key("inv-1", "click-2", &key));
        assert!(!signer.is_revision_key("inv-1", "", &signer.revision_key("inv-1", "")), "answers of old never revise");
        assert!(!signer.is_revision_key("inv-1", "click-1", "not hex"));
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let signer = LinkSigner::new(b"secret");
        let token = signer.sign(&claims());
        assert_eq!(signer.verify(&token, 1_999).unwrap(), claims());
        let expired = signer.verify(&token, 2_000).unwrap_err();
        assert_eq!(expired.kind, helpdesk_runtime::error::ErrorKind::FailedPrecondition);
    }

    #[test]
    fn forged_links_are_refused() {
        let signer = LinkSigner::new(b"secret");
        let token = signer.sign(&claims());
        let other_key = LinkSigner::new(b"other").sign(&claims());
        let longer_life = token.replace(".2000.", ".9999.");
        let other_tenant = token.replacen("acme", "evil", 1);
        for forged in [other_key.as_str(), &longer_life, &other_tenant, "", "a.b.c", "acme.inv.1.zz", &"x".repeat(400)]
        {
            let error = signer.verify(forged, 0).unwrap_err();
            assert_eq!(error.field_violations[0].field, "token", "{forged}");
        }
    }
}
