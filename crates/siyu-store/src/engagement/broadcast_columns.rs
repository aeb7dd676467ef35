//! How a send's columns hold what is not a plain value: its audience, the template it
//! renders and the library items it carries, each as JSON (a snapshot, so that a later
//! change to the template or an item does not change the send).

use siyu_domain::engagement::broadcast::{BroadcastAudience, BroadcastSpec};
use siyu_domain::engagement::content::BroadcastAttachment;
use siyu_domain::engagement::template::TemplateSnapshot;

use crate::{Result, StoreError};

/// The template column: the snapshot as JSON, or NULL.
pub(crate) fn template_text(spec: &BroadcastSpec) -> Result<Option<String>> {
    spec.template
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("template: {e}")))
}

/// Reads the template column.
pub(crate) fn template_of(text: Option<&str>) -> Result<Option<TemplateSnapshot>> {
    text.map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("a send's template: {e}")))
}

pub(crate) fn audience_text(audience: &BroadcastAudience) -> Result<String> {
    serde_json::to_string(audience).map_err(|e| StoreError::Corrupt(format!("audience: {e}")))
}

/// The attachments column: the items as JSON, or NULL for none.
pub(crate) fn attachments_text(spec: &BroadcastSpec) -> Result<Option<String>> {
    if spec.attachments.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&spec.attachments)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("attachments: {e}")))
}

/// Reads the attachments column.
pub(crate) fn attachments_of(text: Option<&str>) -> Result<Vec<BroadcastAttachment>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("a send's attachments: {e}"))),
    }
}
