//! One external contact read with `get` and stored: every relation, with corp and
//! personal tags. Callbacks (an add, a member's edit), a profile opened and the
//! personal tags sweep all read a contact this way.

use siyu_connect::wecom::api::ContactDetail;
use siyu_connect::wecom::{WecomClient, WecomError};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::ConnectorId;
use siyu_store::{ContactRead, TenantScope, WecomContactRecord, WecomContext, WecomFollowRecord};

use super::host::StoreHost;
use super::sync::job_error;
use crate::runner::JobError;

/// Reads of a contact before giving up the try (each made stale by a tag marked meanwhile).
const READS: usize = 5;

/// What reading a contact found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactReading {
    /// Stored; the profile, when the contact has one.
    Stored(Option<CustomerId>),
    /// WeCom relates the contact to no member any more (84061), or knows no such
    /// contact (40096).
    Gone,
}

/// Reads the contact with `get` and stores it; a read that a tag marked meanwhile made
/// stale is read again, up to five times in a try.
pub async fn read_contact(
    client: &WecomClient<StoreHost>,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    context: &WecomContext,
    external_userid: &str,
    actor: &Actor,
) -> Result<ContactReading, JobError> {
    for _ in 0..READS {
        let read_at = siyu_store::now_ms();
        let detail = match client.contact(external_userid).await {
            Ok(detail) => detail,
            // 84061: nobody in the corp has them; 40096: WeCom knows no such contact
            Err(WecomError::Call {
                errcode: 84061 | 40096,
                ..
            }) => return Ok(ContactReading::Gone),
            Err(e) => return Err(job_error(e)),
        };
        let records = contact_records(&detail);
        match scope
            .store_wecom_contact(id, context, external_userid, &records, read_at, actor)
            .await?
        {
            ContactRead::Stored(customer) => return Ok(ContactReading::Stored(customer)),
            ContactRead::Stale => continue,
        }
    }
    Err(JobError::retry(format!(
        "{external_userid}: tags were marked on it during each of {READS} reads"
    )))
}

/// A contact as `get` gives it, one record per relation, with corp tag ids and
/// personal tag names apart.
pub fn contact_records(detail: &ContactDetail) -> Vec<WecomContactRecord> {
    let c = &detail.external_contact;
    detail
        .follow_user
        .iter()
        .map(|f| WecomContactRecord {
            external_userid: c.external_userid.clone(),
            unionid: c.unionid.clone().filter(|u| !u.is_empty()),
            name: c.name.clone(),
            avatar: c.avatar.clone(),
            gender: c.gender,
            contact_type: c.contact_type,
            corp_name: c.corp_name.clone(),
            follow: WecomFollowRecord {
                userid: f.userid.clone(),
                remark: f.remark.clone(),
                description: f.description.clone(),
                added_at: f.createtime.saturating_mul(1_000),
                tag_ids: f
                    .tags
                    .iter()
                    .filter(|t| t.tag_type == 1)
                    .filter_map(|t| t.tag_id.clone())
                    .collect(),
                add_way: f.add_way,
                state: f.state.clone(),
                oper_userid: f.oper_userid.clone(),
                personal_tags: Some(
                    f.tags
                        .iter()
                        .filter(|t| t.tag_type == 2)
                        .map(|t| t.tag_name.clone())
                        .collect(),
                ),
            },
        })
        .collect()
}
