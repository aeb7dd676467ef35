//! Mass sends on WeCom, against the stand-in and a real job runner: a send becomes one
//! task per member (`add_msg_template` naming each customer by `external_userid`),
//! followed until members send it, with each customer's result (sent, not a friend
//! any more, refused in the call's `fail_list`), reminders (at most 3 a day) and a
//! cancel that stops what members have not sent. Exactly once: a call whose answer was
//! lost is found again among WeCom's messages and not made twice; a call that never
//! reached WeCom is made once; one that cannot be told apart from another message
//! waits for a person, whose decision is checked. Bad sends are refused.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_wecom_standin::{
    Corp, ExternalContact, FollowInfo, GENERATED_CORP_ID, GENERATED_SECRET, Member, Standin,
};

use crate::helpers::TestApp;

const ADD: &str = "externalcontact/add_msg_template";

/// 张三 has wmZS01…04, 李四 wmLS01…03 and wmZS01 too (added later).
fn corp() -> Corp {
    let mut corp = Corp::new(GENERATED_CORP_ID)
        .add_secret(GENERATED_SECRET)
        .add_department(1, "总部", 0)
        .add_member(Member::new("zhangsan", "张三", 1))
        .add_member(Member::new("lisi", "李四", 1));
    let relations = (1..=4)
        .map(|n| ("zhangsan", format!("wmZS{n:02}")))
        .chain((1..=3).map(|n| ("lisi", format!("wmLS{n:02}"))));
    for (n, (member, external)) in relations.enumerate() {
        corp = corp
            .add_contact(ExternalContact::wechat(&external, &format!("客户{n}")))
            .follow(
                member,
                &external,
                FollowInfo {
                    createtime: 1_700_000_000 + n as u64,
                    oper_userid: external.clone(),
                    ..FollowInfo::default()
                },
            );
    }
    corp.follow(
        "lisi",
        "wmZS01",
        FollowInfo {
            createtime: 1_700_100_000,
            oper_userid: "wmZS01".into(),
            ..FollowInfo::default()
        },
    )
}

pub struct World {
    pub app: TestApp,
    pub standin: Standin,
    pub connector: i64,
}

impl World {
    pub async fn new() -> World {
        let standin = Standin::start(corp()).unwrap();
        let app = TestApp::spawn_with_node(|n| {
            n.wecom_broadcast_poll = Duration::from_millis(100);
            n.wecom_broadcast_claim = Duration::from_millis(500);
        })
        .await;
        let connector = app
            .post(
                "/api/v1/connectors",
                &app.admin_token,
                json!({"kind": "wecom", "name": "企业微信", "config": {
                    "corp_id": GENERATED_CORP_ID, "secret": GENERATED_SECRET,
                    "token": "callbackToken1", "agent_id": 1000002,
                    "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                    "api_base_url": standin.base_url()}}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        let job = app
            .post(
                &format!("/api/v1/connectors/{connector}/sync"),
                &app.admin_token,
                json!({"scope": "all"}),
            )
            .await
            .expect(202)
            .body["job_id"]
            .clone();
        assert_eq!(app.job_finished(&job).await["state"], "done");
        World {
            app,
            standin,
            connector,
        }
    }

    async fn customer_id(&self, external: &str) -> i64 {
        self.app
            .get(
                &format!("/api/v1/customers/lookup?kind=wecom_external_userid&value={external}"),
                &self.app.admin_token,
            )
            .await
            .expect(200)
            .body["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn ids(&self, externals: &[&str]) -> Vec<i64> {
        let mut ids = Vec::new();
        for e in externals {
            ids.push(self.customer_id(e).await);
        }
        ids
    }

    pub async fn send(&self, ids: &[i64], text: &str) -> i64 {
        self.app
            .post(
                "/api/v1/broadcasts",
                &self.app.admin_token,
                json!({"name": text, "channel": "wecom", "audience": {"customers": ids},
                       "text": text}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.app
            .get(path, &self.app.admin_token)
            .await
            .expect(200)
            .body
    }

    async fn tasks(&self, id: i64) -> Vec<Value> {
        self.get(&format!("/api/v1/broadcasts/{id}/tasks"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits (up to 30 s) until `done` holds of the send's tasks, and answers them.
    pub async fn tasks_until(
        &self,
        id: i64,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let tasks = self.tasks(id).await;
            if done(&tasks) {
                return tasks;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "send {id}: {what}: {tasks:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Recipient statuses by external_userid.
    pub async fn statuses(&self, id: i64) -> HashMap<String, String> {
        self.get(&format!("/api/v1/broadcasts/{id}/recipients?limit=500"))
            .await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["external_userid"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

pub fn all_made(tasks: &[Value]) -> bool {
    !tasks.is_empty() && tasks.iter().all(|t| t["state"] == "sent")
}

/// Every customer WeCom holds a task for, with how many tasks name them.
fn named_in_wecom(standin: &Standin) -> HashMap<String, usize> {
    let mut named = HashMap::new();
    for message in standin.mass_messages() {
        for task in &message.tasks {
            for r in &task.recipients {
                *named.entry(r.external_userid.clone()).or_default() += 1;
            }
        }
    }
    named
}

#[tokio::test]
async fn a_wecom_send_is_a_task_per_member_followed_to_each_customers_result() {
    let w = World::new().await;
    let ids = w
        .ids(&[
            "wmZS01", "wmZS02", "wmZS03", "wmZS04", "wmLS01", "wmLS02", "wmLS03",
        ])
        .await;
    // a customer siyu knows who is nobody's in WeCom is left out, and says why
    let preview = w
        .app
        .post(
            "/api/v1/broadcasts/preview",
            &w.app.admin_token,
            json!({"audience": {"customers": ids}, "channel": "wecom"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(preview["recipients"], 7, "{preview}");

    // WeCom lost wmZS04 since the sync: the call's fail_list names them
    w.standin
        .with_corp(|corp| corp.remove_follow("zhangsan", "wmZS04"));
    let id = w.send(&ids, "双十二会员日，全场八折").await;
    let tasks = w.tasks_until(id, "tasks made", all_made).await;
    assert_eq!(tasks.len(), 2, "{tasks:#?}");
    let by_member: HashMap<&str, &Value> = tasks
        .iter()
        .map(|t| (t["member_userid"].as_str().unwrap(), t))
        .collect();
    assert_eq!(by_member["zhangsan"]["recipients"], 4);
    // wmZS01 is owned by 张三 (first added), so 李四 gets only his own three
    assert_eq!(by_member["lisi"]["recipients"], 3);
    assert_eq!(by_member["zhangsan"]["member_name"], "张三");
    assert!(tasks.iter().all(|t| t["task_state"] == "waiting"));
    // each customer named in WeCom exactly once, by external_userid, never by tag
    let named = named_in_wecom(&w.standin);
    assert_eq!(named.len(), 6, "{named:?}");
    assert!(named.values().all(|n| *n == 1));
    assert!(
        w.standin
            .call_log()
            .iter()
            .filter(|c| c.path == ADD)
            .all(|c| {
                c.body.get("tag_filter").is_none() && c.body["external_userid"].is_array()
            })
    );
    let send = w.get(&format!("/api/v1/broadcasts/{id}")).await;
    assert_eq!(send["state"], "sent");
    assert_eq!(send["sent"], 6, "handed to WeCom, less the refused one");
    assert_eq!(w.statuses(id).await["wmZS04"], "refused");

    // 李四 loses wmLS02, then sends; 张三 has not sent yet
    let lisi = by_member["lisi"]["msgid"].as_str().unwrap().to_owned();
    w.standin
        .with_corp(|corp| corp.remove_follow("lisi", "wmLS02"));
    assert_eq!(w.standin.member_confirms("lisi", &lisi), Some(2));
    let tasks = w
        .tasks_until(id, "李四's task confirmed", |tasks| {
            tasks
                .iter()
                .any(|t| t["member_userid"] == "lisi" && t["task_state"] == "confirmed")
        })
        .await;
    let lisi_task = tasks.iter().find(|t| t["member_userid"] == "lisi").unwrap();
    assert_eq!(lisi_task["results"], json!({"sent": 2, "not_friend": 1}));
    assert!(lisi_task["member_sent_at"].is_string());
    let statuses = w.statuses(id).await;
    assert_eq!(statuses["wmLS02"], "not_friend");
    assert_eq!(statuses["wmLS01"], "sent");
    assert_eq!(statuses["wmZS02"], "waiting");
    let not_friends = w
        .get(&format!(
            "/api/v1/broadcasts/{id}/recipients?status=not_friend"
        ))
        .await;
    assert_eq!(not_friends["items"].as_array().unwrap().len(), 1);
    assert_eq!(not_friends["items"][0]["member_userid"], "lisi");

    // within quiet hours a reminder waits: WeCom is not asked
    let quiet = json!({"enabled": true, "start": crate::broadcasts::utc_clock(-60),
                       "end": crate::broadcasts::utc_clock(60)});
    w.app
        .put(
            "/api/v1/settings/quiet-hours",
            &w.app.admin_token,
            quiet.clone(),
        )
        .await
        .expect(200);
    let held = w
        .app
        .post(
            &format!("/api/v1/broadcasts/{id}/remind"),
            &w.app.admin_token,
            json!({}),
        )
        .await
        .expect(202)
        .body["job_id"]
        .clone();
    let started = Instant::now();
    loop {
        let job = w
            .app
            .get(&format!("/api/v1/jobs/{held}"), &w.app.admin_token)
            .await
            .expect(200)
            .body;
        if job["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("quiet hours"))
        {
            assert_eq!(job["state"], "waiting", "{job}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not held: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        w.standin
            .mass_messages()
            .iter()
            .all(|m| m.reminders.is_empty()),
        "no reminder within quiet hours"
    );
    w.app
        .post(
            &format!("/api/v1/jobs/{held}/cancel"),
            &w.app.admin_token,
            json!({}),
        )
        .await
        .expect(200);
    let mut off = quiet;
    off["enabled"] = json!(false);
    w.app
        .put("/api/v1/settings/quiet-hours", &w.app.admin_token, off)
        .await
        .expect(200);

    // reminders: 张三 only (李四 sent), three times a day at most, by WeCom and the app
    for round in 1..=3 {
        let queued = w
            .app
            .post(
                &format!("/api/v1/broadcasts/{id}/remind"),
                &w.app.admin_token,
                json!({}),
            )
            .await
            .expect(202)
            .body;
        assert_eq!(queued["members"], 1);
        assert_eq!(w.app.job_finished(&queued["job_id"]).await["state"], "done");
        let zhangsan = w
            .tasks(id)
            .await
            .into_iter()
            .find(|t| t["member_userid"] == "zhangsan")
            .unwrap();
        assert_eq!(zhangsan["reminders"].as_array().unwrap().len(), round);
    }
    let refused = w
        .app
        .post(
            &format!("/api/v1/broadcasts/{id}/remind"),
            &w.app.admin_token,
            json!({}),
        )
        .await
        .expect(409);
    assert_eq!(refused.code(), "conflict");
    let message = w
        .standin
        .mass_messages()
        .into_iter()
        .find(|m| m.tasks[0].userid == "zhangsan")
        .unwrap();
    assert_eq!(message.reminders.len(), 3, "WeCom was asked three times");
    let started = Instant::now();
    while w
        .standin
        .app_messages()
        .iter()
        .filter(|m| m.userid == "zhangsan" && m.content.contains("双十二会员日"))
        .count()
        < 1
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no app reminder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a cancel stops what 张三 has not sent; 李四's stays sent
    let cancelled = w
        .app
        .post(
            &format!("/api/v1/broadcasts/{id}/cancel"),
            &w.app.admin_token,
            json!({}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["state"], "cancelled");
    w.tasks_until(id, "张三's task cancelled", |tasks| {
        tasks
            .iter()
            .any(|t| t["member_userid"] == "zhangsan" && t["task_state"] == "cancelled")
    })
    .await;
    assert!(
        w.standin
            .mass_messages()
            .iter()
            .find(|m| m.tasks[0].userid == "zhangsan")
            .unwrap()
            .cancelled
    );
    assert_eq!(w.standin.member_confirms("zhangsan", &message.msgid), None);
    let statuses = w.statuses(id).await;
    assert_eq!(statuses["wmZS02"], "not_sent");
    assert_eq!(statuses["wmLS01"], "sent");
    assert_eq!(w.standin.calls(ADD), 2, "one call per member task, no more");
    // cancelled twice: 409
    w.app
        .post(
            &format!("/api/v1/broadcasts/{id}/cancel"),
            &w.app.admin_token,
            json!({}),
        )
        .await
        .expect(409);
}

#[tokio::test]
async fn a_lost_answer_is_found_again_and_a_call_that_never_arrived_is_made_once() {
    let w = World::new().await;
    let zhangsan = w.ids(&["wmZS02", "wmZS03", "wmZS04"]).await;
    let lisi = w.ids(&["wmLS01", "wmLS02"]).await;

    // the call runs (WeCom refusing wmZS04, gone since the sync), its answer with the
    // fail_list is lost, and WeCom answers 41063 for a while after
    w.standin
        .with_corp(|corp| corp.remove_follow("zhangsan", "wmZS04"));
    w.standin.lose_answers(ADD, 1);
    w.standin.set_mass_dispatch(Duration::from_secs(2));
    let id = w.send(&zhangsan, "新品到店，欢迎试穿").await;
    let tasks = w.tasks_until(id, "reconciled", all_made).await;
    let messages = w.standin.mass_messages();
    assert_eq!(messages.len(), 1, "made once");
    assert_eq!(tasks[0]["msgid"], messages[0].msgid.as_str());
    assert_eq!(w.standin.calls(ADD), 1);
    // the lost fail_list is read back from what WeCom's task lacks
    let statuses = w.statuses(id).await;
    assert_eq!(statuses["wmZS04"], "refused");
    assert_eq!(statuses["wmZS02"], "waiting");
    assert!(w.standin.calls("externalcontact/get_groupmsg_list_v2") >= 1);
    let log = w.standin.call_log();
    assert!(
        log.iter()
            .any(|c| c.path == "externalcontact/get_groupmsg_list_v2" && c.errcode == 41063),
        "reconciling waited out WeCom's dispatch"
    );
    w.standin.set_mass_dispatch(Duration::ZERO);

    // WeCom busy past the client's retries: nothing was made, the next try makes it once
    w.standin.inject(ADD, -1, 4);
    let id = w.send(&lisi, "新品到店，欢迎试穿").await;
    w.tasks_until(id, "made after the busy spell", all_made)
        .await;
    assert_eq!(w.standin.mass_messages().len(), 2);
    let named = named_in_wecom(&w.standin);
    assert!(named.values().all(|n| *n == 1), "{named:?}");

    // WeCom refuses the call as a whole (no customer left to send to): recorded for
    // every recipient, never retried
    w.standin.with_corp(|corp| {
        corp.remove_follow("zhangsan", "wmZS03");
    });
    let calls = w.standin.calls(ADD);
    let only = w.ids(&["wmZS03"]).await;
    let id = w.send(&only, "最后一次提醒").await;
    let tasks = w.tasks_until(id, "refused", all_made).await;
    assert_eq!(tasks[0]["task_state"], "failed");
    assert_eq!(w.statuses(id).await["wmZS03"], "refused");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.standin.calls(ADD), calls + 1);
}

#[tokio::test]
async fn a_lost_call_that_cannot_be_told_apart_waits_for_a_person() {
    let w = World::new().await;
    let ids = w.ids(&["wmZS02", "wmZS03"]).await;
    let text = "周末闪购，限时两小时";
    // someone made a message of the same text to one of these customers through the
    // API just now (not siyu): after a lost answer siyu cannot tell which is its own
    let url = format!(
        "{}/cgi-bin/gettoken?corpid={GENERATED_CORP_ID}&corpsecret={GENERATED_SECRET}",
        w.standin.base_url()
    );
    let token: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let other: Value = reqwest::Client::new()
        .post(format!(
            "{}/cgi-bin/{ADD}?access_token={}",
            w.standin.base_url(),
            token["access_token"].as_str().unwrap()
        ))
        .json(&json!({"external_userid": ["wmZS02"], "sender": "zhangsan",
                      "text": {"content": text}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["msgid"].as_str().unwrap().to_owned();
    w.standin.lose_answers(ADD, 1);
    let id = w.send(&ids, text).await;
    let tasks = w
        .tasks_until(id, "unresolved", |tasks| {
            tasks.iter().any(|t| t["state"] == "unresolved")
        })
        .await;
    let candidates: HashSet<String> = tasks[0]["unresolved"]["msgids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(candidates.len(), 2);
    assert!(candidates.contains(&other));
    let ours = w
        .standin
        .mass_messages()
        .into_iter()
        .find(|m| m.msgid != other)
        .unwrap()
        .msgid;
    // it stays waiting: nothing more is sent
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(w.standin.calls(ADD), 2);
    assert_eq!(
        w.get(&format!("/api/v1/broadcasts/{id}")).await["state"],
        "sending"
    );

    let resolve = format!("/api/v1/broadcasts/{id}/batches/0/resolve");
    let token = &w.app.admin_token;
    let bad = w
        .app
        .post(
            &resolve,
            token,
            json!({"outcome": "sent", "msgid": "msgNOTACANDIDATE"}),
        )
        .await
        .expect(422);
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"], "msgid",
        "{}",
        bad.body
    );
    w.app
        .post(&resolve, token, json!({"outcome": "maybe"}))
        .await
        .expect(422);
    w.app
        .post(
            &format!("/api/v1/broadcasts/{id}/batches/7/resolve"),
            token,
            json!({"outcome": "not_sent"}),
        )
        .await
        .expect(409);
    let send = w
        .app
        .post(&resolve, token, json!({"outcome": "sent", "msgid": ours}))
        .await
        .expect(200)
        .body;
    assert_eq!(send["state"], "sent");
    assert_eq!(send["sent"], 2);
    let tasks = w.tasks(id).await;
    assert_eq!(tasks[0]["msgid"], ours.as_str());
    assert_eq!(tasks[0]["task_state"], "waiting");
    // decided once
    w.app
        .post(&resolve, token, json!({"outcome": "send_again"}))
        .await
        .expect(409);
    assert_eq!(w.standin.calls(ADD), 2, "nothing sent twice");
    let audit = w
        .get("/api/v1/audit-log?action=broadcast.batch_resolved")
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn a_template_renders_once_per_member_task_with_the_members_values() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let template = w
        .app
        .post(
            "/api/v1/message-templates",
            token,
            json!({"name": "顾问推荐", "body": "{{ customer.name }}您好，我是{{ member.name }}",
                   "fallbacks": {"customer.name": "亲爱的朋友", "member.name": "您的顾问"}}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let ids = w.ids(&["wmZS02", "wmLS01"]).await;
    let id = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "模板", "channel": "wecom", "audience": {"customers": ids},
                   "template_id": template}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    w.tasks_until(id, "tasks made", all_made).await;
    let mut texts: Vec<(String, String)> = w
        .standin
        .mass_messages()
        .into_iter()
        .map(|m| (m.tasks[0].userid.clone(), m.text))
        .collect();
    texts.sort();
    // one text per member: the member's name, the customers' fallback
    assert_eq!(
        texts,
        vec![
            ("lisi".to_owned(), "亲爱的朋友您好，我是李四".to_owned()),
            ("zhangsan".to_owned(), "亲爱的朋友您好，我是张三".to_owned()),
        ]
    );
}

#[tokio::test]
async fn bad_wecom_sends_are_refused() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    let ids = w.ids(&["wmZS02"]).await;
    for (body, field) in [
        (
            json!({"name": "x", "channel": "wecom", "connector_id": 999_999,
                   "audience": {"customers": ids}, "text": "你好"}),
            "connector_id",
        ),
        (
            json!({"name": "x", "channel": "sandbox", "connector_id": w.connector,
                   "audience": {"customers": ids}, "text": "你好"}),
            "connector_id",
        ),
    ] {
        let answer = w
            .app
            .post("/api/v1/broadcasts", token, body)
            .await
            .expect(422);
        assert_eq!(
            answer.body["error"]["details"]["fields"][0]["field"], field,
            "{}",
            answer.body
        );
    }
    // a customer no member has: nobody to send to, and why
    let (_, key) = crate::tracking::source(&w.app).await;
    let stranger = crate::audiences::customer(&w.app, &key, "no-wecom", json!({})).await;
    let answer = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "x", "channel": "wecom", "audience": {"customers": [stranger]},
                   "text": "你好"}),
        )
        .await
        .expect(422);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_relation")
            || answer.body.to_string().contains("no_relation"),
        "{}",
        answer.body
    );
    let sandbox = w
        .app
        .post(
            "/api/v1/broadcasts",
            token,
            json!({"name": "x", "audience": {"customers": ids}, "text": "你好"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    w.app
        .post(
            &format!("/api/v1/broadcasts/{sandbox}/remind"),
            token,
            json!({}),
        )
        .await
        .expect(409);
    w.app
        .get(
            &format!("/api/v1/broadcasts/{sandbox}/recipients?status=lost"),
            token,
        )
        .await
        .expect(422);
    assert_eq!(w.standin.calls(ADD), 0);
}
