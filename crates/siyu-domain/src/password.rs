//! Staff passwords: argon2id with the crate's defaults (the OWASP minimum of 19 MiB, two
//! passes), stored in the PHC string format so that parameters can be raised later and
//! old hashes still verify.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::DomainError;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// The lowest strength a new password may have, on zxcvbn's scale of 0 (guessed in
/// under a thousand tries) to 4: 2 means about a hundred million guesses, safe against
/// online guessing with the login throttle.
pub const MIN_STRENGTH: u8 = 2;

/// Checks a new password against the policy: 8 to 256 characters, and not easily
/// guessed as zxcvbn estimates it (common passwords, names, keyboard walks, dates,
/// repeats and l33t variations of them).
pub fn check_policy(field: &str, password: &str) -> Result<(), DomainError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(DomainError::invalid(
            field,
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if len > MAX_LEN {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_LEN} characters"),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    if u8::from(estimate.score()) < MIN_STRENGTH {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".to_owned());
        return Err(DomainError::invalid(
            field,
            format!("is too weak: {hint}; add another uncommon word or some more characters"),
        ));
    }
    Ok(())
}

/// Hashes a password with a fresh salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts any password up to its length limit")
        .to_string()
}

/// Verifies a password against a stored hash; a malformed hash verifies nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so that a login for an unknown email takes as
/// long as one with a wrong password and does not tell which emails exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("siyu dummy password"));
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse");
        let b = hash("correct horse");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse", &a));
        assert!(!verify("correct hors", &a));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy("password", "short").is_err());
        assert!(check_policy("password", "long enough").is_ok());
        assert!(check_policy("password", &"x".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn policy_refuses_common_and_trivial_passwords() {
        for weak in [
            "password",
            "password1",
            "12345678",
            "qwertyuiop",
            "aaaaaaaaaa",
            "iloveyou",
            "P@ssw0rd",
            "abcdefgh",
            "11111111",
        ] {
            let err = check_policy("password", weak).unwrap_err();
            assert!(err.to_string().contains("too weak"), "{weak}: {err}");
        }
        // the README's demo password and the tests' stay valid
        for fine in [
            "siyu-demo-2026",
            "test-password-1",
            "another-pass-1",
            "correct horse battery staple",
        ] {
            assert!(check_policy("password", fine).is_ok(), "{fine}");
        }
    }
}
