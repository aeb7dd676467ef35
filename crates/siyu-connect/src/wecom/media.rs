//! Media (WECOM.md "Media"): files uploaded to WeCom so that messages can carry them.
//! `media/upload` gives a `media_id` that lasts 3 days (images, videos and files sent
//! as attachments, a mini-program card's picture); `media/uploadimg` gives a lasting
//! image URL (a link card's picture).

use serde::Deserialize;

use super::client::{Upload, WecomClient, WecomHost};
use super::error::WecomError;

/// How long a `media_id` lasts, in milliseconds.
pub const MEDIA_LASTS_MS: i64 = 3 * 86_400_000;

/// What `media/upload` takes a file as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    File,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::File => "file",
        }
    }
}

#[derive(Deserialize)]
struct Uploaded {
    media_id: String,
}

#[derive(Deserialize)]
struct UploadedImage {
    url: String,
}

impl<H: WecomHost> WecomClient<H> {
    /// Uploads a file as temporary media (`media/upload`): its `media_id`, valid for
    /// [`MEDIA_LASTS_MS`].
    pub async fn upload_media(
        &self,
        kind: MediaKind,
        file: &Upload<'_>,
    ) -> Result<String, WecomError> {
        let uploaded: Uploaded = self
            .upload("media/upload", &[("type", kind.as_str())], file)
            .await?;
        if uploaded.media_id.is_empty() {
            return Err(WecomError::Transient(
                "media/upload answered no media_id".into(),
            ));
        }
        Ok(uploaded.media_id)
    }

    /// Uploads an image for good (`media/uploadimg`): its URL, for a link card.
    pub async fn upload_image(&self, file: &Upload<'_>) -> Result<String, WecomError> {
        let uploaded: UploadedImage = self.upload("media/uploadimg", &[], file).await?;
        if uploaded.url.is_empty() {
            return Err(WecomError::Transient(
                "media/uploadimg answered no url".into(),
            ));
        }
        Ok(uploaded.url)
    }
}
