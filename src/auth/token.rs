//! Opaque secrets (refresh tokens, API keys): random, shown once, stored as SHA-256.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every API key, so leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "wag_";
/// How many characters of an API key are kept for display.
pub const API_KEY_DISPLAY_LEN: usize = 12;

/// 32 random bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API key: `wag_` followed by 43 random characters.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_secret())
}

/// The part of a key that may be displayed.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(API_KEY_DISPLAY_LEN).collect()
}

/// Hex SHA-256: secrets are high-entropy, so a fast hash is the right lookup key.
pub fn sha256_hex(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashable() {
        let a = new_api_key();
        let b = new_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 43);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(display_prefix(&a).len(), API_KEY_DISPLAY_LEN);
    }
}
