//! Secrets that siyu stores for a tenant (connector secrets, webhook signing keys) are
//! sealed with XChaCha20-Poly1305 under the server's secret key (`SIYU_SECRET_KEY`).
//!
//! Each value gets a random 192-bit nonce, so no nonce bookkeeping is needed, and the
//! tenant and name are bound in as associated data: a sealed value copied to another row
//! or tenant does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "the secret key must be 32 bytes in base64 (generate one with `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error(
        "a stored secret does not open with this key: the key changed or the value was altered"
    )]
    CannotOpen,
}

/// The key that seals stored secrets.
#[derive(Clone)]
pub struct SecretKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Reads a key given as base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self(XChaCha20Poly1305::new(&key.into())))
    }

    /// A new random key, as base64.
    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Seals `plaintext`; the result is the nonce followed by the ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of an in-memory buffer does not fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value sealed by [`SecretKey::seal`] with the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::CannotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_context() {
        let key = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        let sealed = key.seal(b"corp-secret-123", "tenant:1:wecom");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open(&sealed, "tenant:1:wecom").unwrap(),
            b"corp-secret-123"
        );
        assert_eq!(
            key.open(&sealed, "tenant:2:wecom"),
            Err(SecretError::CannotOpen)
        );
        let other = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        assert_eq!(
            other.open(&sealed, "tenant:1:wecom"),
            Err(SecretError::CannotOpen)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            key.open(&tampered, "tenant:1:wecom"),
            Err(SecretError::CannotOpen)
        );
    }

    #[test]
    fn bad_keys_are_refused_and_keys_never_print() {
        assert_eq!(
            SecretKey::from_base64("short").unwrap_err(),
            SecretError::BadKey
        );
        let key = SecretKey::from_base64(&SecretKey::generate_base64()).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }
}
