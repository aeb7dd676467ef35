//! The WeCom sync job under a real runner against the stand-in, on the test database
//! (SQLite, or PostgreSQL with SIYU_TEST_DATABASE_URL): every member, contact, follow
//! relation and corp tag exactly once; a second sync changes nothing; a sync cut off by
//! a dead runner or by 45009 goes on from its checkpoint and ends exact.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::json;
use siyu_domain::audience::TagOrigin;
use siyu_domain::audit::Actor;
use siyu_domain::connector::{CUSTOMER_SYNC, ConnectorConfig, SyncScope, WecomSyncPayload};
use siyu_domain::identity::{Identity, IdentityKind};
use siyu_domain::ids::{ConnectorId, JobId, TenantId};
use siyu_domain::jobs::JobState;
use siyu_domain::tenancy::NewTenant;
use siyu_runtime::wecom::WecomCalls;
use siyu_runtime::{Runner, RunnerHandle, Services};
use siyu_store::testing::TestDatabase;
use siyu_store::{NewJob, Store, TenantScope, WECOM_SOURCE};
use siyu_wecom_standin::{Corp, GENERATED_CORP_ID, GENERATED_SECRET, GenerateSpec, Standin};

async fn tenant(store: &Store) -> TenantId {
    let (tenant, _) = store
        .create_tenant(
            &NewTenant::new("wecom", "admin@wecom.example.com", "store-pass-7a").unwrap(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    tenant.id
}

async fn connector(scope: &TenantScope<'_>, standin: &Standin) -> ConnectorId {
    let config = ConnectorConfig::new(
        "wecom",
        "品牌企业微信",
        &json!({
            "corp_id": GENERATED_CORP_ID,
            "secret": GENERATED_SECRET,
            "token": "callbackToken1",
            "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "api_base_url": standin.base_url(),
        }),
    )
    .unwrap();
    scope
        .create_connector(&config, &Actor::cli())
        .await
        .unwrap()
        .id
}

async fn services(store: &Store) -> Services {
    Services {
        store: store.clone(),
        audiences: siyu_runtime::audience::Audiences::start(store.clone(), None)
            .await
            .unwrap(),
        wecom: WecomCalls::new(),
    }
}

fn runner(services: &Services, worker: &str, lease_ms: i64) -> RunnerHandle {
    Runner::new(services.store.clone(), worker)
        .handler(siyu_runtime::wecom::sync::handler(services))
        .lease(lease_ms)
        .poll(Duration::from_millis(50))
        .start()
}

async fn enqueue_sync(store: &Store, tenant: TenantId, id: ConnectorId) -> JobId {
    let payload = WecomSyncPayload {
        connector_id: id,
        scope: SyncScope::All,
    };
    let mut job = NewJob::new(
        siyu_domain::jobs::kind::WECOM_SYNC,
        serde_json::to_value(payload).unwrap(),
    );
    job.tenant = Some(tenant);
    store.enqueue(&[job]).await.unwrap()[0].unwrap()
}

/// Waits until the job has finished, for at most two minutes.
async fn finished(scope: &TenantScope<'_>, job: JobId) -> siyu_domain::jobs::Job {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let got = scope.get_job(job).await.unwrap();
        if got.state.is_finished() {
            return got;
        }
        assert!(
            Instant::now() < until,
            "job {job:?} did not finish: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn corp(contacts: usize) -> Corp {
    Corp::generate(&GenerateSpec {
        members: 4,
        contacts,
        tag_groups: 3,
        tags_per_group: 4,
        tagged_share: 0.7,
        seed: 7,
    })
}

/// Checks siyu holds exactly the stand-in's corp: members, contacts, live relations,
/// mirrored tags on the right customers, one `Contact Added` per relation and one
/// identify per contact.
async fn assert_mirrors(scope: &TenantScope<'_>, id: ConnectorId, standin: &Standin) {
    let (members, contacts, relations, expected_tags) = standin.with_corp(|corp| {
        let members: Vec<String> = corp.members().map(|m| m.userid.clone()).collect();
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        let mut relations = 0;
        for userid in &members {
            for ext in corp.customers_of(userid) {
                relations += 1;
                for tag in &corp.relation(userid, &ext).unwrap().tag_ids {
                    expected.insert((ext.clone(), tag.clone()));
                }
            }
        }
        (members, corp.contact_count(), relations, expected)
    });
    let (chats, chat_customers) = standin.with_corp(|corp| {
        let customers: BTreeSet<String> = corp
            .chats()
            .flat_map(|c| c.member_list.iter())
            .filter(|m| m.type_ == 2)
            .map(|m| m.userid.clone())
            .collect();
        (corp.chats().count(), customers.len())
    });
    let counts = scope.wecom_counts(id).await.unwrap();
    assert!(chats > 0, "the corp has group chats");
    assert_eq!(counts.group_chats as usize, chats, "{counts:?}");
    assert_eq!(counts.chat_customers as usize, chat_customers, "{counts:?}");
    assert_eq!(counts.members as usize, members.len(), "{counts:?}");
    assert_eq!(counts.contacts as usize, contacts, "{counts:?}");
    assert_eq!(counts.customers as usize, contacts, "{counts:?}");
    assert_eq!(counts.relations as usize, relations, "{counts:?}");
    assert_eq!(counts.relations_ended, 0);
    assert_eq!(counts.mirrored_tags, 12);
    // staff without email, one per member
    for member in scope.wecom_members(id).await.unwrap() {
        let staff = scope
            .get_staff(siyu_domain::ids::StaffId(member.staff_id))
            .await
            .unwrap();
        assert_eq!(staff.email, None);
        assert_eq!(staff.role, "service");
    }
    // every message once: an identify per contact and a Contact Added per relation
    let source = scope
        .list_sources(siyu_domain::page::PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|s| s.name == WECOM_SOURCE)
        .unwrap();
    let messages = scope.message_id_counts(source.id).await.unwrap();
    assert!(messages.values().all(|n| *n == 1), "a message stored twice");
    let added = messages
        .keys()
        .filter(|m| m.starts_with("wecom-added-"))
        .count();
    assert_eq!(added, relations);
    let joined = messages
        .keys()
        .filter(|m| m.starts_with("wecom-chat-joined-"))
        .count();
    let memberships = standin.with_corp(|corp| {
        corp.chats()
            .flat_map(|c| c.member_list.iter())
            .filter(|m| m.type_ == 2)
            .count()
    });
    assert_eq!(
        joined, memberships,
        "a Group Chat Joined per customer in a chat"
    );
    assert_eq!(messages.len() - added - joined, contacts);
    // the corp tags, on the right customers, owned by a member
    let tag_map = scope.wecom_tag_map(id).await.unwrap();
    let names: HashMap<_, _> = tag_map.iter().map(|(w, t)| (*t, w.clone())).collect();
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    let externals: BTreeSet<String> = expected_tags.iter().map(|(e, _)| e.clone()).collect();
    for ext in externals.iter().take(60) {
        let identity = Identity::new(
            IdentityKind::parse(IdentityKind::WECOM_EXTERNAL_USERID).unwrap(),
            ext,
        )
        .unwrap();
        let customer = scope.lookup_customer(&identity).await.unwrap();
        assert!(customer.owner_staff_id.is_some(), "{ext} has no owner");
        for tag in scope.customer_tags(customer.id).await.unwrap() {
            assert_eq!(tag.origin, TagOrigin::Wecom);
            got.insert((ext.clone(), names[&tag.tag_id].clone()));
        }
    }
    let wanted: BTreeSet<(String, String)> = expected_tags
        .into_iter()
        .filter(|(e, _)| externals.iter().take(60).any(|x| x == e))
        .collect();
    assert_eq!(got, wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_mirrors_the_corp_exactly_and_a_second_changes_nothing() {
    let standin = Standin::start(corp(600)).unwrap();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let services = services(&store).await;
    let handle = runner(&services, "w1", 30_000);

    let job = enqueue_sync(&store, tenant, id).await;
    let done = finished(&scope, job).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_mirrors(&scope, id, &standin).await;
    let calls = standin.calls("gettoken");
    assert_eq!(calls, 1, "one token serves the whole sync");

    // again: nothing new, nothing doubled
    let again = enqueue_sync(&store, tenant, id).await;
    assert_eq!(finished(&scope, again).await.state, JobState::Done);
    assert_mirrors(&scope, id, &standin).await;
    let sync = scope
        .connector_sync(id, CUSTOMER_SYNC)
        .await
        .unwrap()
        .unwrap();
    assert!(sync.finished_at.is_some());
    assert_eq!(sync.job_id, Some(again));

    // WeCom side changes: a member leaves, a relation ends, a tag is taken off
    let (gone_member, lost) = standin.with_corp(|corp| {
        let members: Vec<String> = corp.members().map(|m| m.userid.clone()).collect();
        let ext = corp.customers_of(&members[0])[0].clone();
        corp.remove_follow(&members[0], &ext);
        (members[3].clone(), ext)
    });
    assert!(standin.member_leaves(&gone_member));
    let third = enqueue_sync(&store, tenant, id).await;
    assert_eq!(finished(&scope, third).await.state, JobState::Done);
    let counts = scope.wecom_counts(id).await.unwrap();
    assert_eq!(counts.members_left, 1);
    assert!(counts.relations_ended >= 1, "{counts:?}");
    let left = scope
        .wecom_members(id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.userid == gone_member)
        .unwrap();
    let staff = scope
        .get_staff(siyu_domain::ids::StaffId(left.staff_id))
        .await
        .unwrap();
    assert_eq!(staff.status, siyu_domain::tenancy::StaffStatus::Disabled);
    let _ = lost;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_off_by_a_dead_runner_goes_on_from_its_checkpoint() {
    let standin = Standin::start(corp(3_000)).unwrap();
    standin.set_latency(Duration::from_millis(15));
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let services = services(&store).await;
    let first = runner(&services, "dies", 1_000);
    let job = enqueue_sync(&store, tenant, id).await;
    // wait until some pages are stored, then the runner dies without a word
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let items = scope
            .connector_sync(id, CUSTOMER_SYNC)
            .await
            .unwrap()
            .map_or(0, |s| s.items);
        if items >= 500 {
            break;
        }
        assert!(Instant::now() < until, "the sync made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(first);
    let pages_before = standin.calls("externalcontact/batch/get_by_user");
    let second = runner(&services, "takes-over", 1_000);
    let done = finished(&scope, job).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert!(done.attempts >= 2, "another try finished it: {done:?}");
    assert_mirrors(&scope, id, &standin).await;
    // it went on: the pages read after the takeover are the rest, not all again
    let relations = scope.wecom_counts(id).await.unwrap().relations as u64;
    let all_pages = relations.div_ceil(100) + 1;
    let pages = standin.calls("externalcontact/batch/get_by_user");
    assert!(
        pages - pages_before < all_pages,
        "{} pages after the takeover, {all_pages} in all",
        pages - pages_before
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_paused_by_45009_waits_and_resumes_exact() {
    let standin = Standin::start(corp(1_500)).unwrap();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let services = services(&store).await;
    // WeCom refuses the fifth page
    standin.set_rate_limit(4, 150_000);
    let handle = runner(&services, "w1", 30_000);
    let job = enqueue_sync(&store, tenant, id).await;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let pauses = scope.connector_api_pauses(id).await.unwrap();
        if !pauses.is_empty() {
            assert_eq!(pauses[0].api, "externalcontact/batch/get_by_user");
            break;
        }
        assert!(Instant::now() < until, "no pause was recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = scope.get_job(job).await.unwrap();
    assert!(!waiting.state.is_finished(), "{waiting:?}");
    // WeCom's minute passes
    standin.set_rate_limit(10_000, 150_000);
    standin.advance_clock(Duration::from_secs(61));
    let done = finished(&scope, job).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_mirrors(&scope, id, &standin).await;
    assert!(
        scope.connector_api_pauses(id).await.unwrap().is_empty(),
        "the first success after the pause clears it"
    );
    let health = scope.get_connector(id).await.unwrap().health;
    assert!(health.healthy);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_secret_ends_the_sync_and_marks_the_connector_unhealthy() {
    let standin = Standin::start(corp(50)).unwrap();
    standin.revoke_secret(GENERATED_SECRET);
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let services = services(&store).await;
    let handle = runner(&services, "w1", 30_000);
    let job = enqueue_sync(&store, tenant, id).await;
    let done = finished(&scope, job).await;
    assert_eq!(done.state, JobState::Dead, "{done:?}");
    assert_eq!(done.attempts, 1, "a configuration error is not tried again");
    let health = scope.get_connector(id).await.unwrap().health;
    assert!(!health.healthy);
    assert!(
        health.last_error.as_deref().unwrap_or("").contains("40001"),
        "{health:?}"
    );
    assert!(
        !done
            .last_error
            .unwrap_or_default()
            .contains(GENERATED_SECRET)
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_connector_ends_its_waiting_sync_with_a_clear_error() {
    let standin = Standin::start(corp(50)).unwrap();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let job = enqueue_sync(&store, tenant, id).await;
    scope.delete_connector(id, &Actor::cli()).await.unwrap();
    let services = services(&store).await;
    let handle = runner(&services, "w1", 30_000);
    let done = finished(&scope, job).await;
    assert_eq!(done.state, JobState::Dead);
    assert!(
        done.last_error.unwrap_or_default().contains("was deleted"),
        "the job says why"
    );
    assert_eq!(standin.calls("gettoken"), 0, "nothing was called");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_connector_ends_its_waiting_callbacks_with_a_clear_error() {
    use siyu_connect::wecom::callback::CallbackEvent;
    let standin = Standin::start(corp(50)).unwrap();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let member = standin.with_corp(|c| c.members().next().unwrap().userid.clone());
    let external = standin.with_corp(|c| c.customers_of(&member)[0].clone());
    // one event that would call WeCom (an add with a welcome code), one that would
    // touch only the store (the customer deleted the member)
    let events = [
        ("add_external_contact", Some("welcome-code-1")),
        ("del_follow_user", None),
    ];
    let mut jobs = Vec::new();
    for (change, welcome) in events {
        let event = CallbackEvent {
            event: Some("change_external_contact".into()),
            change_type: Some(change.into()),
            user_id: Some(member.clone()),
            external_user_id: Some(external.clone()),
            welcome_code: welcome.map(str::to_owned),
            ..CallbackEvent::default()
        };
        let job = NewJob::new(
            siyu_domain::jobs::kind::WECOM_CALLBACK,
            json!({"connector_id": id.0, "event": event}),
        )
        .for_tenant(tenant);
        jobs.push(scope.enqueue(&[job]).await.unwrap()[0].unwrap());
    }
    scope.delete_connector(id, &Actor::cli()).await.unwrap();
    let services = services(&store).await;
    let handle = Runner::new(store.clone(), "w1")
        .handler(siyu_runtime::wecom::callbacks::handler(&services))
        .poll(Duration::from_millis(50))
        .start();
    for job in jobs {
        let done = finished(&scope, job).await;
        assert_eq!(done.state, JobState::Dead, "{done:?}");
        assert_eq!(done.attempts, 1, "ended at once, not tried again: {done:?}");
        assert!(
            done.last_error.unwrap_or_default().contains("was deleted"),
            "the job says why"
        );
    }
    assert_eq!(standin.calls("gettoken"), 0, "nothing was called");
    assert_eq!(standin.calls("externalcontact/send_welcome_msg"), 0);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_personal_tags_sweep_reads_every_contact_once_in_paced_turns() {
    use siyu_runtime::wecom::personal_tags;
    use siyu_store::JobFilter;
    // 250 contacts: three turns of 100
    let standin = Standin::start(corp(250)).unwrap();
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = tenant(&store).await;
    let scope = store.tenant(tenant);
    let id = connector(&scope, &standin).await;
    let services = services(&store).await;
    let syncing = runner(&services, "w1", 30_000);
    let job = enqueue_sync(&store, tenant, id).await;
    assert_eq!(finished(&scope, job).await.state, JobState::Done);
    syncing.shutdown().await;
    // the sync asked for the sweep
    let filter = JobFilter {
        state: None,
        kind: Some(siyu_domain::jobs::kind::WECOM_PERSONAL_TAGS.into()),
    };
    let asked = scope
        .list_jobs(siyu_domain::page::PageRequest::first(10), &filter)
        .await
        .unwrap()
        .items;
    assert_eq!(asked.len(), 1, "one sweep asked for: {asked:?}");
    assert!(
        asked[0].run_at >= siyu_store::now_ms() + 50_000,
        "a minute after the sync: {asked:?}"
    );
    // not to wait the minute here: that one cancelled, one asked for now
    scope.cancel_job(asked[0].id, &Actor::cli()).await.unwrap();
    let sweep = scope
        .enqueue(&[personal_tags::sweep_job(tenant, id, Duration::ZERO)])
        .await
        .unwrap()[0]
        .unwrap();
    // meanwhile one customer deleted every member they had
    let (gone, gone_members) = standin.with_corp(|corp| {
        let ext = corp.customers_of(&corp.members().next().unwrap().userid)[0].clone();
        let members: Vec<String> = corp.members().map(|m| m.userid.clone()).collect();
        let mut removed = Vec::new();
        for m in members {
            if corp.remove_follow(&m, &ext).is_some() {
                removed.push(m);
            }
        }
        (ext, removed)
    });
    assert!(!gone_members.is_empty());
    let gets_before = standin.calls("externalcontact/get");
    let sweeping = Runner::new(store.clone(), "w2")
        .handler(personal_tags::paced(&services, Duration::from_millis(100)))
        .poll(Duration::from_millis(50))
        .start();
    let done = finished(&scope, sweep).await;
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_eq!(
        done.attempts, 1,
        "waiting between turns is not a try: {done:?}"
    );
    sweeping.shutdown().await;
    assert_eq!(
        standin.calls("externalcontact/get") - gets_before,
        250,
        "every contact read once"
    );
    // every live relation holds the member's personal tags as WeCom has them
    let contacts: Vec<String> = standin.with_corp(|corp| {
        let mut all: BTreeSet<String> = BTreeSet::new();
        for m in corp.members() {
            all.extend(corp.customers_of(&m.userid));
        }
        all.into_iter().collect()
    });
    let mut tagged = 0;
    for ext in &contacts {
        let customer = scope.wecom_customer(id, ext).await.unwrap().unwrap();
        for relation in scope.wecom_relations_for_customer(customer).await.unwrap() {
            if relation.deleted_at.is_some() {
                continue;
            }
            let mut expected = standin.with_corp(|corp| {
                corp.relation(&relation.member, ext)
                    .map(|f| f.personal_tags.clone())
                    .unwrap_or_default()
            });
            expected.sort();
            let mut got = relation.personal_tags.clone().expect("read");
            got.sort();
            assert_eq!(got, expected, "{ext} of {}", relation.member);
            tagged += usize::from(!got.is_empty());
        }
    }
    assert!(tagged > 0, "some relations carry personal tags");
    // the one nobody has any more: their relations ended
    let customer = scope.wecom_customer(id, &gone).await.unwrap().unwrap();
    let relations = scope.wecom_relations_for_customer(customer).await.unwrap();
    assert!(
        relations.iter().all(|r| r.deleted_at.is_some()),
        "{relations:?}"
    );
    // a second sweep finds nothing to read
    let again = scope
        .enqueue(&[personal_tags::sweep_job(tenant, id, Duration::ZERO)])
        .await
        .unwrap()[0]
        .unwrap();
    let sweeping = Runner::new(store.clone(), "w3")
        .handler(personal_tags::paced(&services, Duration::from_millis(100)))
        .poll(Duration::from_millis(50))
        .start();
    assert_eq!(finished(&scope, again).await.state, JobState::Done);
    sweeping.shutdown().await;
    assert_eq!(
        standin.calls("externalcontact/get") - gets_before,
        250,
        "nothing read twice within the week"
    );
}
