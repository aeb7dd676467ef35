//! Personal data (PIPL): which fields hold phone numbers and e-mail addresses, how to
//! mask them wherever they leave the API, and which segment tests would read them back.
//!
//! A profile's phone and email are known fields; but the same data arrives in event and
//! order properties (`receiver_phone`, `contact_email`, a `mobile` trait) and in fields
//! whose names say nothing (`note: "13812341680"`). So a value is personal when its key
//! names a phone or an e-mail, or when it has the shape of one (a mobile number, an
//! address with `@`). Masking follows the value's shape: `138****1680`, `l***@brand.cn`.

use serde_json::{Map, Value};

use crate::identity::{mask_email, mask_phone};

/// Words in a key that mark its value as a phone number or an e-mail address.
const PERSONAL_WORDS: [&str; 10] = [
    "phone",
    "mobile",
    "tel",
    "telephone",
    "cellphone",
    "email",
    "mail",
    "手机",
    "电话",
    "邮箱",
];

/// Whether a trait or property key names personal data (`phone`, `receiver_phone`,
/// `contactEmail`, `mobile_no`, `手机号`). The key is split into words at `_`, `-`, `.`,
/// spaces and lower-to-upper case changes; `hotel` is not `tel`.
pub fn is_personal_key(key: &str) -> bool {
    if ["手机", "电话", "邮箱"].iter().any(|w| key.contains(w)) {
        return true;
    }
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if matches!(c, '_' | '-' | '.' | ' ' | '/') {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    words.push(current);
    words.iter().any(|w| PERSONAL_WORDS.contains(&w.as_str()))
}

/// Whether a text has the shape of a mobile number: a Chinese mobile number (11 digits
/// from `1[3-9]`, optionally after `+86`, `86` or `0086`, with spaces or dashes), or an
/// international number written with `+` and 8 to 15 digits.
pub fn looks_like_phone(text: &str) -> bool {
    let text = text.trim();
    if text.len() > 32 {
        return false;
    }
    let plus = text.starts_with('+');
    let body = text.strip_prefix('+').unwrap_or(text);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'))
    {
        return false;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    if plus {
        return (8..=15).contains(&digits.len());
    }
    let national = digits
        .strip_prefix("0086")
        .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
        .unwrap_or(&digits);
    national.len() == 11
        && national.starts_with('1')
        && matches!(national.as_bytes()[1], b'3'..=b'9')
}

/// Whether a text has the shape of an e-mail address: something, `@`, and a domain with
/// a dot, with no spaces.
pub fn looks_like_email(text: &str) -> bool {
    let text = text.trim();
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

/// The masked form of a value that is personal by its key or its shape, or `None` when
/// it is neither. Numbers under a personal key are masked as phones (`13812341680`
/// sent as a number).
pub fn masked_value(key: &str, value: &Value) -> Option<Value> {
    let personal_key = is_personal_key(key);
    match value {
        Value::String(s) if looks_like_email(s) => Some(Value::String(mask_email(s.trim()))),
        Value::String(s) if looks_like_phone(s) => Some(Value::String(mask_phone(s.trim()))),
        Value::String(s) if personal_key && !s.is_empty() => {
            Some(Value::String(if s.contains('@') {
                mask_email(s)
            } else {
                mask_phone(s)
            }))
        }
        Value::Number(n) if personal_key || looks_like_phone(&n.to_string()) => {
            Some(Value::String(mask_phone(&n.to_string())))
        }
        Value::String(s) => mask_mobiles_in_text(s).map(Value::String),
        _ => None,
    }
}

/// Masks Chinese mobile numbers written inside free text (`call 13812341680 after 6`),
/// or `None` when there is none.
pub fn mask_mobiles_in_text(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            if looks_like_phone(&run) {
                out.push_str(&mask_phone(&run));
                changed = true;
            } else {
                out.push_str(&run);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Free text (a search term, a filter) with the phone numbers and e-mail addresses in
/// it masked, word by word (a word ends at a space or a quote).
pub fn mask_personal_in_text(text: &str) -> String {
    let text = mask_mobiles_in_text(text).unwrap_or_else(|| text.to_owned());
    text.split_inclusive(|c: char| c.is_whitespace() || c == '"')
        .map(|word| {
            let core = word.trim_end_matches(|c: char| c.is_whitespace() || c == '"');
            if looks_like_email(core) {
                word.replacen(core, &mask_email(core), 1)
            } else if looks_like_phone(core) {
                word.replacen(core, &mask_phone(core), 1)
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// Masks every personal value in a map of properties or traits, at any depth (a
/// `receiver` object with a `phone`, a list of `contacts`).
pub fn mask_properties(properties: &mut Map<String, Value>) {
    for (key, value) in properties.iter_mut() {
        mask_in_place(key, value);
    }
}

fn mask_in_place(key: &str, value: &mut Value) {
    match value {
        Value::Object(map) => mask_properties(map),
        Value::Array(items) => {
            for item in items {
                mask_in_place(key, item);
            }
        }
        other => {
            if let Some(masked) = masked_value(key, other) {
                *other = masked;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_keys_by_their_words() {
        for key in [
            "phone",
            "Phone",
            "receiver_phone",
            "receiverPhone",
            "mobile",
            "mobile_no",
            "tel",
            "contact-tel",
            "email",
            "e_mail",
            "contactEmail",
            "mail",
            "手机号",
            "联系电话",
            "邮箱",
        ] {
            assert!(is_personal_key(key), "{key}");
        }
        for key in [
            "hotel",
            "city",
            "name",
            "telemetry",
            "mailbox_size",
            "emails_sent",
            "level",
        ] {
            assert!(!is_personal_key(key), "{key}");
        }
    }

    #[test]
    fn shapes_of_phones_and_emails() {
        for phone in [
            "13812341680",
            "138 1234 1680",
            "+86 138-1234-1680",
            "008613812341680",
            "+14155550100",
            "+852 2123 4567",
        ] {
            assert!(looks_like_phone(phone), "{phone}");
        }
        for not in ["12345678901", "2026-11-01", "1381234", "abc", "10086", ""] {
            assert!(!looks_like_phone(not), "{not}");
        }
        assert!(looks_like_email("lina@brand.cn"));
        for not in [
            "@brand.cn",
            "lina@",
            "lina@brand",
            "li na@brand.cn",
            "a@b@c.cn",
        ] {
            assert!(!looks_like_email(not), "{not}");
        }
    }

    #[test]
    fn free_text_is_masked_word_by_word() {
        assert_eq!(
            mask_personal_in_text(r#"trait.email = "lina@brand.cn" or 13812341680 李娜"#),
            r#"trait.email = "l***@brand.cn" or 138****1680 李娜"#
        );
    }

    #[test]
    fn properties_are_masked_by_key_and_by_shape_at_any_depth() {
        let mut props = json!({
            "receiver_phone": "13812341680",
            "mobile": 13912345678u64,
            "note": "call 13812341680",
            "contact": "lina@brand.cn",
            "receiver": {"tel": "021-62345678", "city": "上海"},
            "contacts": [{"email": "wu@x.cn"}, "13700001111"],
            "amount": 88.5,
            "order_id": "20261101000001",
        })
        .as_object()
        .unwrap()
        .clone();
        mask_properties(&mut props);
        assert_eq!(
            Value::Object(props),
            json!({
                "receiver_phone": "138****1680",
                "mobile": "139****5678",
                "note": "call 138****1680",
                "contact": "l***@brand.cn",
                "receiver": {"tel": "021****5678", "city": "上海"},
                "contacts": [{"email": "w***@x.cn"}, "137****1111"],
                "amount": 88.5,
                "order_id": "20261101000001",
            })
        );
    }
}
