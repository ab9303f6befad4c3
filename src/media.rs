//! The media store: message files by content address (SHA-256, hex). The file-system store is
//! built in; an object store can implement the same operations. Providers read outbound media
//! from it and write inbound media to it.

use std::{
    path::{Path, PathBuf},
    pin::Pin,
};

use tokio::io::AsyncRead;

/// Where message media lives. The file-system store is built in; an object store can
/// implement the same two operations.
#[async_trait::async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Moves a fully written local file into the store under `key` (content addresses make
    /// this idempotent: an existing key is kept and the staged file dropped).
    async fn put(&self, key: &str, staged: &Path) -> std::io::Result<()>;

    /// Opens stored content: its length and a reader; `None` when the key is unknown.
    async fn open(&self, key: &str) -> std::io::Result<Option<(u64, MediaReader)>>;

    /// Removes uploads a crash left half-written, an hour or more ago (called at start-up).
    async fn clear_staging(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// Stores a file a provider received (inbound media) and returns its key, the SHA-256 of
    /// `bytes` in hex.
    async fn put_bytes(&self, bytes: &[u8]) -> std::io::Result<String>;
}

/// The content address of `bytes`: SHA-256, lowercase hex.
pub fn content_key(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// A reader over stored media.
pub type MediaReader = Pin<Box<dyn AsyncRead + Send>>;

/// Media under a directory, as `<root>/<first two hex digits>/<sha256>`.
pub struct FsMediaStore {
    root: PathBuf,
}

impl FsMediaStore {
    /// A store rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where uploads are written before they are complete.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join("staging")
    }

    fn path_of(&self, key: &str) -> Option<PathBuf> {
        // Keys are SHA-256 hex digests; anything else never touches the file system.
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.root.join(&key[..2]).join(key))
    }
}

#[async_trait::async_trait]
impl MediaStore for FsMediaStore {
    async fn put(&self, key: &str, staged: &Path) -> std::io::Result<()> {
        let dest = self
            .path_of(key)
            .ok_or_else(|| std::io::Error::other("invalid media key"))?;
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            let _ = tokio::fs::remove_file(staged).await;
            return Ok(());
        }
        let dir = dest
            .parent()
            .ok_or_else(|| std::io::Error::other("media path has no parent"))?;
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(staged, &dest).await?;
        // The rename itself must survive a power cut, like the row that will point at it.
        tokio::fs::File::open(dir).await?.sync_all().await
    }

    async fn put_bytes(&self, bytes: &[u8]) -> std::io::Result<String> {
        use tokio::io::AsyncWriteExt;
        let key = content_key(bytes);
        if let Some(dest) = self.path_of(&key)
            && tokio::fs::try_exists(&dest).await.unwrap_or(false)
        {
            return Ok(key);
        }
        let dir = self.staging_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let staged = dir.join(format!("in-{}", uuid::Uuid::new_v4().simple()));
        let mut file = tokio::fs::File::create(&staged).await?;
        let written = async {
            file.write_all(bytes).await?;
            file.sync_all().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&staged).await;
            return Err(e);
        }
        self.put(&key, &staged).await?;
        Ok(key)
    }

    async fn clear_staging(&self) -> std::io::Result<()> {
        // Only old files: another instance sharing the directory may be mid-upload.
        let mut dir = match tokio::fs::read_dir(self.staging_dir()).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let hour = std::time::Duration::from_secs(3600);
        while let Some(entry) = dir.next_entry().await? {
            let old = entry
                .metadata()
                .await?
                .modified()?
                .elapsed()
                .is_ok_and(|age| age > hour);
            if old {
                tokio::fs::remove_file(entry.path()).await?;
            }
        }
        Ok(())
    }

    async fn open(&self, key: &str) -> std::io::Result<Option<(u64, MediaReader)>> {
        let Some(path) = self.path_of(key) else {
            return Ok(None);
        };
        match tokio::fs::File::open(&path).await {
            Ok(f) => {
                let len = f.metadata().await?.len();
                Ok(Some((len, Box::pin(f))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn received_bytes_are_stored_once_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsMediaStore::new(dir.path());
        let key = store.put_bytes(b"voice note").await.unwrap();
        assert_eq!(key, content_key(b"voice note"));
        assert_eq!(store.put_bytes(b"voice note").await.unwrap(), key);
        let (len, mut reader) = store.open(&key).await.unwrap().unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).await.unwrap();
        assert_eq!((len, back.as_slice()), (10, &b"voice note"[..]));
        let staged = std::fs::read_dir(store.staging_dir()).unwrap().count();
        assert_eq!(staged, 0, "nothing is left in staging");
    }
}
