use helpdesk_runtime::{
    ServiceError,
    auth::{ApiKeySecret, Principal, Resolved, Role},
    db::Database,
    time::now_micros,
};
use rand::{Rng, distr::Alphanumeric};

use crate::tokens::{self, NewSigningKey, SigningAlgorithm, SigningKey};

/// A freshly issued key: the only moment its secret is known.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone)]
pub struct IdentityStore {
    db: Database,
    /// Clock skew allowed on a JWT's `exp` and `nbf`.
    leeway_seconds: u64,
}

impl IdentityStore {
    pub fn new(db: Database, leeway_seconds: u64) -> Self {
        Self { db, leeway_seconds }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Creates the tenant unless it exists; returns whether it was created.
    pub async fn ensure_tenant(&self, id: &str, name: &str) -> Result<bool, ServiceError> {
        validate_tenant_id(id)?;
        if name.trim().is_empty() {
            return Err(ServiceError::invalid_field("name", "must not be empty"));
        }
        let result =
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(name.trim())
                .bind(now_micros())
                .execute(self.db.writer())
                .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn tenant_exists(&self, id: &str) -> Result<bool, ServiceError> {
        let row = sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(id).fetch_optional(self.db.reader()).await?;
        Ok(row.is_some())
    }

    pub async fn create_api_key(&self, tenant_id: &str, name: &str, role: Role) -> Result<IssuedKey, ServiceError> {
        self.insert_api_key(tenant_id, name, role, ApiKeySecret::generate()).await
    }

    /// Stores a key whose secret the operator chose (the bootstrap key); a no-op if it exists.
    pub async fn import_api_key(
        &self,
        tenant_id: &str,
        name: &str,
        role: Role,
        token: &str,
    ) -> Result<(), ServiceError> {
        let key = ApiKeySecret::parse(token).ok_or_else(|| ServiceError::invalid_field("api_key", "malformed"))?;
        let hash = key.hash();
        match self.insert_api_key(tenant_id, name, role, key).await {
            Ok(_) => Ok(()),
            // The operator rotated the secret under the same id: the new one replaces the old.
            Err(error) if error.kind == helpdesk_runtime::ErrorKind::AlreadyExists => {
                let token_id = ApiKeySecret::parse(token).map(|key| key.id).unwrap_or_default();
                sqlx::query("UPDATE api_keys SET secret_hash = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(token_id)
                    .bind(hash)
                    .execute(self.db.writer())
                    .await?;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn insert_api_key(
        &self,
        tenant_id: &str,
        name: &str,
        role: Role,
        key: ApiKeySecret,
    ) -> Result<IssuedKey, ServiceError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ServiceError::invalid_field("name", "must be 1 to 200 characters"));
        }
        if role == Role::Customer {
            return Err(ServiceError::invalid_field("role", "customers authenticate with tokens, not api keys"));
        }
        if !self.tenant_exists(tenant_id).await? {
            return Err(ServiceError::not_found("tenant"));
        }
        let record = ApiKeyRecord {
            id: key.id.clone(),
            tenant_id: tenant_id.to_owned(),
            name: name.trim().to_owned(),
            role,
            created_at: now_micros(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (tenant_id, id, name, role, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.tenant_id)
        .bind(&record.id)
        .bind(&record.name)
        .bind(role.as_str())
        .bind(key.hash())
        .bind(record.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(IssuedKey { record, token: key.token() })
    }

    pub async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKeyRecord>, ServiceError> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, role, created_at, revoked_at FROM api_keys \
             WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter().map(ApiKeyRecord::try_from).collect()
    }

    pub async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> Result<ApiKeyRecord, ServiceError> {
        let row: ApiKeyRow = sqlx::query_as(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 \
             RETURNING id, tenant_id, name, role, created_at, revoked_at",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(now_micros())
        .fetch_optional(self.db.writer())
        .await?
        .ok_or_else(|| ServiceError::not_found("api key"))?;
        row.try_into()
    }

    /// The principal of a bearer credential: an API key, or a JWT signed by a tenant's key.
    pub async fn authenticate(&self, credential: &str) -> Result<Resolved, ServiceError> {
        if credential.starts_with("hdk_") {
            let key =
                ApiKeySecret::parse(credential).ok_or_else(|| ServiceError::unauthenticated("malformed api key"))?;
            let principal =
                self.resolve(&key).await?.ok_or_else(|| ServiceError::unauthenticated("unknown or revoked api key"))?;
            return Ok(Resolved { principal, valid_until: None });
        }
        if credential.starts_with("hds_") {
            return self.resolve_session(credential).await;
        }
        let (kid, algorithm) = tokens::key_id(credential)?;
        let key = self
            .signing_key(&kid)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("invalid token: unknown signing key"))?;
        tokens::verify(&key, credential, algorithm, now_micros(), self.leeway_seconds)
    }

    /// The principal of a live key whose secret matches, or `None`.
    pub async fn resolve(&self, key: &ApiKeySecret) -> Result<Option<Principal>, ServiceError> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT tenant_id, role, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(&key.id)
                .fetch_optional(self.db.reader())
                .await?;
        let Some((tenant_id, role, stored)) = row else { return Ok(None) };
        if !constant_time_eq(stored.as_bytes(), key.hash().as_bytes()) {
            return Ok(None);
        }
        Ok(Role::parse(&role).map(|role| Principal { tenant_id, subject: format!("apikey:{}", key.id), role }))
    }
}

impl IdentityStore {
    /// Adds a signing key for `tenant_id`; returns it and, for HS256, the secret it made.
    pub async fn create_signing_key(
        &self,
        tenant_id: &str,
        mut new: NewSigningKey,
    ) -> Result<(SigningKey, Option<String>), ServiceError> {
        new.validate()?;
        if !self.tenant_exists(tenant_id).await? {
            return Err(ServiceError::not_found("tenant"));
        }
        let random = |len| rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect::<String>();
        let secret = (new.algorithm == SigningAlgorithm::Hs256).then(|| random(48));
        let key = SigningKey {
            id: format!("sk_{}", random(16).to_lowercase()),
            tenant_id: tenant_id.to_owned(),
            name: new.name,
            algorithm: new.algorithm,
            secret: secret.clone().unwrap_or_default().into(),
            public_key_pem: new.public_key_pem,
            roles: new.roles,
            issuer: new.issuer,
            audience: new.audience,
            created_at: now_micros(),
            retires_at: None,
        };
        let roles: Vec<&str> = key.roles.iter().map(|role| role.as_str()).collect();
        sqlx::query(
            "INSERT INTO signing_keys (tenant_id, id, name, algorithm, secret, public_key_pem, roles, issuer, \
             audience, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.tenant_id)
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.algorithm.as_str())
        .bind(secrecy::ExposeSecret::expose_secret(&key.secret))
        .bind(&key.public_key_pem)
        .bind(roles.join(","))
        .bind(&key.issuer)
        .bind(&key.audience)
        .bind(key.created_at)
        .execute(self.db.writer())
        .await?;
        Ok((key, secret))
    }

    pub async fn list_signing_keys(&self, tenant_id: &str) -> Result<Vec<SigningKey>, ServiceError> {
        let rows: Vec<SigningKeyRow> = sqlx::query_as(&format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter().map(SigningKey::try_from).collect()
    }

    /// Retires the key at `at` (microseconds), or earlier if it was retiring sooner already.
    pub async fn retire_signing_key(&self, tenant_id: &str, id: &str, at: i64) -> Result<SigningKey, ServiceError> {
        let row: SigningKeyRow = sqlx::query_as(&format!(
            "UPDATE signing_keys SET retires_at = CASE WHEN retires_at IS NULL OR retires_at > $3 THEN $3 \
             ELSE retires_at END WHERE tenant_id = $1 AND id = $2 RETURNING {SIGNING_KEY_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(id)
        .bind(at)
        .fetch_optional(self.db.writer())
        .await?
        .ok_or_else(|| ServiceError::not_found("signing key"))?;
        row.try_into()
    }

    /// The key a token's `kid` names, whatever its tenant: the key decides the tenant.
    pub async fn signing_key(&self, id: &str) -> Result<Option<SigningKey>, ServiceError> {
        let row: Option<SigningKeyRow> =
            sqlx::query_as(&format!("SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.db.reader())
                .await?;
        row.map(SigningKey::try_from).transpose()
    }
}

const SIGNING_KEY_COLUMNS: &str =
    "tenant_id, id, name, algorithm, secret, public_key_pem, roles, issuer, audience, created_at, retires_at";

/// A `signing_keys` row: the algorithm and roles as the words they are stored as.
#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    algorithm: String,
    secret: String,
    public_key_pem: String,
    roles: String,
    issuer: String,
    audience: String,
    created_at: i64,
    retires_at: Option<i64>,
}

impl TryFrom<SigningKeyRow> for SigningKey {
    type Error = ServiceError;

    fn try_from(row: SigningKeyRow) -> Result<Self, ServiceError> {
        Ok(SigningKey {
            algorithm: SigningAlgorithm::parse(&row.algorithm)
                .ok_or_else(|| ServiceError::internal(&format!("stored algorithm {}", row.algorithm)))?,
            roles: row.roles.split(',').filter_map(Role::parse).collect(),
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            secret: row.secret.into(),
            public_key_pem: row.public_key_pem,
            issuer: row.issuer,
            audience: row.audience,
            created_at: row.created_at,
            retires_at: row.retires_at,
        })
    }
}

/// An `api_keys` row without its secret's hash.
#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    role: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = ServiceError;

    fn try_from(row: ApiKeyRow) -> Result<Self, ServiceError> {
        Ok(ApiKeyRecord {
            role: Role::parse(&row.role).ok_or_else(|| ServiceError::internal(&format!("stored role {}", row.role)))?,
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// Tenant ids appear in event subjects and URLs: keep them to a safe alphabet.
pub fn validate_tenant_id(id: &str) -> Result<(), ServiceError> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid_field("tenant_id", "1 to 64 lowercase letters, digits or dashes"))
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
