//! The short links a send's link cards lead through: one `tracked_links` row per card
//! (`broadcast_id`, `content_id`), made in the transaction that stores the send, so
//! that clicks count per send and per content item (`content_performance`) the way
//! every link's do (as their `Link Clicked` events are applied).
//!
//! The card's short link is decided before (`BroadcastAttachment::track`, under a
//! registered destination only); the row is its destination, named after the send and
//! the item, with UTM parameters that tell the brand's analytics it came from a siyu
//! send. Made by the send's maker, so that the link is within the reach the send is.
//! Links made for sends are not listed with the links staff make (they are the send's
//! and change with it), but their clicks show in the links report like any.

use siyu_domain::engagement::broadcast::BroadcastSpec;
use siyu_domain::engagement::content::BroadcastAttachment;
use siyu_domain::ids::{BroadcastId, StaffId, TenantId};

use crate::Result;
use crate::db::now_ms;
use crate::tx::{Tx, on_tx};

/// The longest name a send's link gets (the send's name and the item's title).
const NAME_MAX_CHARS: usize = 200;

/// Makes the links of a send's tracked cards not among `kept` (those made before, when
/// a change leaves the cards as they were).
pub(super) async fn record_send_links(
    tx: &mut Tx,
    tenant: TenantId,
    send: BroadcastId,
    spec: &BroadcastSpec,
    made_by: Option<StaffId>,
    kept: &[BroadcastAttachment],
) -> Result<()> {
    let now = now_ms();
    for item in &spec.attachments {
        let (Some(link), Some(destination)) = (&item.tracked_link, &item.body.url) else {
            continue;
        };
        if kept.iter().any(|k| k.tracked_link.as_ref() == Some(link)) {
            continue;
        }
        let name: String = format!("{} · {}", spec.name, item.title)
            .chars()
            .take(NAME_MAX_CHARS)
            .collect();
        let campaign: String = spec.name.chars().take(200).collect();
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO tracked_links (tenant_id, slug, name, destination, utm_source, \
                 utm_medium, utm_campaign, created_by_staff_id, created_at, updated_at, \
                 broadcast_id, content_id) \
                 VALUES ($1, $2, $3, $4, 'siyu', $5, $6, $7, $8, $8, $9, $10)",
            )
            .bind(tenant.0)
            .bind(&link.slug)
            .bind(&name)
            .bind(destination)
            .bind(spec.channel.as_str())
            .bind(&campaign)
            .bind(made_by.map(|s| s.0))
            .bind(now)
            .bind(send.0)
            .bind(item.content_id.0)
            .execute(&mut *c)
            .await?;
        });
    }
    Ok(())
}
