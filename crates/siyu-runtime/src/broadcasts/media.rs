//! What a WeCom send's attachments become on WeCom: the library's files uploaded as
//! media when a batch is sent, and kept (`content_media`) for the next batches and
//! sends. A `media_id` lasts 3 days: one older than 3 days less an hour is uploaded
//! again rather than risk WeCom refusing the call. A link card's picture is uploaded
//! once for good (`media/uploadimg`, a lasting URL).
//!
//! Uploads happen before the batch is claimed, so that the claim's window covers only
//! the `add_msg_template` call; a try that then finds nothing to send has at most
//! uploaded what the next batch uses.

use siyu_connect::wecom::Upload;
use siyu_connect::wecom::mass::MassAttachment;
use siyu_connect::wecom::media::{MEDIA_LASTS_MS, MediaKind};
use siyu_domain::engagement::content::{BroadcastAttachment, ContentKind};
use siyu_domain::ids::{ConnectorId, FileId};
use siyu_store::{StoredMedia, TenantScope};

use siyu_connect::wecom::WecomError;

use crate::JobError;
use crate::wecom::sync::job_error;

/// An upload's failure as the job's: WeCom refusing the file (its type or size, an
/// errcode) will refuse it again, so the job ends with the reason instead of retrying;
/// the rest as any WeCom call's.
fn upload_error(error: WecomError) -> JobError {
    match error {
        WecomError::Call {
            api,
            errcode,
            message,
        } => JobError::permanent(format!(
            "WeCom refused a file of the send ({api}: {errcode} {message}): change the item \
             and send again"
        )),
        e => job_error(e),
    }
}

type Client = siyu_connect::wecom::WecomClient<crate::wecom::StoreHost>;

/// How long before WeCom forgets a `media_id` siyu uploads it again.
const MEDIA_MARGIN_MS: i64 = 3_600_000;

/// The send's items as WeCom's attachments, their files uploaded as needed.
pub(super) async fn mass_attachments(
    client: &Client,
    scope: &TenantScope<'_>,
    connector: ConnectorId,
    items: &[BroadcastAttachment],
) -> Result<Vec<MassAttachment>, JobError> {
    let mut attachments = Vec::with_capacity(items.len());
    for item in items {
        let body = &item.body;
        let needed = |file: Option<FileId>| {
            file.ok_or_else(|| {
                JobError::permanent(format!("attachment {} names no file", item.content_id.0))
            })
        };
        let attachment = match item.kind {
            ContentKind::Image => MassAttachment::Image {
                media_id: media(
                    client,
                    scope,
                    connector,
                    needed(body.file_id)?,
                    MediaKind::Image,
                )
                .await?,
            },
            ContentKind::Video => MassAttachment::Video {
                media_id: media(
                    client,
                    scope,
                    connector,
                    needed(body.file_id)?,
                    MediaKind::Video,
                )
                .await?,
            },
            ContentKind::File => MassAttachment::File {
                media_id: media(
                    client,
                    scope,
                    connector,
                    needed(body.file_id)?,
                    MediaKind::File,
                )
                .await?,
            },
            ContentKind::Link => MassAttachment::Link {
                title: item.title.clone(),
                // its short link when it has one, so that its clicks count
                url: item.card_url().unwrap_or_default().to_owned(),
                picurl: match body.image_file_id {
                    Some(file) => Some(image_url(client, scope, connector, file).await?),
                    None => None,
                },
                desc: body.description.clone(),
            },
            ContentKind::Miniprogram => MassAttachment::Miniprogram {
                title: item.title.clone(),
                pic_media_id: media(
                    client,
                    scope,
                    connector,
                    needed(body.image_file_id)?,
                    MediaKind::Image,
                )
                .await?,
                appid: body.appid.clone().unwrap_or_default(),
                page: body.page.clone().unwrap_or_default(),
            },
            ContentKind::Text | ContentKind::Article => {
                return Err(JobError::permanent(format!(
                    "attachment {} is a {}, which a WeCom send does not carry",
                    item.content_id.0,
                    item.kind.as_str()
                )));
            }
        };
        attachments.push(attachment);
    }
    Ok(attachments)
}

/// What a file becomes on WeCom, and how long that lasts.
#[derive(Clone, Copy)]
enum Made {
    /// A `media_id` (`media/upload`), for [`MEDIA_LASTS_MS`].
    Media(MediaKind),
    /// A lasting image URL (`media/uploadimg`).
    ImageUrl,
}

/// A file's `media_id` on the connector's corp: the one kept while it lasts, else a new
/// upload.
async fn media(
    client: &Client,
    scope: &TenantScope<'_>,
    connector: ConnectorId,
    file: FileId,
    kind: MediaKind,
) -> Result<String, JobError> {
    kept_or_uploaded(client, scope, connector, file, Made::Media(kind)).await
}

/// An image's lasting URL on WeCom, uploaded once.
async fn image_url(
    client: &Client,
    scope: &TenantScope<'_>,
    connector: ConnectorId,
    file: FileId,
) -> Result<String, JobError> {
    kept_or_uploaded(client, scope, connector, file, Made::ImageUrl).await
}

/// What was kept of the file for `made` while it lasts, else a new upload, kept.
async fn kept_or_uploaded(
    client: &Client,
    scope: &TenantScope<'_>,
    connector: ConnectorId,
    file: FileId,
    made: Made,
) -> Result<String, JobError> {
    let purpose = match made {
        Made::Media(kind) => format!("media:{}", kind.as_str()),
        Made::ImageUrl => "image_url".to_owned(),
    };
    let now = siyu_store::now_ms();
    if let Some(kept) = scope.content_media(connector, file, &purpose).await? {
        let lasts = match made {
            Made::Media(_) => kept.uploaded_at + MEDIA_LASTS_MS - MEDIA_MARGIN_MS > now,
            Made::ImageUrl => true,
        };
        if lasts {
            return Ok(kept.media_id);
        }
    }
    let (info, bytes) = scope.content_file(file).await?;
    let upload = Upload {
        file_name: &info.name,
        content_type: &info.content_type,
        bytes: &bytes,
    };
    let media_id = match made {
        Made::Media(kind) => client.upload_media(kind, &upload).await,
        Made::ImageUrl => client.upload_image(&upload).await,
    }
    .map_err(upload_error)?;
    let stored = StoredMedia {
        media_id,
        uploaded_at: now,
    };
    scope
        .record_content_media(connector, file, &purpose, &stored)
        .await?;
    Ok(stored.media_id)
}
