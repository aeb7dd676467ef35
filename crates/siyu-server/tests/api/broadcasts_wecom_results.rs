//! A WeCom send's results that are final, not transient: a customer WeCom holds over
//! the corp's receive cap is recorded `over_cap`, and a member who left the company
//! before sending has their part reported `member_left` (their task closed, their
//! customers named), not dropped; neither is sent again.

use serde_json::{Value, json};
use siyu_wecom_standin::ReceiveCap;

use crate::broadcasts_wecom::{World, all_made};

const ADD: &str = "externalcontact/add_msg_template";

fn task_of<'a>(tasks: &'a [Value], member: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["member_userid"] == member)
        .unwrap_or_else(|| panic!("no task of {member}: {tasks:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_receive_cap_and_a_member_who_left_are_final_results_never_sent_again() {
    let w = World::new().await;
    let token = &w.app.admin_token;
    // the corp allows one mass message a customer a day; siyu's own cap is the default
    w.standin.set_receive_cap(ReceiveCap::OneADay);
    let ids = w.ids(&["wmZS02", "wmLS01"]).await;
    let first = w.send(&ids[..1], "第一条").await;
    let tasks = w.tasks_until(first, "first made", all_made).await;
    let msgid = task_of(&tasks, "zhangsan")["msgid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.standin.member_confirms("zhangsan", &msgid), Some(1));
    w.tasks_until(first, "first confirmed", |t| {
        t.iter().all(|t| t["task_state"] == "confirmed")
    })
    .await;

    let second = w.send(&ids, "第二条").await;
    let tasks = w.tasks_until(second, "second made", all_made).await;
    assert_eq!(tasks.len(), 2, "{tasks:#?}");
    let calls = |w: &World| {
        w.standin
            .call_log()
            .iter()
            .filter(|c| c.path == ADD)
            .count()
    };
    let made = calls(&w);
    // 李四 leaves before he sends; siyu learns it from the next staff sync
    assert!(w.standin.member_leaves("lisi"));
    let job = w
        .app
        .post(
            &format!("/api/v1/connectors/{}/sync", w.connector),
            token,
            json!({"scope": "staff"}),
        )
        .await
        .expect(202)
        .body["job_id"]
        .clone();
    assert_eq!(w.app.job_finished(&job).await["state"], "done");
    // 张三 sends, and WeCom holds his customer over the day's one
    let msgid = task_of(&tasks, "zhangsan")["msgid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.standin.member_confirms("zhangsan", &msgid), Some(0));
    let tasks = w
        .tasks_until(second, "both closed", |t| {
            t.iter()
                .all(|t| ["confirmed", "member_left"].contains(&t["task_state"].as_str().unwrap()))
        })
        .await;
    assert_eq!(
        task_of(&tasks, "zhangsan")["results"],
        json!({"over_cap": 1})
    );
    assert_eq!(task_of(&tasks, "lisi")["task_state"], "member_left");
    let statuses = w.statuses(second).await;
    assert_eq!(statuses["wmZS02"], "over_cap", "{statuses:?}");
    assert_eq!(statuses["wmLS01"], "member_left", "{statuses:?}");
    // reported, not dropped: the member's part is listed by status
    let left = w
        .app
        .get(
            &format!("/api/v1/broadcasts/{second}/recipients?status=member_left"),
            token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["items"][0]["member_userid"], "lisi");

    // neither is sent again: the send's follow-up has nothing left to do, and no new
    // task is asked of WeCom
    let started = std::time::Instant::now();
    loop {
        let jobs = w
            .app
            .get("/api/v1/jobs?kind=broadcast.follow&limit=50", token)
            .await
            .expect(200)
            .body;
        let open = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| !["done", "cancelled", "dead"].contains(&j["state"].as_str().unwrap()))
            .count();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "follow-ups still open: {jobs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(calls(&w), made);
    let statuses = w.statuses(second).await;
    assert_eq!(
        (statuses["wmZS02"].as_str(), statuses["wmLS01"].as_str()),
        ("over_cap", "member_left")
    );
}
