//! Errors of domain rules. Each names the field it is about, so the API can point at it.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field: its path in the request (`email`, `permissions[2]`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    /// Input that breaks a rule of the domain; maps to 422.
    #[error("{}", .0.message)]
    Invalid(FieldError),
    /// A request that the rules forbid whatever the caller's role; maps to 409.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(FieldError::new(field, message))
    }
}

/// Checks a display name: trimmed, 1 to `max` characters.
pub fn check_name(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks and normalises an email address (lowercase, trimmed). Deliberately loose: one
/// `@` with something on both sides and a dot in the domain.
pub fn normalize_email(field: &str, value: &str) -> Result<String, DomainError> {
    let email = value.trim().to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid || email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(DomainError::invalid(field, "must be a valid email address"));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("name", "  华东区 ", 10).unwrap(), "华东区");
        assert!(check_name("name", "   ", 10).is_err());
        assert!(check_name("name", "一二三四五六七八九十一", 10).is_err());
        assert!(check_name("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            normalize_email("email", " Ops@Brand.CN ").unwrap(),
            "ops@brand.cn"
        );
        for bad in [
            "", "a", "a@b", "@b.cn", "a@.cn", "a@b.", "a b@c.cn", "a@b@c.cn",
        ] {
            assert!(normalize_email("email", bad).is_err(), "{bad}");
        }
    }
}
