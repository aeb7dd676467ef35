//! Opaque bearer secrets: API tokens and session ids.
//!
//! A secret is 32 random bytes, shown once and stored only as its SHA-256. A fast hash is
//! right here (unlike passwords): the secret has 256 bits of entropy, so there is nothing
//! to guess, and lookups by hash must be cheap on every request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so that leaked tokens are recognisable by secret scanners.
pub const API_TOKEN_PREFIX: &str = "siyu_pat_";

/// A new random secret with the given prefix.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn generate_api_token() -> String {
    generate(API_TOKEN_PREFIX)
}

pub fn generate_session_id() -> String {
    generate("")
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The part of a token that may be shown again to tell tokens apart.
pub fn display_prefix(token: &str) -> String {
    display_prefix_of(token, API_TOKEN_PREFIX)
}

/// The prefix and four more characters of a secret made with `prefix`.
pub fn display_prefix_of(token: &str, prefix: &str) -> String {
    token.chars().take(prefix.chars().count() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_stably() {
        let a = generate_api_token();
        let b = generate_api_token();
        assert_ne!(a, b);
        assert!(a.starts_with(API_TOKEN_PREFIX));
        assert_eq!(a.len(), API_TOKEN_PREFIX.len() + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(display_prefix(&a).len(), API_TOKEN_PREFIX.len() + 4);
    }
}
