//! Attachments' contents, kept outside the database. A blob's key is `<tenant>/<sha256 hex>`:
//! the same file stored twice is stored once, a key names its tenant so that no caller can reach
//! another tenant's files by naming one, and a key can be checked against what it holds.
//! Two backends: a folder (the default, for one machine or a shared volume) and an
//! S3-compatible bucket (for replicas on Kubernetes).

mod fs;
mod s3;

use std::path::Path;

use bytes::Bytes;
use helpdesk_runtime::config::{AttachmentsConfig, BlobStoreKind};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("not a blob key: {0}")]
    BadKey(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("blob store misconfigured: {0}")]
    Config(String),
}

impl From<std::io::Error> for BlobError {
    fn from(error: std::io::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<BlobError> for helpdesk_runtime::ServiceError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::BadKey(key) => Self::invalid_field("storage_key", format!("not a blob key: {key}")),
            other => Self::new(helpdesk_runtime::ErrorKind::Unavailable, other.to_string()),
        }
    }
}

/// The key of `content` in `tenant`'s part of the store, and the content's hex SHA-256.
pub fn key_of(tenant_id: &str, content: &[u8]) -> (String, String) {
    let sha256 = hex::encode(Sha256::digest(content));
    (key(tenant_id, &sha256), sha256)
}

/// The key of the blob with hex SHA-256 `sha256` in `tenant`'s part of the store.
pub fn key(tenant_id: &str, sha256: &str) -> String {
    format!("{tenant_id}/{sha256}")
}

/// The tenant and hash of a well-formed key; anything else (`..`, slashes, upper case) is
/// refused before it reaches a path or a URL.
fn parse_key(key: &str) -> Result<(&str, &str), BlobError> {
    let bad = || BlobError::BadKey(key.chars().take(100).collect());
    let (tenant, sha256) = key.split_once('/').ok_or_else(bad)?;
    let tenant_ok = (1..=64).contains(&tenant.len())
        && tenant.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !tenant.starts_with('-');
    let sha_ok = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if tenant_ok && sha_ok { Ok((tenant, sha256)) } else { Err(bad()) }
}

/// Where blobs are kept.
#[derive(Clone)]
pub struct BlobStore(Backend);

#[derive(Clone)]
enum Backend {
    Filesystem(fs::Folder),
    S3(s3::Bucket),
}

impl BlobStore {
    /// The store `config` names; the filesystem one under `data_dir/blobs` unless told otherwise.
    pub fn open(config: &AttachmentsConfig, data_dir: &Path) -> Result<Self, BlobError> {
        Ok(Self(match config.store {
            BlobStoreKind::Filesystem => {
                let dir = config.dir.clone().unwrap_or_else(|| data_dir.join("blobs"));
                Backend::Filesystem(fs::Folder::create(dir)?)
            }
            BlobStoreKind::S3 => Backend::S3(s3::Bucket::new(config)?),
        }))
    }

    /// Stores `content` under `key` (its tenant and SHA-256, from [`key_of`]). Storing what is
    /// there already changes nothing; the call returns once the content is durable.
    pub async fn put(&self, key: &str, content: Bytes) -> Result<(), BlobError> {
        let (_, sha256) = parse_key(key)?;
        if hex::encode(Sha256::digest(&content)) != sha256 {
            return Err(BlobError::BadKey(format!("{key} does not hold that content")));
        }
        match &self.0 {
            Backend::Filesystem(folder) => folder.put(key, content).await,
            Backend::S3(bucket) => bucket.put(key, sha256, content).await,
        }
    }

    /// The content under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        parse_key(key)?;
        match &self.0 {
            Backend::Filesystem(folder) => folder.get(key).await,
            Backend::S3(bucket) => bucket.get(key).await,
        }
    }

    /// The size of the content under `key`, if there is any.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        parse_key(key)?;
        match &self.0 {
            Backend::Filesystem(folder) => folder.size(key).await,
            Backend::S3(bucket) => bucket.size(key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_a_tenant_and_a_hash_and_nothing_else() {
        let (key, sha256) = key_of("acme", b"hello");
        assert_eq!(key, format!("acme/{sha256}"));
        assert!(parse_key(&key).is_ok());
        for bad in [
            "acme",
            "acme/",
            "../etc/passwd",
            &format!("acme/../{sha256}"),
            &format!("Acme/{sha256}"),
            &format!("acme/{}", sha256.to_uppercase()),
            &format!("acme/x/{sha256}"),
            &format!("-acme/{sha256}"),
        ] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_s3_store_without_its_settings_is_refused_by_name() {
        let mut config = helpdesk_runtime::config::Config::load_from(None, Vec::new()).expect("defaults").attachments;
        config.store = BlobStoreKind::S3;
        let refused = BlobStore::open(&config, Path::new("unused")).err().map(|error| error.to_string());
        assert!(refused.as_deref().is_some_and(|error| error.contains("attachments.s3_endpoint")), "{refused:?}");
        config.s3_endpoint = Some("ftp://s3.example".to_owned());
        config.s3_bucket = Some("b".to_owned());
        let refused = BlobStore::open(&config, Path::new("unused")).err().map(|error| error.to_string());
        assert!(refused.as_deref().is_some_and(|error| error.contains("http://")), "{refused:?}");
    }

    #[tokio::test]
    async fn the_folder_store_keeps_content_by_hash_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = helpdesk_runtime::config::Config::load_from(None, Vec::new()).expect("defaults").attachments;
        let store = BlobStore::open(&config, dir.path()).expect("opens");
        let (key, _) = key_of("acme", "첨부 파일".as_bytes());
        assert_eq!(store.get(&key).await.expect("reads"), None);
        assert_eq!(store.size(&key).await.expect("reads"), None);
        store.put(&key, Bytes::from("첨부 파일")).await.expect("stores");
        store.put(&key, Bytes::from("첨부 파일")).await.expect("stores again");
        assert_eq!(store.get(&key).await.expect("reads").as_deref(), Some("첨부 파일".as_bytes()));
        assert_eq!(store.size(&key).await.expect("reads"), Some("첨부 파일".len() as u64));
        let refused = store.put(&key, Bytes::from("something else")).await;
        assert!(matches!(refused, Err(BlobError::BadKey(_))), "{refused:?}");
    }
}
