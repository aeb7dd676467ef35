//! Identities: the ids by which one person is known across channels — an app's user id,
//! a browser's anonymous id, an email, a phone, WeCom and WeChat ids — and how each kind
//! is normalised so that the same person's id always compares equal.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;

/// The kind of an identity. Custom kinds (`member_no`, `tmall_nick`) are allowed too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct IdentityKind(String);

impl IdentityKind {
    pub const USER_ID: &'static str = "user_id";
    pub const ANONYMOUS_ID: &'static str = "anonymous_id";
    pub const EMAIL: &'static str = "email";
    pub const PHONE: &'static str = "phone";
    pub const WECOM_EXTERNAL_USERID: &'static str = "wecom_external_userid";
    pub const WECHAT_UNIONID: &'static str = "wechat_unionid";
    /// OpenIDs differ per WeChat app; the value is `APPID:OPENID`.
    pub const WECHAT_OPENID: &'static str = "wechat_openid";

    pub const BUILTIN: [&'static str; 7] = [
        Self::USER_ID,
        Self::ANONYMOUS_ID,
        Self::EMAIL,
        Self::PHONE,
        Self::WECOM_EXTERNAL_USERID,
        Self::WECHAT_UNIONID,
        Self::WECHAT_OPENID,
    ];

    /// Reads a kind: lowercase letters, digits and `_`, 1 to 50 of them.
    pub fn parse(kind: &str) -> Result<Self, DomainError> {
        let kind = kind.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let valid = !kind.is_empty()
            && kind.len() <= 50
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(kind))
        } else {
            Err(DomainError::invalid(
                "kind",
                "an identity kind is 1 to 50 of a-z, 0-9 and _",
            ))
        }
    }

    pub fn of(kind: &'static str) -> Self {
        Self(kind.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether values of this kind are personal data to mask and to erase on request.
    pub fn is_personal(&self) -> bool {
        matches!(self.0.as_str(), Self::EMAIL | Self::PHONE)
    }
}

/// An identity: a kind and its normalised value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    /// Builds an identity, normalising the value for its kind.
    pub fn new(kind: IdentityKind, value: &str) -> Result<Self, DomainError> {
        let value = match kind.as_str() {
            IdentityKind::EMAIL => crate::error::normalize_email("value", value)?,
            IdentityKind::PHONE => normalize_phone(value)?,
            _ => {
                let v = value.trim();
                if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
                    return Err(DomainError::invalid(
                        "value",
                        "an identity value is 1 to 200 characters without control characters",
                    ));
                }
                v.to_owned()
            }
        };
        Ok(Self { kind, value })
    }

    pub fn of(kind: &'static str, value: &str) -> Result<Self, DomainError> {
        Self::new(IdentityKind::of(kind), value)
    }
}

/// An identity as a request names it, before it is checked.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    pub kind: String,
    pub value: String,
}

impl IdentityInput {
    /// Checks and normalises it; `field` prefixes the error's field path.
    pub fn to_identity(&self, field: &str) -> Result<Identity, DomainError> {
        let prefix = |e: DomainError| match e {
            DomainError::Invalid(f) => {
                DomainError::invalid(format!("{field}.{}", f.field), f.message)
            }
            other => other,
        };
        Identity::new(
            IdentityKind::parse(&self.kind).map_err(prefix)?,
            &self.value,
        )
        .map_err(|e| match e {
            DomainError::Invalid(f) => DomainError::invalid(format!("{field}.value"), f.message),
            other => other,
        })
    }
}

/// Normalises a phone number to E.164 with libphonenumber's metadata (the
/// `phonenumber` crate): a number without a country code is read as a Chinese one
/// (mobile `138…`, or a landline with its trunk prefix, `021-…`); `+` or `00` names the
/// country (`+852 2123 4567`, a Hong Kong number of 8 digits). A number that is not valid
/// for its country is refused.
pub fn normalize_phone(raw: &str) -> Result<String, DomainError> {
    let invalid = || DomainError::invalid("phone", "must be a phone number");
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || trimmed.len() > 32
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
    {
        return Err(invalid());
    }
    let number =
        phonenumber::parse(Some(phonenumber::country::Id::CN), trimmed).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Masks a phone for display: `+8613812341680` → `138****1680`.
pub fn mask_phone(phone: &str) -> String {
    let national = phone.strip_prefix("+86").unwrap_or(phone);
    let chars: Vec<char> = national.chars().collect();
    if chars.len() < 7 {
        return "****".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Masks an email for display: `lina@brand.cn` → `l***@brand.cn`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164_with_china_by_default() {
        for (raw, want) in [
            ("13812341680", "+8613812341680"),
            ("138 1234 1680", "+8613812341680"),
            ("+86 138-1234-1680", "+8613812341680"),
            ("8613812341680", "+8613812341680"),
            ("008613812341680", "+8613812341680"),
            ("021-6234 5678", "+862162345678"),
            ("+1 (415) 555-0100", "+14155550100"),
            // Hong Kong's 8-digit numbers, written with the country code
            ("+852 2123 4567", "+85221234567"),
            ("00852 9123 4567", "+85291234567"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(normalize_phone(raw).unwrap(), want, "{raw}");
        }
        for bad in [
            "",
            "abc",
            "1381234",
            "+86 138123416801",
            "138-1234-168x",
            "+0123456789",
            // a Hong Kong number without its country code is no Chinese number
            "2123 4567",
            "+852 2123 456",
            "12345678901",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masks_keep_just_enough_to_recognise() {
        assert_eq!(mask_phone("+8613812341680"), "138****1680");
        assert_eq!(mask_email("lina@brand.cn"), "l***@brand.cn");
    }

    #[test]
    fn identities_normalise_by_kind() {
        assert_eq!(
            Identity::of("email", " Li@Brand.CN ").unwrap().value,
            "li@brand.cn"
        );
        assert_eq!(Identity::of("user_id", " u1 ").unwrap().value, "u1");
        assert!(Identity::of("user_id", "").is_err());
        assert_eq!(
            IdentityKind::parse("Member-No").unwrap().as_str(),
            "member_no"
        );
        assert!(IdentityKind::parse("会员").is_err());
    }
}

/// Which identity kinds name one person, per tenant (`GET|PUT /api/v1/settings/identity`).
/// A profile holds at most one value of each such kind, and two profiles holding
/// different values of one never merge, whatever else they share (a family phone, a
/// shop's tablet): they are two people. Kinds are ranked: when an event's values point
/// at different profiles, the first kind's owner wins. By default only `user_id`;
/// WeCom-centred brands add `wechat_unionid` or `wecom_external_userid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    pub identifying_kinds: Vec<IdentityKind>,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            identifying_kinds: vec![IdentityKind::of(IdentityKind::USER_ID)],
        }
    }
}

impl IdentitySettings {
    /// The settings stored under this key.
    pub const KEY: &'static str = "identity";

    /// Checks the settings: known-good kind names, each once, at most ten, and never
    /// `anonymous_id` (a device, which several people may share, is not a person).
    pub fn check(self) -> Result<Self, DomainError> {
        let mut kinds: Vec<IdentityKind> = Vec::new();
        for kind in self.identifying_kinds {
            let kind = IdentityKind::parse(kind.as_str()).map_err(|_| {
                DomainError::invalid(
                    "identifying_kinds",
                    "an identity kind is 1 to 50 of a-z, 0-9 and _",
                )
            })?;
            if kind.as_str() == IdentityKind::ANONYMOUS_ID {
                return Err(DomainError::invalid(
                    "identifying_kinds",
                    "anonymous_id names a device, which several people may share, not a person",
                ));
            }
            if kinds.contains(&kind) {
                return Err(DomainError::invalid(
                    "identifying_kinds",
                    format!("{} is named twice", kind.as_str()),
                ));
            }
            kinds.push(kind);
        }
        if kinds.len() > 10 {
            return Err(DomainError::invalid(
                "identifying_kinds",
                "at most ten kinds",
            ));
        }
        Ok(Self {
            identifying_kinds: kinds,
        })
    }
}

#[cfg(test)]
mod identity_settings_tests {
    use super::*;

    fn settings(kinds: &[&str]) -> IdentitySettings {
        IdentitySettings {
            identifying_kinds: kinds.iter().map(|k| IdentityKind(k.to_string())).collect(),
        }
    }

    #[test]
    fn identifying_kinds_are_people_not_devices_each_once() {
        let ok = settings(&["user_id", "WeChat-UnionID"]).check().unwrap();
        assert_eq!(ok.identifying_kinds[1].as_str(), "wechat_unionid");
        assert!(settings(&["anonymous_id"]).check().is_err());
        assert!(settings(&["phone", "phone"]).check().is_err());
        assert!(settings(&["bad kind!"]).check().is_err());
        assert!(
            settings(&[]).check().is_ok(),
            "no kind: any shared id merges"
        );
    }
}
