//! The folder store: `<dir>/<tenant>/<first two hex digits>/<sha256>`, written to a temporary
//! file, synced and renamed into place, so that a reader never sees half a file and a crash
//! leaves at worst a stray temporary file.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::{BlobError, parse_key};

/// Where unfinished writes go, inside the store's folder so that the rename stays on one disk.
const INCOMING: &str = ".incoming";

#[derive(Clone)]
pub(crate) struct Folder {
    root: PathBuf,
}

impl Folder {
    pub(crate) fn create(root: PathBuf) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root.join(INCOMING))
            .map_err(|error| BlobError::Config(format!("{}: {error}", root.display())))?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let (tenant, sha256) = parse_key(key)?;
        Ok(self.root.join(tenant).join(&sha256[..2]).join(sha256))
    }

    pub(crate) async fn put(&self, key: &str, content: Bytes) -> Result<(), BlobError> {
        let path = self.path(key)?;
        // Content-addressed: a file of the right length there already is this content.
        if file_len(&path).await? == Some(content.len() as u64) {
            return Ok(());
        }
        let incoming = self.root.join(INCOMING).join(uuid::Uuid::new_v4().to_string());
        let written = write_synced(&incoming, &content).await;
        let placed = match written {
            Ok(()) => place(&incoming, &path).await,
            Err(error) => Err(error),
        };
        if placed.is_err() {
            let _ = tokio::fs::remove_file(&incoming).await;
        }
        Ok(placed?)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(content) => Ok(Some(Bytes::from(content))),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        file_len(&self.path(key)?).await
    }
}

async fn file_len(path: &Path) -> Result<Option<u64>, BlobError> {
    match tokio::fs::metadata(path).await {
        Ok(metadata) => Ok(Some(metadata.len())),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn write_synced(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::File::create(path).await?;
    file.write_all(content).await?;
    file.sync_all().await
}

/// Moves a finished file to `path`, then syncs the folder so that the rename survives a crash.
async fn place(from: &Path, path: &Path) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(path);
    tokio::fs::create_dir_all(folder).await?;
    tokio::fs::rename(from, path).await?;
    tokio::fs::File::open(folder).await?.sync_all().await
}
