//! Authentication for every request. API keys (`hdk_<id>_<secret>`, stored hashed) and JWTs
//! (signed with a key that belongs to one tenant) are resolved by the identity service and cached
//! briefly; only the tokens services present to each other, signed with the shared service
//! secret, are verified in place. The resulting [`Principal`] travels in request extensions.

use std::{
    collections::HashMap,
    future::Future,
    net::IpAddr,
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

    /// A service acting on its own behalf, with a token signed by the service secret.
    pub fn is_service(&self) -> bool {
        self.subject.starts_with(SERVICE_SUBJECT_PREFIX)
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

/// Resolves the bearer credentials a process cannot check alone: API keys and tenants' JWTs,
/// whose keys live in the identity service (in process, or over gRPC).
pub trait CredentialResolver: Send + Sync {
    /// The principal of a valid credential. `Unauthenticated` (with the reason) for one that is
    /// unknown, revoked, expired or badly signed; any other error when the answer is not known.
    fn resolve<'a>(&'a self, credential: &'a str) -> BoxFuture<'a, Result<Resolved, ServiceError>>;
}

/// A credential's principal, and until when it may be trusted without asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub principal: Principal,
    /// Microseconds since the epoch: a JWT's expiry or its signing key's retirement.
    pub valid_until: Option<i64>,
}

#[derive(Deserialize)]
struct ServiceClaims {
    sub: String,
    tenant_id: String,
}

/// The `kid` of tokens signed with the service secret.
const SERVICE_KEY_ID: &str = "helpdesk-service";

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
            subject: format!("{SERVICE_SUBJECT_PREFIX}{name}"),
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
        let claims = serde_json::json!({ "sub": self.subject, "tenant_id": tenant, "exp": expires });
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

/// Subjects of service tokens start with this; no other credential can carry it.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";

/// The tenant a service's token names when it acts for no tenant in particular: resolving a
/// credential, calling a public service. No tenant can have this id.
pub const PLATFORM_TENANT: &str = "*";

const CACHE_LIMIT: usize = 10_000;

/// What the cache remembers of a credential: its principal, or why it was refused.
#[derive(Clone)]
struct Cached {
    outcome: Result<Principal, String>,
    until: Instant,
}

/// Turns an `Authorization` header into a [`Principal`].
pub struct Authenticator {
    /// Verifies service tokens, the only JWTs trusted without asking the identity service.
    service: Option<DecodingKey>,
    resolver: Arc<dyn CredentialResolver>,
    /// Resolved credentials, and refused ones, so that guessing cannot hammer the identity store.
    cache: Mutex<HashMap<String, Cached>>,
    cache_ttl: Duration,
    failures: FailureCounter,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, resolver: Arc<dyn CredentialResolver>) -> Self {
        Self {
            service: config
                .service_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            resolver,
            cache: Mutex::new(HashMap::new()),
            cache_ttl: Duration::from_secs(config.credential_cache_seconds),
            failures: FailureCounter::new(config.failed_attempts_per_minute),
        }
    }

    /// Authenticates a request from `client` (its address, when known). A client whose
    /// credentials failed too often in the last minute is refused before they are looked at;
    /// services' own tokens, checked first, are never refused so.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Principal, ServiceError> {
        let token = bearer(authorization);
        if let Ok(token) = token
            && !token.starts_with("hdk_")
            && let Ok(header) = jsonwebtoken::decode_header(token)
            && header.kid.as_deref() == Some(SERVICE_KEY_ID)
        {
            return self.verify_service_token(token, header.alg);
        }
        if let Some(client) = client
            && self.failures.exceeded(client)
        {
            return Err(ServiceError::new(
                crate::ErrorKind::TooManyRequests,
                "too many failed authentications from this address; try again in a minute",
            ));
        }
        let outcome = match token {
            Ok(token) => self.check(token).await,
            Err(error) => Err(error),
        };
        if let (Err(error), Some(client)) = (&outcome, client)
            && error.kind == crate::ErrorKind::Unauthenticated
        {
            self.failures.record(client);
        }
        outcome
    }

    /// An API key or a tenant's JWT, resolved by the identity service and cached.
    async fn check(&self, token: &str) -> Result<Principal, ServiceError> {
        if token.starts_with("hdk_") {
            if !ApiKeySecret::is_well_formed(token) {
                return Err(ServiceError::unauthenticated("malformed api key"));
            }
        } else if token.starts_with("hds_") {
            // A workspace session: identity checks its shape too.
            if token.len() > 100 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ServiceError::unauthenticated("malformed session"));
            }
        } else if jsonwebtoken::decode_header(token).is_err() {
            return Err(ServiceError::unauthenticated("invalid token: malformed"));
        }
        if let Some(known) = self.cached(token) {
            return known.map_err(ServiceError::unauthenticated);
        }
        match self.resolver.resolve(token).await {
            Ok(resolved) => {
                let until = resolved.valid_until.map_or(self.cache_ttl, |until| {
                    let left = until.saturating_sub(crate::time::now_micros()).max(0);
                    self.cache_ttl.min(Duration::from_micros(left as u64))
                });
                self.remember(token, Ok(resolved.principal.clone()), until);
                Ok(resolved.principal)
            }
            Err(error) if error.kind == crate::ErrorKind::Unauthenticated => {
                self.remember(token, Err(error.message.clone()), self.cache_ttl);
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Tokens one service presents to another: admin of the tenant they name.
    fn verify_service_token(&self, token: &str, algorithm: Algorithm) -> Result<Principal, ServiceError> {
        let invalid = |reason: &str| ServiceError::unauthenticated(format!("invalid token: {reason}"));
        let key =
            self.service.as_ref().filter(|_| algorithm == Algorithm::HS256).ok_or_else(|| invalid("signature"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("expired"),
                _ => invalid("signature"),
            })?
            .claims;
        if claims.tenant_id.is_empty() || !claims.sub.starts_with(SERVICE_SUBJECT_PREFIX) {
            return Err(invalid("claims"));
        }
        Ok(Principal { tenant_id: claims.tenant_id, subject: claims.sub, role: Role::Admin })
    }

    /// Forgets every resolved credential, so that a revocation takes effect at the next request.
    pub fn forget_credentials(&self) {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    fn cached(&self, token: &str) -> Option<Result<Principal, String>> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cached = cache.get(token)?;
        (Instant::now() < cached.until).then(|| cached.outcome.clone())
    }

    fn remember(&self, token: &str, outcome: Result<Principal, String>, ttl: Duration) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(token.to_owned(), Cached { outcome, until: Instant::now() + ttl });
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(authorization: Option<&str>) -> Result<&str, ServiceError> {
    let header = authorization.ok_or_else(|| ServiceError::unauthenticated("missing credentials"))?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ServiceError::unauthenticated("authorization must be `Bearer <token>`"))
}

/// Failed authentications per client address in the current minute.
struct FailureCounter {
    limit: u32,
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureCounter {
    const WINDOW: Duration = Duration::from_secs(60);

    fn new(limit: u32) -> Self {
        Self { limit, counts: Mutex::new(HashMap::new()) }
    }

    fn exceeded(&self, client: IpAddr) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.get(&client).is_some_and(|(since, count)| since.elapsed() < Self::WINDOW && *count >= self.limit)
    }

    fn record(&self, client: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.len() >= CACHE_LIMIT {
            counts.retain(|_, (since, _)| since.elapsed() < Self::WINDOW);
        }
        let entry = counts.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Self::WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows one API key; refuses everything else.
    struct OneKey(String);

    impl CredentialResolver for OneKey {
        fn resolve<'a>(&'a self, credential: &'a str) -> BoxFuture<'a, Result<Resolved, ServiceError>> {
            Box::pin(async move {
                if credential == self.0 {
                    let principal =
                        Principal { tenant_id: "demo".into(), subject: "apikey:x".into(), role: Role::Agent };
                    Ok(Resolved { principal, valid_until: None })
                } else {
                    Err(ServiceError::unauthenticated("unknown or revoked api key"))
                }
            })
        }
    }

    fn authenticator(env: &[(&str, &str)], key: &str) -> Authenticator {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let config = crate::config::Config::load_from(None, env).expect("valid config");
        Authenticator::new(&config.auth, Arc::new(OneKey(key.to_owned())))
    }

    #[tokio::test]
    async fn service_tokens_are_verified_in_place_and_only_with_the_service_secret() {
        let secret = "0123456789abcdef0123456789abcdef";
        let authenticator = authenticator(&[("HELPDESK_AUTH__SERVICE_SECRET", secret)], "none");
        let tokens = ServiceTokens::new("routing", &secret.to_owned().into());
        let principal = authenticator.authenticate(Some(&tokens.bearer("demo").expect("token")), None).await;
        let principal = principal.expect("service tokens pass");
        assert_eq!((principal.subject.as_str(), principal.role), ("service:routing", Role::Admin));
        let forged = ServiceTokens::new("routing", &"another-secret-another-secret-another".to_owned().into());
        let refused = authenticator.authenticate(Some(&forged.bearer("demo").expect("token")), None).await;
        assert!(refused.expect_err("another secret").message.contains("signature"));
    }

    #[tokio::test]
    async fn a_client_whose_credentials_keep_failing_is_refused_for_a_minute() {
        let key = ApiKeySecret::generate().token();
        let authenticator = authenticator(
            &[
                ("HELPDESK_AUTH__FAILED_ATTEMPTS_PER_MINUTE", "3"),
                ("HELPDESK_AUTH__SERVICE_SECRET", "0123456789abcdef0123456789abcdef"),
            ],
            &key,
        );
        let (guesser, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            let guess = format!("Bearer {}", ApiKeySecret::generate().token());
            let error = authenticator.authenticate(Some(&guess), Some(guesser)).await.expect_err("unknown key");
            assert_eq!(error.kind, crate::ErrorKind::Unauthenticated);
        }
        let blocked = authenticator.authenticate(Some(&format!("Bearer {key}")), Some(guesser)).await;
        assert_eq!(blocked.expect_err("over the limit").kind, crate::ErrorKind::TooManyRequests);
        // Services behind that address keep working.
        let tokens = ServiceTokens::new("gateway", &"0123456789abcdef0123456789abcdef".to_owned().into());
        let service = authenticator.authenticate(Some(&tokens.bearer("demo").expect("token")), Some(guesser)).await;
        assert!(service.expect("service tokens are never locked out").is_service());
        let fine = authenticator.authenticate(Some(&format!("Bearer {key}")), Some(other)).await;
        assert_eq!(fine.expect("another client is not affected").role, Role::Agent);
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
