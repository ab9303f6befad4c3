//! Encryption at rest: the key (`WAGATE_ENCRYPTION_KEY` or a generated key file) and an AEAD
//! cipher for values kept in the database (provider device keys, access tokens).
//!
//! A leaf module: it knows nothing of the service, HTTP, GraphQL or provider layers.
//!
//! Values are sealed with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`) under a random
//! 192-bit nonce, so nonces never need coordinating between instances. A sealed blob is
//! `format (1 byte) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Callers pass associated
//! data naming the value's place (e.g. `session/namespace/key`), so a blob copied to another
//! place no longer opens.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use base64::Engine as _;
use chacha20poly1305::{
    Key, KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate, Payload},
};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

/// Length of an encryption key in bytes.
pub const KEY_LEN: usize = 32;
/// Name of the generated key file in the data directory.
pub const KEY_FILE: &str = "encryption.key";
/// The first byte of every sealed blob: XChaCha20-Poly1305 with a 24-byte random nonce.
const FORMAT_XCHACHA: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 256-bit encryption key. Zeroed when dropped; `Debug` never shows it.
pub struct EncryptionKey(SecretBox<[u8; KEY_LEN]>);

impl Clone for EncryptionKey {
    fn clone(&self) -> Self {
        Self::from_bytes(self.0.expose_secret())
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

/// Why a key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be 32 bytes written as standard base64 (44 characters) or hex (64 characters)")]
pub struct KeyFormatError;

impl EncryptionKey {
    fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self(SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            k.copy_from_slice(bytes)
        }))
    }

    /// Parses 32 bytes written as standard base64 (with padding) or as 64 hex digits.
    /// Surrounding white space is ignored.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let raw = raw.trim();
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        if raw.len() == 2 * KEY_LEN && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            let out = key.expose_secret_mut();
            for (i, pair) in raw.as_bytes().chunks_exact(2).enumerate() {
                let hex = std::str::from_utf8(pair).map_err(|_| KeyFormatError)?;
                out[i] = u8::from_str_radix(hex, 16).map_err(|_| KeyFormatError)?;
            }
            return Ok(Self(key));
        }
        let decoded = SecretBox::new(Box::new(
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| KeyFormatError)?,
        ));
        if decoded.expose_secret().len() != KEY_LEN {
            return Err(KeyFormatError);
        }
        key.expose_secret_mut()
            .copy_from_slice(decoded.expose_secret());
        Ok(Self(key))
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> anyhow::Result<Self> {
        use rand::TryRngCore as _;
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        rand::rngs::OsRng
            .try_fill_bytes(key.expose_secret_mut())
            .map_err(|e| anyhow::anyhow!("the system random generator failed: {e}"))?;
        Ok(Self(key))
    }

    /// The key as standard base64 (what the key file holds).
    fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.expose_secret())
    }
}

/// A sealed value could not be opened: wrong key, wrong associated data, or damaged bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the value could not be decrypted (wrong key, moved or damaged)")]
pub struct DecryptError;

/// A value could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// The system random generator failed while making a nonce.
    #[error("the system random generator failed: {0}")]
    Random(String),
    /// The value is beyond what the cipher can seal (hundreds of gigabytes).
    #[error("the value is too large to encrypt")]
    TooLarge,
}

/// Authenticated encryption with one key. `Debug` never shows the key.
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([REDACTED])")
    }
}

impl Cipher {
    /// A cipher using `key`.
    pub fn new(key: &EncryptionKey) -> Self {
        let key: &Key = key.0.expose_secret().into();
        Self {
            aead: XChaCha20Poly1305::new(key),
        }
    }

    /// Seals `plaintext`, binding it to `aad` (which is authenticated, not stored). A fresh
    /// random nonce is used each time, so sealing the same value twice gives different blobs.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let nonce = XNonce::try_generate().map_err(|e| EncryptError::Random(e.to_string()))?;
        let sealed = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| EncryptError::TooLarge)?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        blob.push(FORMAT_XCHACHA);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Opens a blob sealed by [`Cipher::encrypt`] with the same key and `aad`.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let Some((&FORMAT_XCHACHA, rest)) = blob.split_first() else {
            return Err(DecryptError);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(DecryptError);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| DecryptError)?;
        self.aead
            .decrypt(&nonce, Payload { msg: sealed, aad })
            .map_err(|_| DecryptError)
    }
}

/// The configured key, or the one kept in `<data dir>/encryption.key` (generated with mode
/// 0600 on first start), so stored secrets stay readable across restarts.
pub fn load_or_create_key(
    configured: Option<&EncryptionKey>,
    data_dir: &Path,
) -> anyhow::Result<EncryptionKey> {
    if let Some(k) = configured {
        return Ok(k.clone());
    }
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(s) => {
            return EncryptionKey::parse(&s).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; restore the original key file (deleting it makes stored device keys unreadable)",
                    path.display()
                )
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let key = EncryptionKey::generate()?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(key.to_base64().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    tracing::info!(path = %path.display(), "generated a new encryption key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::from_bytes(&[byte; KEY_LEN])
    }

    #[test]
    fn round_trip_with_matching_aad_only() {
        let c = Cipher::new(&key(7));
        let blob = c.encrypt(b"signal identity", b"s/ns/k").unwrap();
        assert_eq!(blob.len(), b"signal identity".len() + OVERHEAD);
        assert_eq!(c.decrypt(&blob, b"s/ns/k").unwrap(), b"signal identity");
        assert_eq!(c.decrypt(&blob, b"s/ns/other"), Err(DecryptError));
        assert_eq!(
            Cipher::new(&key(8)).decrypt(&blob, b"s/ns/k"),
            Err(DecryptError)
        );
        // Fresh nonce each time.
        assert_ne!(blob, c.encrypt(b"signal identity", b"s/ns/k").unwrap());
        // Damaged, truncated or unknown-format blobs are refused, never garbage.
        let mut bad = blob.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(c.decrypt(&bad, b"s/ns/k"), Err(DecryptError));
        assert_eq!(
            c.decrypt(&blob[..OVERHEAD - 1], b"s/ns/k"),
            Err(DecryptError)
        );
        assert_eq!(c.decrypt(&[], b""), Err(DecryptError));
        let mut other_format = blob;
        other_format[0] = 2;
        assert_eq!(c.decrypt(&other_format, b"s/ns/k"), Err(DecryptError));
        // Empty values work too.
        let empty = c.encrypt(b"", b"a").unwrap();
        assert_eq!(c.decrypt(&empty, b"a").unwrap(), b"");
    }

    #[test]
    fn parses_base64_and_hex() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xabu8; 32]);
        let hex = "ab".repeat(32);
        let a = EncryptionKey::parse(&b64).unwrap();
        let b = EncryptionKey::parse(&format!(" {} \n", hex.to_uppercase())).unwrap();
        assert_eq!(a.0.expose_secret(), &[0xab; 32]);
        assert_eq!(b.0.expose_secret(), &[0xab; 32]);
        for bad in [
            "",
            "short",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &base64::engine::general_purpose::STANDARD.encode([1u8; 16]),
            &base64::engine::general_purpose::STANDARD.encode([1u8; 33]),
        ] {
            assert_eq!(
                EncryptionKey::parse(bad).err(),
                Some(KeyFormatError),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = EncryptionKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{k:?}"), "EncryptionKey([REDACTED])");
        assert_eq!(format!("{:?}", Cipher::new(&k)), "Cipher([REDACTED])");
    }

    #[test]
    fn key_file_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create_key(None, dir.path()).unwrap();
        assert_eq!(a.0.expose_secret(), b.0.expose_secret());
        // An explicit key wins over the file.
        let c = load_or_create_key(Some(&key(3)), dir.path()).unwrap();
        assert_eq!(c.0.expose_secret(), &[3; KEY_LEN]);
        // A damaged file is an error naming it, not a new key.
        fs::write(&path, "garbage").unwrap();
        let e = load_or_create_key(None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(KEY_FILE), "{e}");
    }
}
