//! The WeCom client against the stand-in: one token shared through the host, a token
//! WeCom expired mid-run (42001) fetched again once, a revoked secret (40001) a
//! configuration error with no retry, 45009 a pause through the host, -1 retried, and
//! no secret or token in any error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use siyu_connect::wecom::{
    KeptToken, Observed, WecomApp, WecomClient, WecomError, WecomHost, http_client,
};
use siyu_wecom_standin::{Corp, GenerateSpec, Standin};

/// A host in memory: the token, the pauses asked for, what was observed.
#[derive(Default)]
struct MemoryHost {
    token: Mutex<Option<KeptToken>>,
    fetched: AtomicU32,
    paused: Mutex<Vec<String>>,
    observed: Mutex<Vec<Observed>>,
}

impl WecomHost for &MemoryHost {
    type Permit = ();
    async fn token(&self) -> Result<Option<KeptToken>, WecomError> {
        Ok(self.token.lock().unwrap().clone())
    }
    async fn keep_token(&self, token: &str, _expires_in: i64) -> Result<KeptToken, WecomError> {
        let n = self.fetched.fetch_add(1, Ordering::SeqCst);
        let kept = KeptToken {
            token: token.to_owned(),
            fetched_at: i64::from(n),
        };
        *self.token.lock().unwrap() = Some(kept.clone());
        Ok(kept)
    }
    async fn drop_token(&self, token: &KeptToken) -> Result<(), WecomError> {
        let mut kept = self.token.lock().unwrap();
        if kept.as_ref() == Some(token) {
            *kept = None;
        }
        Ok(())
    }
    async fn permit(&self, _api: &str) -> Result<(), WecomError> {
        Ok(())
    }
    async fn rate_limited(&self, api: &str) -> Result<i64, WecomError> {
        self.paused.lock().unwrap().push(api.to_owned());
        Ok(1_000)
    }
    async fn observe(&self, _api: &str, observed: Observed) {
        self.observed.lock().unwrap().push(observed);
    }
}

fn corp() -> Corp {
    Corp::generate(&GenerateSpec {
        members: 3,
        contacts: 250,
        ..GenerateSpec::default()
    })
}

fn client<'h>(
    standin: &Standin,
    host: &'h MemoryHost,
    secret: &str,
) -> WecomClient<&'h MemoryHost> {
    WecomClient::new(
        http_client(),
        WecomApp {
            api_base_url: standin.base_url(),
            corp_id: siyu_wecom_standin::GENERATED_CORP_ID.into(),
            secret: secret.into(),
        },
        host,
    )
}

#[tokio::test]
async fn one_token_serves_every_call_and_a_sync_reads_every_relation_once() {
    let standin = Standin::start(corp()).unwrap();
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    let members = wecom.follow_users().await.unwrap();
    assert_eq!(members.len(), 3);
    let mut pairs = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = wecom.contacts_page(&members, &cursor).await.unwrap();
        for item in page.external_contact_list {
            let new = pairs.insert((
                item.external_contact.external_userid,
                item.follow_info.userid,
            ));
            assert!(new, "a pair came twice");
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let expected = standin.with_corp(|c| c.relation_count());
    assert_eq!(pairs.len(), expected);
    assert_eq!(standin.calls("gettoken"), 1, "one token for every call");
    assert_eq!(host.fetched.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_expired_mid_run_is_fetched_once_more_and_the_call_made_once_more() {
    let standin = Standin::start(corp()).unwrap();
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    wecom.follow_users().await.unwrap();
    standin.expire_tokens();
    let members = wecom.follow_users().await.unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(standin.calls("gettoken"), 2);
    assert_eq!(standin.calls("externalcontact/get_follow_user_list"), 3);

    // a token WeCom keeps refusing is fetched once per call, not in a loop
    standin.inject("externalcontact/get_follow_user_list", 40014, 2);
    let refused = wecom.follow_users().await.unwrap_err();
    assert_eq!(refused.errcode(), Some(40014), "{refused}");
    assert!(!refused.is_configuration());
    assert_eq!(standin.calls("gettoken"), 3);
}

#[tokio::test]
async fn a_revoked_secret_is_a_configuration_error_without_retries() {
    let standin = Standin::start(corp()).unwrap();
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    wecom.follow_users().await.unwrap();
    standin.revoke_secret(siyu_wecom_standin::GENERATED_SECRET);
    let error = wecom.follow_users().await.unwrap_err();
    assert!(error.is_configuration(), "{error}");
    assert_eq!(error.errcode(), Some(40001));
    // the old token was refused (40014), a new one asked for once, and refused
    assert_eq!(standin.calls("gettoken"), 2);
    assert!(host.observed.lock().unwrap().iter().any(|o| matches!(
        o,
        Observed::Failed {
            errcode: Some(40001),
            configuration: true,
            ..
        }
    )));
    assert!(
        !error
            .to_string()
            .contains(siyu_wecom_standin::GENERATED_SECRET)
    );

    // a wrong secret from the start: the same
    let host = MemoryHost::default();
    let wrong = client(&standin, &host, "wrong-secret");
    let error = wrong.departments().await.unwrap_err();
    assert!(error.is_configuration(), "{error}");
    assert!(!error.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn a_wrong_corp_id_and_an_api_the_app_may_not_call_are_configuration_errors() {
    let standin = Standin::start(corp()).unwrap();
    // 40013: the corp id is not the corp's
    let host = MemoryHost::default();
    let wrong = WecomClient::new(
        http_client(),
        WecomApp {
            api_base_url: standin.base_url(),
            corp_id: "wwnotthiscorp0001".into(),
            secret: siyu_wecom_standin::GENERATED_SECRET.into(),
        },
        &host,
    );
    let error = wrong.departments().await.unwrap_err();
    assert!(error.is_configuration(), "{error}");
    assert_eq!(error.errcode(), Some(40013));
    assert_eq!(standin.calls("gettoken"), 1, "not tried again");
    // 48002: the app's secret lacks the permission for the API (customer contact)
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    standin.inject("externalcontact/get_follow_user_list", 48002, 1);
    let error = wecom.follow_users().await.unwrap_err();
    assert!(error.is_configuration(), "{error}");
    assert_eq!(error.errcode(), Some(48002));
    assert_eq!(
        standin.calls("externalcontact/get_follow_user_list"),
        1,
        "not tried again"
    );
    assert!(host.observed.lock().unwrap().iter().any(|o| matches!(
        o,
        Observed::Failed {
            errcode: Some(48002),
            configuration: true,
            ..
        }
    )));
}

#[tokio::test]
async fn a_frequency_limit_pauses_the_api_and_busy_is_retried() {
    let standin = Standin::start(corp()).unwrap();
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    standin.inject("externalcontact/get_follow_user_list", 45009, 1);
    let error = wecom.follow_users().await.unwrap_err();
    assert!(
        matches!(&error, WecomError::RateLimited { api, until_ms: 1_000 } if api == "externalcontact/get_follow_user_list"),
        "{error}"
    );
    assert_eq!(
        *host.paused.lock().unwrap(),
        ["externalcontact/get_follow_user_list"]
    );
    assert_eq!(standin.calls("externalcontact/get_follow_user_list"), 1);

    standin.inject("department/list", -1, 2);
    assert!(!wecom.departments().await.unwrap().is_empty());
    assert_eq!(standin.calls("department/list"), 3);
    standin.inject("department/list", -1, 10);
    let busy = wecom.departments().await.unwrap_err();
    assert!(matches!(busy, WecomError::Transient(_)), "{busy}");
    assert_eq!(standin.calls("department/list"), 3 + 4);
}

#[tokio::test]
async fn an_unreachable_wecom_is_transient_and_names_no_secret() {
    let host = MemoryHost::default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wecom = WecomClient::new(
        http_client(),
        WecomApp {
            api_base_url: format!("http://127.0.0.1:{port}"),
            corp_id: "ww1".into(),
            secret: "never-in-errors".into(),
        },
        &host,
    );
    let error = wecom.departments().await.unwrap_err();
    assert!(matches!(error, WecomError::Transient(_)), "{error}");
    assert!(!error.to_string().contains("never-in-errors"), "{error}");
    // the host hears of it (the connector's health keeps the error), as not a
    // configuration error, without the secret
    let observed = host.observed.lock().unwrap();
    assert!(
        matches!(
            observed.as_slice(),
            [Observed::Failed { errcode: None, configuration: false, message }]
                if message.contains("gettoken") && !message.contains("never-in-errors")
        ),
        "{observed:?}"
    );
}

#[tokio::test]
async fn transfers_start_wait_a_day_and_a_member_who_left_leaves_customers_unassigned() {
    let standin = Standin::start(corp()).unwrap();
    let host = MemoryHost::default();
    let wecom = client(&standin, &host, siyu_wecom_standin::GENERATED_SECRET);
    let members = wecom.follow_users().await.unwrap();
    let (a, b, c) = (&members[0], &members[1], &members[2]);
    let theirs: Vec<String> = standin
        .with_corp(|corp| corp.customers_of(a))
        .into_iter()
        .filter(|e| standin.follow_relation(b, e).is_none())
        .take(2)
        .collect();
    let mut asked = theirs.clone();
    asked.push("wmNOBODY".into());
    let started = wecom
        .transfer_customers(false, a, b, &asked, Some("您好，我是新的顾问"))
        .await
        .unwrap();
    let codes: Vec<i64> = started.iter().map(|s| s.errcode).collect();
    assert_eq!(codes, [0, 0, 40096]);
    let waiting = wecom.transfer_results(false, a, b).await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(waiting.iter().all(|t| t.status == 2 && t.takeover_time > 0));
    standin.advance_clock(std::time::Duration::from_secs(86_401));
    let done = wecom.transfer_results(false, a, b).await.unwrap();
    assert!(done.iter().all(|t| t.status == 1), "{done:?}");
    assert!(standin.follow_relation(b, &theirs[0]).is_some());

    assert!(standin.member_leaves(c));
    let unassigned = wecom.unassigned_contacts().await.unwrap();
    let expected = standin.with_corp(|corp| corp.customers_of(c)).len();
    assert_eq!(unassigned.len(), expected);
    assert!(unassigned.iter().all(|u| &u.handover_userid == c));
    let refused = wecom
        .transfer_customers(true, a, b, &theirs, None)
        .await
        .unwrap_err();
    assert_eq!(refused.errcode(), Some(40097), "{refused}");
}
