//! The short links a send's link cards lead through: one `tracked_links` row per card
//! (`broadcast_id`, `content_id`), made in the transaction that stores the send, so
//! that clicks count per send and per content item (`content_performance`) the way
//! every link's do (as their `Link Clicked` events are applied).
//!
//! The card's short link is decided before (`BroadcastAttachment::track`, under a
//! registered destination only); the row is its destination, named after the send and
//! the item, with UTM parameters that tell the brand's analytics it came from a siyu
//! send. Made by the send's maker, so that the link is within the reach the send is.
//! A change of the send (made before its time) renames its links and retires those no
//! card carries any more: they were never sent. Links made for sends are not listed,
//! read or changed with the links staff make (they are the send's and change with
//! it), and do not hold a destination in place; their clicks show in the links report
//! like any.

use siyu_domain::engagement::broadcast::BroadcastSpec;
use siyu_domain::engagement::content::BroadcastAttachment;
use siyu_domain::ids::{BroadcastId, StaffId, TenantId};

use crate::db::now_ms;
use crate::tx::{Placeholders, Tx, on_tx};
use crate::{Result, StoreError};

/// The longest name a send's link gets (the send's name and the item's title).
const NAME_MAX_CHARS: usize = 200;

/// Makes the links of a send's tracked cards not among `kept` (those made before, when
/// a change leaves the cards as they were), names the kept ones after the send as it is
/// now, and retires (deletes) the send's links no card carries any more: a send is
/// changed only before its time, so those were never sent.
pub(super) async fn record_send_links(
    tx: &mut Tx,
    tenant: TenantId,
    send: BroadcastId,
    spec: &BroadcastSpec,
    made_by: Option<StaffId>,
    kept: &[BroadcastAttachment],
) -> Result<()> {
    let now = now_ms();
    let campaign: String = spec.name.chars().take(NAME_MAX_CHARS).collect();
    let mut carried: Vec<&str> = Vec::new();
    for item in &spec.attachments {
        let (Some(link), Some(destination)) = (&item.tracked_link, &item.body.url) else {
            continue;
        };
        carried.push(&link.slug);
        let name: String = format!("{} · {}", spec.name, item.title)
            .chars()
            .take(NAME_MAX_CHARS)
            .collect();
        if kept.iter().any(|k| k.tracked_link.as_ref() == Some(link)) {
            on_tx!(tx, |c| {
                sqlx::query(
                    "UPDATE tracked_links SET name = $1, utm_campaign = $2, updated_at = $3 \
                     WHERE tenant_id = $4 AND broadcast_id = $5 AND slug = $6",
                )
                .bind(&name)
                .bind(&campaign)
                .bind(now)
                .bind(tenant.0)
                .bind(send.0)
                .bind(&link.slug)
                .execute(&mut *c)
                .await?;
            });
            continue;
        }
        let inserted = on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO tracked_links (tenant_id, slug, name, destination, utm_source, \
                 utm_medium, utm_campaign, created_by_staff_id, created_at, updated_at, \
                 broadcast_id, content_id) \
                 VALUES ($1, $2, $3, $4, 'siyu', $5, $6, $7, $8, $8, $9, $10) \
                 ON CONFLICT (slug) DO NOTHING",
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
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            // 47.6 random bits: all but impossible, and the same request made again
            // draws another
            return Err(StoreError::Conflict(
                "a link card's new short link clashed with another's: send it again".into(),
            ));
        }
    }
    let mut p = Placeholders::for_tx(tx);
    let (deleted_p, updated_p, tenant_p, send_p) = (p.next(), p.next(), p.next(), p.next());
    let still = if carried.is_empty() {
        String::new()
    } else {
        let slugs: Vec<String> = carried.iter().map(|_| p.next()).collect();
        format!(" AND slug NOT IN ({})", slugs.join(", "))
    };
    let sql = format!(
        "UPDATE tracked_links SET deleted_at = {deleted_p}, updated_at = {updated_p} \
         WHERE tenant_id = {tenant_p} AND broadcast_id = {send_p} AND deleted_at IS NULL{still}"
    );
    on_tx!(tx, |c| {
        let mut query = sqlx::query(&sql)
            .bind(now)
            .bind(now)
            .bind(tenant.0)
            .bind(send.0);
        for slug in &carried {
            query = query.bind(*slug);
        }
        query.execute(&mut *c).await?;
    });
    Ok(())
}
