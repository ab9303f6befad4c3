//! Media: streaming uploads into a staging file (hashed and size-checked as they arrive),
//! type detection from the bytes, and the content-addressed store behind [`MediaStore`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::MessageKind;
use crate::{config::MediaLimits, error::AppError};

pub use crate::media::{FsMediaStore, MediaReader, MediaStore};

/// An upload written to the staging area, not yet in the store. Removed on drop unless
/// committed.
pub struct Staged {
    path: PathBuf,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// The first bytes, for type detection.
    pub head: Vec<u8>,
    committed: bool,
}

impl Staged {
    /// Moves the file into the store under its content address.
    pub async fn commit(mut self, store: &dyn MediaStore) -> Result<String, AppError> {
        store
            .put(&self.sha256, &self.path)
            .await
            .map_err(AppError::internal)?;
        self.committed = true;
        Ok(self.sha256.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why staging failed.
#[derive(Debug)]
pub enum StageError {
    /// More than the limit arrived.
    TooLarge,
    /// Reading the upload failed (the client's side).
    Read(std::io::Error),
    /// Writing the staging file failed (the server's side).
    Write(std::io::Error),
}

const HEAD_LEN: usize = 8192;

/// Streams `src` into a staging file under `dir`, hashing as it goes; stops with
/// `TooLarge` as soon as more than `limit` bytes arrive. The file is synced before returning.
pub async fn stage(
    dir: &Path,
    mut src: impl AsyncRead + Unpin,
    limit: u64,
) -> Result<Staged, StageError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(StageError::Write)?;
    let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(StageError::Write)?;
    let mut staged = Staged {
        path,
        sha256: String::new(),
        size: 0,
        head: Vec::new(),
        committed: false,
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src.read(&mut buf).await.map_err(StageError::Read)?;
        if n == 0 {
            break;
        }
        staged.size += n as u64;
        if staged.size > limit {
            return Err(StageError::TooLarge);
        }
        let chunk = &buf[..n];
        if staged.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - staged.head.len()).min(n);
            staged.head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(chunk);
        file.write_all(chunk).await.map_err(StageError::Write)?;
    }
    file.sync_all().await.map_err(StageError::Write)?;
    staged.sha256 = hex(&hasher.finalize());
    Ok(staged)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The size limit for a kind.
pub fn limit_for(kind: MessageKind, limits: &MediaLimits) -> u64 {
    match kind {
        MessageKind::Image => limits.image,
        MessageKind::Audio => limits.audio,
        MessageKind::Video => limits.video,
        _ => limits.document,
    }
}

/// What WhatsApp accepts per kind, as detected MIME types.
fn accepted(kind: MessageKind) -> (&'static [&'static str], &'static str) {
    match kind {
        MessageKind::Image => (
            &["image/jpeg", "image/png", "image/webp"],
            "a JPEG, PNG or WebP image",
        ),
        MessageKind::Video => (&["video/mp4", "video/3gpp"], "an MP4 or 3GPP video"),
        MessageKind::Audio => (
            &[
                "audio/aac",
                "audio/m4a",
                "audio/mpeg",
                "audio/amr",
                "audio/ogg",
                "audio/opus",
            ],
            "an AAC, M4A, MP3, AMR or OGG/Opus audio file",
        ),
        _ => (&[], "a file"),
    }
}

/// Detects the MIME type of `head` and checks it suits `kind`. Documents take any content
/// (text without a signature reads as `text/plain`); other kinds must match.
pub fn sniff(kind: MessageKind, head: &[u8]) -> Result<String, String> {
    let detected = infer::get(head).map(|t| t.mime_type());
    if kind == MessageKind::Document {
        return Ok(match detected {
            Some(m) => m.to_owned(),
            None if std::str::from_utf8(trim_partial_utf8(head)).is_ok() => "text/plain".into(),
            None => "application/octet-stream".into(),
        });
    }
    let (ok, what) = accepted(kind);
    match detected {
        Some(m) if ok.contains(&m) => Ok(if m == "audio/m4a" {
            "audio/mp4".into()
        } else {
            m.to_owned()
        }),
        Some(m) => Err(format!("The file must be {what}; its content is {m}")),
        None => Err(format!(
            "The file must be {what}; its content is not a recognised media format"
        )),
    }
}

/// `head` may end inside a multi-byte character; drop up to three trailing bytes of one.
fn trim_partial_utf8(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        Err(_) => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];

    #[test]
    fn sniffing_uses_bytes_not_names() {
        assert_eq!(sniff(MessageKind::Image, PNG).unwrap(), "image/png");
        assert!(sniff(MessageKind::Image, b"just some text").is_err());
        assert!(
            sniff(MessageKind::Video, PNG)
                .unwrap_err()
                .contains("image/png")
        );
        assert_eq!(
            sniff(MessageKind::Document, b"hello").unwrap(),
            "text/plain"
        );
        assert_eq!(sniff(MessageKind::Document, PNG).unwrap(), "image/png");
        assert_eq!(
            sniff(MessageKind::Document, &[0xff, 0x00, 0xfe, 0x01]).unwrap(),
            "application/octet-stream"
        );
    }

    #[tokio::test]
    async fn staging_hashes_limits_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = stage(dir.path(), &b"abc"[..], 10).await.unwrap();
        assert_eq!(
            s.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(s.size, 3);
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(matches!(
            stage(dir.path(), &[0u8; 11][..], 10).await,
            Err(StageError::TooLarge)
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
