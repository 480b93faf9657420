//! Authentication for every request: API keys (`hdk_<id>_<secret>`, stored hashed, resolved by the
//! identity service and cached briefly) and JWT bearer tokens (HS256 secret or RS256 public keys,
//! verified locally). The resulting [`Principal`] travels in request extensions.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use helpdesk_proto::common::v1 as proto;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::{Rng, distr::Alphanumeric};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{config::AuthConfig, error::ServiceError};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "customer" => Some(Self::Customer),
            "agent" => Some(Self::Agent),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::Admin => "admin",
        }
    }

    pub fn to_proto(self) -> proto::Role {
        match self {
            Self::Customer => proto::Role::Customer,
            Self::Agent => proto::Role::Agent,
            Self::Admin => proto::Role::Admin,
        }
    }

    pub fn from_proto(role: proto::Role) -> Option<Self> {
        match role {
            proto::Role::Customer => Some(Self::Customer),
            proto::Role::Agent => Some(Self::Agent),
            proto::Role::Admin => Some(Self::Admin),
            proto::Role::Unspecified => None,
        }
    }
}

/// The authenticated caller: always scoped to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub subject: String,
    pub role: Role,
}

impl Principal {
    pub fn is_customer(&self) -> bool {
        self.role == Role::Customer
    }

    pub fn require_staff(&self) -> Result<(), ServiceError> {
        if self.is_customer() {
            return Err(ServiceError::permission_denied("agents and admins only"));
        }
        Ok(())
    }

    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.role != Role::Admin {
            return Err(ServiceError::permission_denied("admins only"));
        }
        Ok(())
    }

    pub fn to_proto(&self) -> proto::Principal {
        proto::Principal {
            tenant_id: self.tenant_id.clone(),
            subject: self.subject.clone(),
            role: self.role.to_proto().into(),
        }
    }

    pub fn from_proto(principal: proto::Principal) -> Option<Self> {
        let role = Role::from_proto(principal.role())?;
        (!principal.tenant_id.is_empty()).then_some(Self {
            tenant_id: principal.tenant_id,
            subject: principal.subject,
            role,
        })
    }
}

/// The principal of a gRPC request, placed there by the authentication layer.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("missing credentials"))
}

/// An API key as handed to a client: `hdk_<id>_<secret>`. Only the SHA-256 of the secret is
/// stored; the secret has 190 bits of entropy, so a fast hash is enough.
pub struct ApiKeySecret {
    pub id: String,
    pub secret: String,
}

impl ApiKeySecret {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let id: String = (&mut rng).sample_iter(Alphanumeric).take(12).map(char::from).collect();
        let secret: String = rng.sample_iter(Alphanumeric).take(32).map(char::from).collect();
        Self { id: id.to_lowercase(), secret }
    }

    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix("hdk_")?;
        let (id, secret) = rest.split_once('_')?;
        let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        let well_formed = (8..=32).contains(&id.len()) && secret.len() >= 32 && alnum(id) && alnum(secret);
        well_formed.then(|| Self { id: id.to_owned(), secret: secret.to_owned() })
    }

    pub fn is_well_formed(token: &str) -> bool {
        Self::parse(token).is_some()
    }

    pub fn token(&self) -> String {
        format!("hdk_{}_{}", self.id, self.secret)
    }

    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

/// Looks up API keys: in process from the identity store, or over gRPC from the identity service.
pub trait ApiKeyResolver: Send + Sync {
    /// `Ok(None)` for an unknown or revoked key.
    fn resolve<'a>(&'a self, key: &'a ApiKeySecret) -> BoxFuture<'a, Result<Option<Principal>, ServiceError>>;
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    tenant_id: String,
    role: String,
}

/// The `kid` of tokens signed with the service secret.
const SERVICE_KEY_ID: &str = "helpdesk-service";

struct JwtVerifier {
    roles: Vec<Role>,
    hs256: Option<DecodingKey>,
    service: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    fn from_config(config: &AuthConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let hs256 =
            config.jwt_hs256_secret.as_ref().map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes()));
        let rs256 = config
            .jwt_rs256_public_keys
            .iter()
            .map(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            roles: config.jwt_roles.iter().filter_map(|role| Role::parse(role)).collect(),
            service: config
                .service_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            hs256,
            rs256,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    fn verify(&self, token: &str) -> Result<Principal, ServiceError> {
        let invalid = |reason: &str| ServiceError::unauthenticated(format!("invalid token: {reason}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let service = header.kid.as_deref() == Some(SERVICE_KEY_ID);
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 if service => self.service.iter().collect(),
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            _ => return Err(invalid("unsupported algorithm")),
        };
        if keys.is_empty() {
            return Err(invalid("no key configured for its algorithm"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let mut last_error = invalid("signature");
        for key in keys {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    let claims = data.claims;
                    let role = Role::parse(&claims.role).ok_or_else(|| invalid("unknown role"))?;
                    if !service && !self.roles.contains(&role) {
                        return Err(invalid("role not allowed in tokens"));
                    }
                    if claims.tenant_id.is_empty() {
                        return Err(invalid("missing tenant_id"));
                    }
                    if claims.sub.trim().is_empty() {
                        return Err(invalid("missing sub"));
                    }
                    return Ok(Principal { tenant_id: claims.tenant_id, subject: claims.sub, role });
                }
                Err(error) => {
                    last_error = match error.kind() {
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("expired"),
                        jsonwebtoken::errors::ErrorKind::InvalidSignature => invalid("signature"),
                        jsonwebtoken::errors::ErrorKind::InvalidAudience => invalid("audience"),
                        jsonwebtoken::errors::ErrorKind::InvalidIssuer => invalid("issuer"),
                        _ => invalid("claims"),
                    }
                }
            }
        }
        Err(last_error)
    }
}

/// Mints the tokens a service presents to another on its own behalf, one per tenant, signed with
/// the shared service secret and reused until shortly before they expire.
pub struct ServiceTokens {
    subject: String,
    key: EncodingKey,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl ServiceTokens {
    const LIFETIME: Duration = Duration::from_secs(600);

    /// Tokens naming `service:<name>` as an admin of the tenant they are minted for.
    pub fn new(name: &str, secret: &secrecy::SecretString) -> Self {
        Self {
            subject: format!("service:{name}"),
            key: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The `Authorization` header value for a call within `tenant`.
    pub fn bearer(&self, tenant: &str) -> Result<String, ServiceError> {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, minted)) = cache.get(tenant)
            && minted.elapsed() < Self::LIFETIME / 2
        {
            return Ok(token.clone());
        }
        let expires = chrono::Utc::now().timestamp() + Self::LIFETIME.as_secs() as i64;
        let claims = serde_json::json!({ "sub": self.subject, "tenant_id": tenant, "role": "admin", "exp": expires });
        let header = Header { kid: Some(SERVICE_KEY_ID.to_owned()), ..Header::default() };
        let token = format!(
            "Bearer {}",
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|error| ServiceError::internal(&error))?
        );
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(tenant.to_owned(), (token.clone(), Instant::now()));
        Ok(token)
    }
}

const CACHE_LIMIT: usize = 10_000;

/// Turns an `Authorization` header into a [`Principal`].
pub struct Authenticator {
    jwt: JwtVerifier,
    api_keys: Arc<dyn ApiKeyResolver>,
    /// Resolved keys, and unknown ones (`None`) so that guessing cannot hammer the key store.
    cache: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
    cache_ttl: Duration,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, api_keys: Arc<dyn ApiKeyResolver>) -> Result<Self, ServiceError> {
        let jwt = JwtVerifier::from_config(config)
            .map_err(|error| ServiceError::invalid_field("auth.jwt_rs256_public_keys", error.to_string()))?;
        Ok(Self {
            jwt,
            api_keys,
            cache: Mutex::new(HashMap::new()),
            cache_ttl: Duration::from_secs(config.api_key_cache_seconds),
        })
    }

    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ServiceError> {
        let header = authorization.ok_or_else(|| ServiceError::unauthenticated("missing credentials"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ServiceError::unauthenticated("authorization must be `Bearer <token>`"))?;
        if !token.starts_with("hdk_") {
            return self.jwt.verify(token);
        }
        let key = ApiKeySecret::parse(token).ok_or_else(|| ServiceError::unauthenticated("malformed api key"))?;
        let principal = match self.cached(token) {
            Some(known) => known,
            None => {
                let resolved = self.api_keys.resolve(&key).await?;
                self.remember(token, &resolved);
                resolved
            }
        };
        principal.ok_or_else(|| ServiceError::unauthenticated("unknown or revoked api key"))
    }

    fn cached(&self, token: &str) -> Option<Option<Principal>> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (principal, at) = cache.get(token)?;
        (at.elapsed() < self.cache_ttl).then(|| principal.clone())
    }

    fn remember(&self, token: &str, principal: &Option<Principal>) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(token.to_owned(), (principal.clone(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoKeys;

    impl ApiKeyResolver for NoKeys {
        fn resolve<'a>(&'a self, _: &'a ApiKeySecret) -> BoxFuture<'a, Result<Option<Principal>, ServiceError>> {
            Box::pin(async { Ok(None) })
        }
    }

    fn token(role: &str) -> String {
        let claims = serde_json::json!({ "sub": "c-1", "tenant_id": "demo", "role": role, "exp": 4_102_444_800u64 });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("token encodes")
    }

    #[tokio::test]
    async fn tokens_may_carry_only_the_configured_roles() {
        let env = [
            ("HELPDESK_AUTH__JWT_HS256_SECRET".to_owned(), "0123456789abcdef0123456789abcdef".to_owned()),
            ("HELPDESK_AUTH__JWT_ROLES".to_owned(), "customer".to_owned()),
        ];
        let config = crate::config::Config::load_from(None, env).expect("valid config");
        let authenticator = Authenticator::new(&config.auth, Arc::new(NoKeys)).expect("authenticator");
        let customer = authenticator.authenticate(Some(&format!("Bearer {}", token("customer")))).await;
        assert_eq!(customer.expect("customer tokens pass").role, Role::Customer);
        let admin = authenticator.authenticate(Some(&format!("Bearer {}", token("admin")))).await;
        assert!(admin.expect_err("admin tokens are refused").message.contains("role not allowed"));
    }

    #[test]
    fn generated_api_keys_parse_back_and_hash_stably() {
        let key = ApiKeySecret::generate();
        let parsed = ApiKeySecret::parse(&key.token()).expect("generated keys are well formed");
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.hash(), key.hash());
        assert!(ApiKeySecret::parse("hdk_short_x").is_none());
        assert!(ApiKeySecret::parse("Bearer something").is_none());
    }
}
