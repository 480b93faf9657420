//! Staff accounts and their sessions. A password is kept only as an argon2id hash; a wrong one,
//! five times in a row, locks the account for 15 minutes. A session is a bearer credential
//! (`hds_<id>_<secret>`) stored as the SHA-256 of its secret, valid for 12 hours unless it is
//! ended sooner; it authenticates as the account, whose id is the agent's id in routing.

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use helpdesk_runtime::{
    ErrorKind, ServiceError,
    auth::{Principal, Resolved, Role},
    time::now_micros,
};
use rand::{Rng, distr::Alphanumeric};
use sha2::{Digest, Sha256};

use crate::IdentityStore;

/// How long a session lasts: a working day with room to spare.
const SESSION_MICROS: i64 = 12 * 3600 * 1_000_000;
/// Wrong passwords in a row before the account is locked.
const MAX_FAILURES: i64 = 5;
const LOCKOUT_MICROS: i64 = 15 * 60 * 1_000_000;

/// An account as stored, without its password.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub tenant_id: String,
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub language: String,
    pub time_zone: String,
    pub disabled: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

/// What a new or changed account says.
pub struct AccountChange {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub language: String,
    pub time_zone: String,
    pub disabled: bool,
    /// Empty: keep the current password.
    pub password: String,
}

/// A session just opened: the only moment its credential is known.
pub struct OpenedSession {
    pub account: Account,
    pub credential: String,
    pub expires_at: i64,
}

const SELECT_ACCOUNT: &str = "SELECT tenant_id, id, email, display_name, role, language, time_zone, disabled, \
    locked_until, created_at FROM accounts";

impl AccountChange {
    fn validate(&mut self) -> Result<(), ServiceError> {
        self.id = self.id.trim().to_owned();
        let id_ok = (1..=64).contains(&self.id.len())
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ServiceError::invalid_field("account.id", "1 to 64 letters, digits, - or _"));
        }
        self.email = self.email.trim().to_lowercase();
        let email_ok = self.email.len() <= 254
            && self.email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !email_ok {
            return Err(ServiceError::invalid_field("account.email", "must be an email address"));
        }
        self.display_name = self.display_name.trim().to_owned();
        if self.display_name.is_empty() || self.display_name.chars().count() > 100 {
            return Err(ServiceError::invalid_field("account.display_name", "1 to 100 characters"));
        }
        if self.role == Role::Customer {
            return Err(ServiceError::invalid_field("account.role", "must be agent or admin"));
        }
        self.language = match self.language.trim() {
            "" => "en".to_owned(),
            language @ ("ko" | "en") => language.to_owned(),
            _ => return Err(ServiceError::invalid_field("account.language", "must be ko or en")),
        };
        self.time_zone = match self.time_zone.trim() {
            "" => "UTC".to_owned(),
            zone if zone.parse::<chrono_tz::Tz>().is_ok() => zone.to_owned(),
            _ => return Err(ServiceError::invalid_field("account.time_zone", "must be an IANA time zone")),
        };
        if !self.password.is_empty() && !(10..=200).contains(&self.password.chars().count()) {
            return Err(ServiceError::invalid_field("password", "10 to 200 characters"));
        }
        Ok(())
    }
}

fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ServiceError::internal(&error))
}

/// Whether `password` matches `stored`; a stored value that is no hash matches nothing.
fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash of no one's password, checked when the account does not exist, so that the answer
/// takes as long as for one that does.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

/// A new session's id and secret.
fn new_session_secret() -> (String, String) {
    let mut rng = rand::rng();
    let id: String = (&mut rng).sample_iter(Alphanumeric).take(16).map(char::from).collect();
    (id, rng.sample_iter(Alphanumeric).take(43).map(char::from).collect())
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `hds_<id>_<secret>` into its id and secret.
fn parse_session(credential: &str) -> Option<(&str, &str)> {
    let (id, secret) = credential.strip_prefix("hds_")?.split_once('_')?;
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    (id.len() == 16 && secret.len() >= 32 && alnum(id) && alnum(secret)).then_some((id, secret))
}

impl IdentityStore {
    pub async fn upsert_account(&self, tenant_id: &str, mut change: AccountChange) -> Result<Account, ServiceError> {
        change.validate()?;
        if !self.tenant_exists(tenant_id).await? {
            return Err(ServiceError::not_found("tenant"));
        }
        let password_hash = match change.password.is_empty() {
            true => None,
            false => Some(hash_password(&change.password)?),
        };
        let now = now_micros();
        let mut tx = self.database().writer().begin().await?;
        let exists = sqlx::query("SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(&change.id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let taken: Option<(String,)> = sqlx::query_as("SELECT id FROM accounts WHERE tenant_id = $1 AND email = $2")
            .bind(tenant_id)
            .bind(&change.email)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some_and(|(id,)| id != change.id) {
            return Err(ServiceError::new(ErrorKind::AlreadyExists, "another account has this email")
                .with_field("account.email"));
        }
        if exists {
            sqlx::query(
                "UPDATE accounts SET email = $3, display_name = $4, role = $5, language = $6, time_zone = $7, \
                 disabled = $8, password_hash = COALESCE($9, password_hash), updated_at = $10 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(&change.id)
            .bind(&change.email)
            .bind(&change.display_name)
            .bind(change.role.as_str())
            .bind(&change.language)
            .bind(&change.time_zone)
            .bind(i64::from(change.disabled))
            .bind(&password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        } else {
            let password_hash = password_hash
                .ok_or_else(|| ServiceError::invalid_field("password", "a new account needs a password"))?;
            sqlx::query(
                "INSERT INTO accounts (tenant_id, id, email, display_name, role, language, time_zone, disabled, \
                 password_hash, failed_attempts, locked_until, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, NULL, $10, $10)",
            )
            .bind(tenant_id)
            .bind(&change.id)
            .bind(&change.email)
            .bind(&change.display_name)
            .bind(change.role.as_str())
            .bind(&change.language)
            .bind(&change.time_zone)
            .bind(i64::from(change.disabled))
            .bind(&password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let account = account_by(&mut tx, tenant_id, "id", &change.id)
            .await?
            .ok_or_else(|| ServiceError::internal(&"an account just written is not there"))?;
        tx.commit().await?;
        Ok(account)
    }

    pub async fn list_accounts(&self, tenant_id: &str) -> Result<Vec<Account>, ServiceError> {
        Ok(sqlx::query_as(&format!("{SELECT_ACCOUNT} WHERE tenant_id = $1 ORDER BY display_name, id"))
            .bind(tenant_id)
            .fetch_all(self.database().reader())
            .await?)
    }

    /// Checks the password and opens a session. Every refusal reads the same, so that nobody
    /// learns which accounts exist; a locked account says so (its owner needs to know).
    pub async fn sign_in(&self, tenant_id: &str, email: &str, password: &str) -> Result<OpenedSession, ServiceError> {
        let refused = || ServiceError::unauthenticated("wrong email or password");
        let email = email.trim().to_lowercase();
        let now = now_micros();
        let mut conn = self.database().writer().acquire().await?;
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT id, password_hash, failed_attempts FROM accounts WHERE tenant_id = $1 AND email = $2",
        )
        .bind(tenant_id)
        .bind(&email)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((id, stored, failures)) = row else {
            verify_password(password, decoy_hash());
            return Err(refused());
        };
        let account = account_by(&mut conn, tenant_id, "id", &id).await?.ok_or_else(refused)?;
        if account.locked_until.is_some_and(|until| until > now) {
            return Err(ServiceError::unauthenticated("too many wrong passwords: the account is locked for a while"));
        }
        if !verify_password(password, &stored) {
            let failures = failures + 1;
            let locked_until = (failures >= MAX_FAILURES).then_some(now + LOCKOUT_MICROS);
            sqlx::query("UPDATE accounts SET failed_attempts = $3, locked_until = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(&id)
                .bind(if locked_until.is_some() { 0 } else { failures })
                .bind(locked_until)
                .execute(&mut *conn)
                .await?;
            return Err(refused());
        }
        if account.disabled != 0 {
            return Err(refused());
        }
        let (session_id, secret) = new_session_secret();
        let expires_at = now + SESSION_MICROS;
        sqlx::query("UPDATE accounts SET failed_attempts = 0, locked_until = NULL WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, account_id, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session_id)
        .bind(tenant_id)
        .bind(&id)
        .bind(secret_hash(&secret))
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(OpenedSession { account, credential: format!("hds_{session_id}_{secret}"), expires_at })
    }

    /// Ends the session; returns its id (for the revocation announcement), or `None` when the
    /// credential names no session.
    pub async fn sign_out(&self, credential: &str) -> Result<Option<String>, ServiceError> {
        let Some((id, secret)) = parse_session(credential) else { return Ok(None) };
        let ended =
            sqlx::query("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND secret_hash = $2")
                .bind(id)
                .bind(secret_hash(secret))
                .bind(now_micros())
                .execute(self.database().writer())
                .await?;
        Ok((ended.rows_affected() == 1).then(|| id.to_owned()))
    }

    /// The principal of a live session of an enabled account.
    pub(crate) async fn resolve_session(&self, credential: &str) -> Result<Resolved, ServiceError> {
        let refused = || ServiceError::unauthenticated("unknown, ended or expired session");
        let (id, secret) = parse_session(credential).ok_or_else(refused)?;
        let row: Option<(String, String, String, i64, String, i64)> = sqlx::query_as(
            "SELECT s.tenant_id, s.account_id, s.secret_hash, s.expires_at, a.role, a.disabled \
             FROM sessions s JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id \
             WHERE s.id = $1 AND s.revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.database().reader())
        .await?;
        let (tenant_id, subject, stored, expires_at, role, disabled) = row.ok_or_else(refused)?;
        let live = crate::store::constant_time_eq(stored.as_bytes(), secret_hash(secret).as_bytes())
            && expires_at > now_micros()
            && disabled == 0;
        let role = Role::parse(&role).filter(|_| live).ok_or_else(refused)?;
        Ok(Resolved { principal: Principal { tenant_id, subject, role }, valid_until: Some(expires_at) })
    }
}

async fn account_by(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    column: &str,
    value: &str,
) -> Result<Option<Account>, ServiceError> {
    Ok(sqlx::query_as(&format!("{SELECT_ACCOUNT} WHERE tenant_id = $1 AND {column} = $2"))
        .bind(tenant_id)
        .bind(value)
        .fetch_optional(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_argon2id_hash_only() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn only_well_formed_session_credentials_are_looked_up() {
        assert!(parse_session(&format!("hds_{}_{}", "a".repeat(16), "b".repeat(43))).is_some());
        for bad in ["hdk_aaaaaaaaaaaaaaaa_bbbb", "hds_short_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "hds_", ""] {
            assert!(parse_session(bad).is_none(), "{bad}");
        }
    }
}
