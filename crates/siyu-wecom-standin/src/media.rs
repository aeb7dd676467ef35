//! Media (WECOM.md "Media"): `media/upload?type=image|voice|video|file` takes a file as
//! `multipart/form-data` (its part named `media`) and gives a `media_id` that lasts 3
//! days on the stand-in's clock; `media/uploadimg` gives a lasting image URL. WeCom's
//! limits: an image JPG or PNG of at most 10 MB, a voice of 2 MB, a video MP4 of 10 MB,
//! a file of 20 MB, none under 5 bytes (40004 bad type, 40005 bad file type, 40006 bad
//! size). Mass messages check that their attachments name media that exist, of their
//! kind, and have not run out (40007).
//!
//! The HTTP layer reads the multipart body into `{"media": {"filename", "content_type",
//! "size"}}` ([`parse_multipart`]); the bytes themselves are not kept.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::server::{ApiError, ApiResult, Obj, Req, State};

/// How long a `media_id` lasts, in milliseconds.
const MEDIA_LASTS_MS: u64 = 3 * 86_400_000;

/// A file uploaded as media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub media_id: String,
    /// image, voice, video or file.
    pub kind: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    /// Unix milliseconds on the stand-in's clock.
    pub created_ms: u64,
}

#[derive(Debug, Default)]
pub(crate) struct MediaStore {
    pub by_id: HashMap<String, Media>,
    /// Uploads in order (media ids and lasting images' URLs).
    pub uploads: Vec<Media>,
}

/// The uploaded file as the HTTP layer read it.
fn file_of(req: &Req) -> Result<(String, String, u64), ApiError> {
    let media = req.body.get("media").ok_or_else(|| {
        ApiError::new(
            41005,
            "media data missing: send the file as the part `media`",
        )
    })?;
    let name = media
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content_type = media
        .get("content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    let size = media.get("size").and_then(Value::as_u64).unwrap_or(0);
    Ok((name.to_owned(), content_type.to_ascii_lowercase(), size))
}

fn check_image(content_type: &str, name: &str) -> Result<(), ApiError> {
    let lower = name.to_ascii_lowercase();
    let image = matches!(content_type, "image/jpeg" | "image/png")
        || lower.ends_with(".jpg")
        || lower.ends_with(".jpeg")
        || lower.ends_with(".png");
    if image {
        Ok(())
    } else {
        Err(ApiError::new(
            40005,
            format!("invalid file type: {content_type} {name:?}"),
        ))
    }
}

/// `media/upload`.
pub(crate) fn upload(state: &mut State, req: &Req) -> ApiResult {
    let kind = req.q("type").unwrap_or_default().to_owned();
    let limit: u64 = match kind.as_str() {
        "image" | "video" => 10 * 1024 * 1024,
        "voice" => 2 * 1024 * 1024,
        "file" => 20 * 1024 * 1024,
        _ => return Err(ApiError::new(40004, format!("invalid media type {kind:?}"))),
    };
    let (file_name, content_type, size) = file_of(req)?;
    if kind == "image" {
        check_image(&content_type, &file_name)?;
    }
    if kind == "video"
        && content_type != "video/mp4"
        && !file_name.to_ascii_lowercase().ends_with(".mp4")
    {
        return Err(ApiError::new(40005, "invalid file type: a video is MP4"));
    }
    if !(5..=limit).contains(&size) {
        return Err(ApiError::new(40006, format!("invalid file size {size}")));
    }
    let media_id = format!(
        "3{}",
        crate::server::random_string(40, crate::server::ALNUM)
    );
    let media = Media {
        media_id: media_id.clone(),
        kind: kind.clone(),
        file_name,
        content_type,
        size,
        created_ms: req.now_ms,
    };
    state.rt.media.by_id.insert(media_id.clone(), media.clone());
    state.rt.media.uploads.push(media);
    let mut out = Obj::new();
    out.insert("type".into(), json!(kind));
    out.insert("media_id".into(), json!(media_id));
    out.insert("created_at".into(), json!((req.now_ms / 1000).to_string()));
    Ok(out)
}

/// `media/uploadimg`: a lasting URL.
pub(crate) fn uploadimg(state: &mut State, req: &Req) -> ApiResult {
    let (file_name, content_type, size) = file_of(req)?;
    check_image(&content_type, &file_name)?;
    if !(5..=2 * 1024 * 1024).contains(&size) {
        return Err(ApiError::new(40006, format!("invalid file size {size}")));
    }
    let id = crate::server::random_string(24, crate::server::ALNUM);
    let url = format!("https://wework.qpic.cn/wwpic/{id}/0");
    state.rt.media.uploads.push(Media {
        media_id: url.clone(),
        kind: "uploadimg".into(),
        file_name,
        content_type,
        size,
        created_ms: req.now_ms,
    });
    let mut out = Obj::new();
    out.insert("url".into(), json!(url));
    Ok(out)
}

/// Whether a message's attachments name media that exist, of their kind, still valid.
pub(crate) fn check_attachments(
    state: &State,
    attachments: &[Value],
    now_ms: u64,
) -> Result<(), ApiError> {
    for a in attachments {
        let kind = a.get("msgtype").and_then(Value::as_str).unwrap_or_default();
        // WeCom's byte limits of cards' texts
        let limits: &[(&str, usize)] = match kind {
            "link" => &[
                ("/link/title", 128),
                ("/link/desc", 512),
                ("/link/url", 2048),
            ],
            "miniprogram" => &[("/miniprogram/title", 64)],
            _ => &[],
        };
        for (pointer, max) in limits {
            let len = a
                .pointer(pointer)
                .and_then(Value::as_str)
                .map_or(0, str::len);
            if len > *max {
                return Err(ApiError::new(
                    45002,
                    format!("content size out of limit: {pointer} over {max} bytes"),
                ));
            }
        }
        let (field, wanted) = match kind {
            "image" => (a.pointer("/image/media_id"), "image"),
            "video" => (a.pointer("/video/media_id"), "video"),
            "file" => (a.pointer("/file/media_id"), "file"),
            "miniprogram" => (a.pointer("/miniprogram/pic_media_id"), "image"),
            _ => continue,
        };
        if kind == "image" && field.is_none() && a.pointer("/image/pic_url").is_some() {
            continue;
        }
        let id = field.and_then(Value::as_str).unwrap_or_default();
        let valid = state
            .rt
            .media
            .by_id
            .get(id)
            .is_some_and(|m| m.kind == wanted && m.created_ms + MEDIA_LASTS_MS > now_ms);
        if !valid {
            return Err(ApiError::new(40007, format!("invalid media_id {id:?}")));
        }
        if kind == "miniprogram" {
            for key in ["title", "appid", "page"] {
                if a.pointer(&format!("/miniprogram/{key}"))
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(ApiError::new(41065, format!("miniprogram {key} missing")));
                }
            }
        }
    }
    Ok(())
}

/// Reads a `multipart/form-data` body into `{"media": {"filename", "content_type",
/// "size"}}` (the part named `media`); `None` when it is not one.
pub(crate) fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Value> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        let after = &rest[at + delimiter.len()..];
        if after.starts_with(b"--") {
            break;
        }
        let next = find(after, delimiter.as_bytes()).unwrap_or(after.len());
        parts.push(&after[..next]);
        rest = &after[next..];
    }
    for part in parts {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut content = &part[split + 4..];
        content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
        if !disposition.contains("name=\"media\"") {
            continue;
        }
        let filename = disposition
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("filename="))
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        let part_type = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        return Some(
            json!({"media": {"filename": filename, "content_type": part_type,
                                     "size": content.len()}}),
        );
    }
    Some(json!({}))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::parse_multipart;

    #[test]
    fn a_multipart_body_gives_its_media_part() {
        let body =
            b"--xyz\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\n\
                     Content-Type: image/png\r\n\r\n\x89PNG\r\n1234\r\n--xyz--\r\n";
        let parsed = parse_multipart("multipart/form-data; boundary=xyz", body).unwrap();
        assert_eq!(parsed["media"]["filename"], "a.png");
        assert_eq!(parsed["media"]["content_type"], "image/png");
        assert_eq!(parsed["media"]["size"], 10);
        assert!(parse_multipart("application/json", b"{}").is_none());
    }
}
