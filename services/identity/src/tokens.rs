//! A tenant's JWTs: the keys that sign them and the checks a token must pass. A token is trusted
//! only for the tenant of the key its `kid` names, only for a role that key lists (customer
//! unless an admin listed more), and only with the `iss` and `aud` the key requires.

use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, Resolved, Role},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How a signing key verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Hs256,
    Rs256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

/// A signing key as stored, with what verification needs.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub algorithm: SigningAlgorithm,
    /// HS256 only; never printed.
    pub secret: SecretString,
    /// RS256 only.
    pub public_key_pem: String,
    pub roles: Vec<Role>,
    pub issuer: String,
    pub audience: String,
    pub created_at: i64,
    pub retires_at: Option<i64>,
}

/// What an admin asks for when adding a key.
pub struct NewSigningKey {
    pub name: String,
    pub algorithm: SigningAlgorithm,
    pub roles: Vec<Role>,
    pub issuer: String,
    pub audience: String,
    pub public_key_pem: String,
}

impl NewSigningKey {
    pub fn validate(&mut self) -> Result<(), ServiceError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ServiceError::invalid_field("name", "must be 1 to 200 characters"));
        }
        self.name = self.name.trim().to_owned();
        for (field, value) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            if value.len() > 200 || value.chars().any(char::is_control) {
                return Err(ServiceError::invalid_field(field, "at most 200 characters, no control characters"));
            }
        }
        if self.roles.is_empty() {
            self.roles.push(Role::Customer);
        }
        self.roles.sort_by_key(|role| role.as_str());
        self.roles.dedup();
        match self.algorithm {
            SigningAlgorithm::Hs256 if !self.public_key_pem.is_empty() => {
                Err(ServiceError::invalid_field("public_key_pem", "only for RS256; HS256 secrets are made here"))
            }
            SigningAlgorithm::Hs256 => Ok(()),
            SigningAlgorithm::Rs256 => {
                if self.public_key_pem.len() > 16 * 1024
                    || DecodingKey::from_rsa_pem(self.public_key_pem.as_bytes()).is_err()
                {
                    return Err(ServiceError::invalid_field("public_key_pem", "must be a PEM-encoded RSA public key"));
                }
                Ok(())
            }
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Optional: a token names its key's tenant or none.
    #[serde(default)]
    tenant_id: Option<String>,
    /// Optional: customer when absent.
    #[serde(default)]
    role: Option<String>,
    /// Required, but checked by the JWT library, which names it when it is missing.
    #[serde(default)]
    exp: i64,
}

/// The `kid` a token names, if it is a well-formed JWT at all.
pub fn key_id(token: &str) -> Result<(String, Algorithm), ServiceError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
    let kid = header.kid.filter(|kid| !kid.is_empty()).ok_or_else(|| invalid("no kid naming its signing key"))?;
    Ok((kid, header.alg))
}

/// Checks `token` against `key` at `now` (microseconds), allowing `leeway_seconds` of clock skew.
pub fn verify(
    key: &SigningKey,
    token: &str,
    algorithm: Algorithm,
    now: i64,
    leeway_seconds: u64,
) -> Result<Resolved, ServiceError> {
    if key.retires_at.is_some_and(|retires| retires <= now) {
        return Err(invalid("signing key retired"));
    }
    if algorithm != key.algorithm.jwt() {
        return Err(invalid("algorithm does not match its signing key"));
    }
    let decoding = match key.algorithm {
        SigningAlgorithm::Hs256 => DecodingKey::from_secret(key.secret.expose_secret().as_bytes()),
        SigningAlgorithm::Rs256 => {
            DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()).map_err(|_| invalid("signing key unusable"))?
        }
    };
    let mut validation = Validation::new(key.algorithm.jwt());
    validation.leeway = leeway_seconds;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if key.issuer.is_empty() {
        validation.iss = None;
    } else {
        validation.set_issuer(&[&key.issuer]);
        required.push("iss");
    }
    if key.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&[&key.audience]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation)
        .map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => invalid("expired"),
                ErrorKind::ImmatureSignature => invalid("not yet valid"),
                ErrorKind::InvalidSignature => invalid("signature"),
                ErrorKind::InvalidAudience => invalid("audience"),
                ErrorKind::InvalidIssuer => invalid("issuer"),
                ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("missing {claim}")),
                _ => invalid("claims"),
            }
        })?
        .claims;
    if claims.tenant_id.as_ref().is_some_and(|tenant| *tenant != key.tenant_id) {
        return Err(invalid("tenant_id is not its signing key's tenant"));
    }
    let role = match claims.role.as_deref() {
        None => Role::Customer,
        Some(role) => Role::parse(role).ok_or_else(|| invalid("unknown role"))?,
    };
    if !key.roles.contains(&role) {
        return Err(invalid("role not allowed by its signing key"));
    }
    if claims.sub.trim().is_empty() || claims.sub.len() > 200 {
        return Err(invalid("missing sub"));
    }
    if claims.sub.starts_with(helpdesk_runtime::auth::SERVICE_SUBJECT_PREFIX) || claims.sub.starts_with("apikey:") {
        return Err(invalid("sub names a service or an api key"));
    }
    let expires = claims.exp.saturating_add(leeway_seconds as i64).saturating_mul(1_000_000);
    Ok(Resolved {
        principal: Principal { tenant_id: key.tenant_id.clone(), subject: claims.sub, role },
        valid_until: Some(key.retires_at.map_or(expires, |retires| retires.min(expires))),
    })
}

fn invalid(reason: &str) -> ServiceError {
    ServiceError::unauthenticated(format!("invalid token: {reason}"))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789";

    fn key(roles: &[Role]) -> SigningKey {
        SigningKey {
            id: "sk_widget".into(),
            tenant_id: "demo".into(),
            name: "widget".into(),
            algorithm: SigningAlgorithm::Hs256,
            secret: SECRET.to_owned().into(),
            public_key_pem: String::new(),
            roles: roles.to_vec(),
            issuer: String::new(),
            audience: String::new(),
            created_at: 0,
            retires_at: None,
        }
    }

    fn sign(claims: serde_json::Value) -> String {
        let header = Header { kid: Some("sk_widget".into()), ..Header::default() };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("encodes")
    }

    fn check(key: &SigningKey, claims: serde_json::Value) -> Result<Resolved, ServiceError> {
        verify(key, &sign(claims), Algorithm::HS256, now() * 1_000_000, 30)
    }

    /// Seconds since the epoch: the JWT library checks `exp` against the real clock.
    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_customer_key_cannot_mint_staff_or_another_tenant() {
        let widget = key(&[Role::Customer]);
        let resolved = check(&widget, serde_json::json!({ "sub": "c-1", "exp": now() + 60 })).expect("customer");
        assert_eq!(
            resolved.principal,
            Principal { tenant_id: "demo".into(), subject: "c-1".into(), role: Role::Customer }
        );
        let admin =
            check(&widget, serde_json::json!({ "sub": "x", "tenant_id": "demo", "role": "admin", "exp": now() + 60 }));
        assert!(admin.expect_err("admin refused").message.contains("role not allowed"));
        let elsewhere = check(&widget, serde_json::json!({ "sub": "x", "tenant_id": "acme", "exp": now() + 60 }));
        assert!(elsewhere.expect_err("other tenant refused").message.contains("tenant_id"));
        let staff = key(&[Role::Customer, Role::Agent]);
        let agent = check(&staff, serde_json::json!({ "sub": "a-1", "role": "agent", "exp": now() + 60 }));
        assert_eq!(agent.expect("listed role").principal.role, Role::Agent);
    }

    #[test]
    fn expiry_is_required_and_skew_is_bounded() {
        let widget = key(&[Role::Customer]);
        let no_exp = check(&widget, serde_json::json!({ "sub": "c-1" })).expect_err("no exp");
        assert!(no_exp.message.contains("exp"), "{no_exp}");
        assert!(check(&widget, serde_json::json!({ "sub": "c-1", "exp": now() - 20 })).is_ok(), "within the leeway");
        let late = check(&widget, serde_json::json!({ "sub": "c-1", "exp": now() - 31 }));
        assert!(late.expect_err("past the leeway").message.contains("expired"));
        let early = check(&widget, serde_json::json!({ "sub": "c-1", "exp": now() + 600, "nbf": now() + 120 }));
        assert!(early.expect_err("not yet").message.contains("not yet valid"));
    }

    #[test]
    fn a_configured_issuer_and_audience_must_be_carried() {
        let mut strict = key(&[Role::Customer]);
        strict.issuer = "https://shop.example".into();
        strict.audience = "helpdesk".into();
        let bare = check(&strict, serde_json::json!({ "sub": "c-1", "exp": now() + 60 }));
        assert!(bare.expect_err("iss required").message.contains("missing"));
        let wrong = check(
            &strict,
            serde_json::json!({ "sub": "c-1", "exp": now() + 60, "iss": "https://evil.example", "aud": "helpdesk" }),
        );
        assert!(wrong.expect_err("wrong issuer").message.contains("issuer"));
        let right = check(
            &strict,
            serde_json::json!({ "sub": "c-1", "exp": now() + 60, "iss": "https://shop.example", "aud": "helpdesk" }),
        );
        assert!(right.is_ok());
    }

    #[test]
    fn a_retired_key_verifies_nothing_and_bounds_what_it_verified() {
        let mut rotating = key(&[Role::Customer]);
        rotating.retires_at = Some((now() + 10) * 1_000_000);
        let resolved =
            check(&rotating, serde_json::json!({ "sub": "c-1", "exp": now() + 3600 })).expect("in the overlap");
        assert_eq!(resolved.valid_until, Some((now() + 10) * 1_000_000));
        rotating.retires_at = Some(now() * 1_000_000);
        let retired = check(&rotating, serde_json::json!({ "sub": "c-1", "exp": now() + 3600 }));
        assert!(retired.expect_err("retired").message.contains("retired"));
    }

    #[test]
    fn tokens_cannot_pose_as_services_or_switch_algorithms() {
        let widget = key(&[Role::Customer]);
        let service = check(&widget, serde_json::json!({ "sub": "service:routing", "exp": now() + 60 }));
        assert!(service.is_err());
        let token = sign(serde_json::json!({ "sub": "c-1", "exp": now() + 60 }));
        assert!(verify(&widget, &token, Algorithm::RS256, now() * 1_000_000, 30).is_err());
    }
}
