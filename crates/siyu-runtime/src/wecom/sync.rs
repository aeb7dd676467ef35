//! The `wecom.sync` job: a WeCom corp's departments and members onto units and staff,
//! its corp tags onto mirrored tag groups, and every member's external contacts onto
//! customers (see `siyu-store`'s `connectors` module for how each is stored).
//!
//! The customer part reads `batch/get_by_user` (100 members a call, 100 relations a
//! page) and stores each page in one transaction with the checkpoint of the next, so a
//! try cut off anywhere (a crash, a lost lease, WeCom's 45009) continues after the last
//! stored page, losing and doubling nothing. The members it reads are fixed in the
//! checkpoint when it starts. A paused API postpones the job to the pause's end without
//! counting a try; a configuration error (a revoked secret) ends it at once, the
//! connector marked unhealthy by the client.

use siyu_connect::wecom::api::{ContactWithFollow, CorpTagGroup, MEMBERS_PER_BATCH};
use siyu_connect::wecom::{WecomApp, WecomClient, WecomError, http_client};
use siyu_domain::audit::Actor;
use siyu_domain::connector::{
    CUSTOMER_SYNC, ConnectorKind, CustomerSyncCheckpoint, WecomConnector, WecomSyncPayload,
};
use siyu_domain::ids::{ConnectorId, TenantId};
use siyu_store::{
    StoreError, SyncPosition, TenantScope, WecomContactRecord, WecomDepartmentRecord,
    WecomFollowRecord, WecomMemberRecord, WecomTagGroupRecord, WecomTagRecord,
};

use super::host::StoreHost;
use crate::Services;
use crate::runner::{JobContext, JobError, JobHandler, handler_fn};

/// The sync job's handler.
pub fn handler(services: &Services) -> impl JobHandler {
    let services = services.clone();
    handler_fn(siyu_domain::jobs::kind::WECOM_SYNC, move |ctx| {
        let services = services.clone();
        async move { run(&services, ctx).await }
    })
}

/// What the sync did, for its log line and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub members: u64,
    pub staff_created: u64,
    pub members_left: u64,
    pub tags: u64,
    pub relations: u64,
    pub identified: u64,
    pub added: u64,
    pub ended: u64,
    pub chats: u64,
}

async fn run(services: &Services, ctx: JobContext) -> Result<(), JobError> {
    let payload: WecomSyncPayload = ctx.payload()?;
    let tenant = ctx
        .job
        .tenant
        .ok_or_else(|| JobError::permanent("a WeCom sync belongs to a tenant; this one to none"))?;
    let report = sync(services, &ctx, tenant, &payload).await?;
    if payload.scope.customers() {
        // the personal tags the sync could not bring, read in the background
        let sweep = super::personal_tags::sweep_job(
            tenant,
            payload.connector_id,
            super::personal_tags::AFTER_SYNC,
        );
        services.store.tenant(tenant).enqueue(&[sweep]).await?;
    }
    tracing::info!(
        connector = payload.connector_id.0,
        members = report.members,
        relations = report.relations,
        identified = report.identified,
        added = report.added,
        ended = report.ended,
        chats = report.chats,
        "WeCom sync finished"
    );
    Ok(())
}

/// The client of a connector, its secrets opened; a connector that is gone or not
/// WeCom's ends the job.
pub async fn client_for(
    services: &Services,
    tenant: TenantId,
    id: ConnectorId,
) -> Result<(WecomClient<StoreHost>, WecomConnector), JobError> {
    let opened = match services.store.tenant(tenant).connector_secrets(id).await {
        Ok(opened) => opened,
        Err(StoreError::NotFound(_)) => {
            return Err(JobError::permanent(format!(
                "connector {} was deleted: nothing is done",
                id.0
            )));
        }
        Err(e) => return Err(JobError::retry(e)),
    };
    if opened.connector.kind != ConnectorKind::Wecom {
        return Err(JobError::permanent(format!(
            "connector {} is not a WeCom connector",
            id.0
        )));
    }
    let wecom = WecomConnector::read(&opened.connector.config, &opened.secrets)
        .map_err(|e| JobError::permanent(format!("connector {}: {e}", id.0)))?;
    let app = WecomApp {
        api_base_url: wecom.settings.api_base_url.trim_end_matches('/').to_owned(),
        corp_id: wecom.settings.corp_id.clone(),
        secret: wecom.secrets.secret.clone(),
    };
    let host = services.wecom.host(services.store.clone(), tenant, id);
    Ok((WecomClient::new(http_client(), app, host), wecom))
}

/// A WeCom error as a job's outcome: a pause postpones it, a configuration error ends
/// it, the rest is tried again.
pub fn job_error(error: WecomError) -> JobError {
    match error {
        WecomError::RateLimited { api, until_ms } => JobError::Later {
            at: until_ms,
            reason: format!("WeCom paused {api} (45009): waiting until the pause ends"),
        },
        e @ WecomError::Configuration { .. } => JobError::permanent(e),
        e => JobError::retry(e),
    }
}

/// Runs a sync (the job's work; the benchmark calls it too).
pub async fn sync(
    services: &Services,
    ctx: &JobContext,
    tenant: TenantId,
    payload: &WecomSyncPayload,
) -> Result<SyncReport, JobError> {
    let id = payload.connector_id;
    let (client, wecom) = client_for(services, tenant, id).await?;
    let scope = services.store.tenant(tenant);
    let actor = Actor::system(format!("WeCom connector {}", id.0));
    let mut report = SyncReport::default();
    if payload.scope.staff() {
        sync_staff(&client, &scope, id, &wecom, &actor, &mut report).await?;
    }
    if payload.scope.customers() {
        let groups = client.corp_tags().await.map_err(job_error)?;
        let mirrored = scope
            .mirror_wecom_tags(id, &tag_records(&groups), &actor)
            .await?;
        report.tags = mirrored.tags;
        let members = sync_customers(&client, ctx, &scope, id, &actor, &mut report).await?;
        // the chats of the same members, once their customers are linked
        let context = scope.wecom_context(id, &actor).await?;
        let chats = super::chats::sync_chats(&client, &scope, id, &context, &members).await?;
        report.chats = chats.chats;
    }
    Ok(report)
}

async fn sync_staff(
    client: &WecomClient<StoreHost>,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    wecom: &WecomConnector,
    actor: &Actor,
    report: &mut SyncReport,
) -> Result<(), JobError> {
    let departments = client.departments().await.map_err(job_error)?;
    let records: Vec<WecomDepartmentRecord> = departments
        .iter()
        .map(|d| WecomDepartmentRecord {
            department_id: d.id,
            name: d.name.clone(),
            parent_id: d.parentid,
        })
        .collect();
    scope.save_wecom_departments(id, &records).await?;
    let mut userids: Vec<String> = client
        .member_ids()
        .await
        .map_err(job_error)?
        .into_iter()
        .map(|m| m.userid)
        .collect();
    userids.sort();
    userids.dedup();
    let units = scope.wecom_department_units(id).await?;
    let role = &wecom.settings.member_role;
    let data_scope = wecom.settings.member_scope;
    let mut listed = std::collections::HashSet::new();
    for userid in &userids {
        let Some(member) = client.member(userid).await.map_err(job_error)? else {
            continue;
        };
        listed.insert(member.userid.clone());
        let main = member
            .main_department
            .or_else(|| member.department.first().copied());
        let record = WecomMemberRecord {
            userid: member.userid.clone(),
            name: member.name.clone(),
            main_department: main,
            status: member.status,
        };
        let unit = units.unit_for(main);
        let synced = scope
            .sync_wecom_member(id, &record, unit, role, data_scope, actor)
            .await
            .map_err(|e| match e {
                // the connector names a role that is gone: an admin must fix it
                StoreError::NotFound("role") => JobError::permanent(format!(
                    "connector {}: member_role {role:?} names no role",
                    id.0
                )),
                e => JobError::from(e),
            })?;
        report.members += 1;
        if matches!(synced, siyu_store::MemberSynced::Created(_)) {
            report.staff_created += 1;
        }
    }
    for known in scope.wecom_members(id).await? {
        if known.left_at.is_none() && !listed.contains(&known.userid) {
            scope.wecom_member_left(id, &known.userid, actor).await?;
            report.members_left += 1;
        }
    }
    Ok(())
}

async fn sync_customers(
    client: &WecomClient<StoreHost>,
    ctx: &JobContext,
    scope: &TenantScope<'_>,
    id: ConnectorId,
    actor: &Actor,
    report: &mut SyncReport,
) -> Result<Vec<String>, JobError> {
    let state = scope
        .begin_connector_sync(id, CUSTOMER_SYNC, ctx.id())
        .await?;
    let started_at = state.started_at.unwrap_or_else(siyu_store::now_ms);
    let mut checkpoint: CustomerSyncCheckpoint =
        serde_json::from_value(state.checkpoint).unwrap_or_default();
    if !checkpoint.started {
        let mut members = client.follow_users().await.map_err(job_error)?;
        members.sort();
        members.dedup();
        checkpoint = CustomerSyncCheckpoint {
            members,
            batch: 0,
            cursor: String::new(),
            started: true,
        };
        save(scope, id, ctx, &checkpoint, actor).await?;
    } else {
        tracing::info!(
            connector = id.0,
            batch = checkpoint.batch,
            relations = state.items,
            "WeCom customer sync continues"
        );
    }
    let context = scope.wecom_context(id, actor).await?;
    let mut done = state.items;
    let batches: Vec<Vec<String>> = checkpoint
        .members
        .chunks(MEMBERS_PER_BATCH)
        .map(<[String]>::to_vec)
        .collect();
    while checkpoint.batch < batches.len() {
        let read_at = siyu_store::now_ms();
        let page = client
            .contacts_page(&batches[checkpoint.batch], &checkpoint.cursor)
            .await
            .map_err(job_error)?;
        let records: Vec<WecomContactRecord> = page
            .external_contact_list
            .iter()
            .map(contact_record)
            .collect();
        let mut next = checkpoint.clone();
        if page.next_cursor.is_empty() {
            next.batch += 1;
            next.cursor.clear();
        } else {
            next.cursor = page.next_cursor;
        }
        let position = serde_json::to_value(&next).map_err(JobError::permanent)?;
        let stored = scope
            .store_wecom_contacts(
                id,
                &context,
                &records,
                Some(SyncPosition {
                    what: CUSTOMER_SYNC,
                    job: ctx.id(),
                    checkpoint: &position,
                }),
                Some(read_at),
                actor,
            )
            .await?;
        if stored.stale {
            // a tag was marked on one of its relations since it was read: again
            continue;
        }
        checkpoint = next;
        report.relations += stored.relations;
        report.identified += stored.identified;
        report.added += stored.added;
        done += stored.relations as i64;
        ctx.progress(done, None, Some("reading WeCom's external contacts"))
            .await?;
    }
    let finished = scope
        .finish_wecom_customer_sync(id, CUSTOMER_SYNC, ctx.id(), started_at, actor)
        .await?;
    report.ended = finished.ended;
    Ok(checkpoint.members)
}

async fn save(
    scope: &TenantScope<'_>,
    id: ConnectorId,
    ctx: &JobContext,
    checkpoint: &CustomerSyncCheckpoint,
    actor: &Actor,
) -> Result<(), JobError> {
    let value = serde_json::to_value(checkpoint).map_err(JobError::permanent)?;
    let context = scope.wecom_context(id, actor).await?;
    scope
        .store_wecom_contacts(
            id,
            &context,
            &[],
            Some(SyncPosition {
                what: CUSTOMER_SYNC,
                job: ctx.id(),
                checkpoint: &value,
            }),
            None,
            actor,
        )
        .await?;
    Ok(())
}

fn contact_record(item: &ContactWithFollow) -> WecomContactRecord {
    let c = &item.external_contact;
    let f = &item.follow_info;
    WecomContactRecord {
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
            tag_ids: f.tag_id.clone(),
            add_way: f.add_way,
            state: f.state.clone(),
            oper_userid: f.oper_userid.clone(),
            personal_tags: None,
        },
    }
}

pub fn tag_records(groups: &[CorpTagGroup]) -> Vec<WecomTagGroupRecord> {
    groups
        .iter()
        .filter(|g| !g.deleted)
        .map(|g| WecomTagGroupRecord {
            group_id: g.group_id.clone(),
            name: g.group_name.clone(),
            tags: g
                .tag
                .iter()
                .filter(|t| !t.deleted)
                .map(|t| WecomTagRecord {
                    tag_id: t.id.clone(),
                    name: t.name.clone(),
                })
                .collect(),
        })
        .collect()
}
