//! Mass messages as WeCom keeps them: tasks per member that members confirm, results per
//! customer (sent, not a friend, over the cap), the 41063 window, the list by time,
//! reminders at most 3 a day, cancel, and an answer lost after the call ran.

use std::time::Duration;

use serde_json::{Value, json};
use siyu_wecom_standin::{ReceiveCap, Standin};

use crate::{Client, code, small_corp};

fn ids(list: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v[key].as_str().expect("a string").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_mass_message_is_a_task_per_member_until_they_confirm() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let before = standin.now();
    let v = client
        .post(
            "externalcontact/add_msg_template",
            &token,
            json!({"external_userid": ["wmtest00000", "wmtest00001", "wmunknown", "wmtest00001"],
                   "sender": "alice", "text": {"content": "双十二见"}}),
        )
        .await;
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["fail_list"], json!(["wmunknown"]));
    let msgid = v["msgid"].as_str().unwrap().to_owned();

    let start = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 5;
    let list = client
        .post(
            "externalcontact/get_groupmsg_list_v2",
            &token,
            json!({"chat_type": "single", "start_time": start, "end_time": start + 3600,
                   "filter_type": 0}),
        )
        .await;
    assert_eq!(code(&list), 0, "{list}");
    let item = &list["group_msg_list"][0];
    assert_eq!(item["msgid"], msgid.as_str());
    assert_eq!(item["text"]["content"], "双十二见");
    assert!(item.get("creator").is_none(), "API-created: no creator");
    assert!(item["create_time"].is_string());

    let tasks = client
        .post(
            "externalcontact/get_groupmsg_task",
            &token,
            json!({"msgid": msgid}),
        )
        .await;
    assert_eq!(
        tasks["task_list"],
        json!([{"userid": "alice", "status": 0, "send_time": 0}])
    );
    let result = client
        .post(
            "externalcontact/get_groupmsg_send_result",
            &token,
            json!({"msgid": msgid, "userid": "alice"}),
        )
        .await;
    assert_eq!(
        ids(&result["send_list"], "external_userid"),
        ["wmtest00000", "wmtest00001"]
    );
    assert!(
        result["send_list"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == 0)
    );

    // one customer deletes alice before she confirms
    standin.with_corp(|corp| corp.remove_follow("alice", "wmtest00001"));
    assert_eq!(standin.member_confirms("alice", &msgid), Some(1));
    assert_eq!(
        standin.member_confirms("alice", &msgid),
        None,
        "confirmed once"
    );
    let result = client
        .post(
            "externalcontact/get_groupmsg_send_result",
            &token,
            json!({"msgid": msgid, "userid": "alice"}),
        )
        .await;
    let status: Vec<(String, i64)> = result["send_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["external_userid"].as_str().unwrap().to_owned(),
                s["status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(status.contains(&("wmtest00000".into(), 1)));
    assert!(status.contains(&("wmtest00001".into(), 2)));

    // without a sender each customer goes to a member who has them; bad calls refused
    let v = client
        .post(
            "externalcontact/add_msg_template",
            &token,
            json!({"external_userid": ["wmtest00002", "wmtest00005"], "text": {"content": "再见"}}),
        )
        .await;
    assert_eq!(code(&v), 0);
    let tasks = client
        .post(
            "externalcontact/get_groupmsg_task",
            &token,
            json!({"msgid": v["msgid"]}),
        )
        .await;
    assert_eq!(ids(&tasks["task_list"], "userid"), ["alice"]);
    for (body, errcode) in [
        (json!({"text": {"content": "x"}}), 41035),
        (json!({"external_userid": ["wmtest00000"]}), 40058),
        (
            json!({"external_userid": ["wmunknown"], "text": {"content": "x"}}),
            41048,
        ),
        (json!({"sender": "carol", "text": {"content": "x"}}), 60111),
        (
            json!({"external_userid": ["wmtest00000"], "text": {"content": "长".repeat(1400)}}),
            45002,
        ),
        (
            json!({"external_userid": ["wmtest00000"], "text": {"content": "x"},
                "tag_filter": {"group_list": []}}),
            40058,
        ),
        (
            json!({"external_userid": vec!["wmtest00000"; 10_001], "text": {"content": "x"}}),
            40058,
        ),
    ] {
        let v = client
            .post("externalcontact/add_msg_template", &token, body)
            .await;
        assert_eq!(code(&v), errcode, "{v}");
    }
    for (body, errcode) in [(json!({}), 41046), (json!({"msgid": "msgnope"}), 41047)] {
        let v = client
            .post("externalcontact/get_groupmsg_task", &token, body)
            .await;
        assert_eq!(code(&v), errcode, "{v}");
    }
    let v = client
        .post(
            "externalcontact/get_groupmsg_list_v2",
            &token,
            json!({"chat_type": "single", "start_time": start, "end_time": start + 40 * 86_400}),
        )
        .await;
    assert_eq!(code(&v), 40058, "over a month");
}

#[tokio::test]
async fn reads_wait_while_dispatching_and_the_cap_holds_at_confirmation() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    standin.set_mass_dispatch(Duration::from_secs(30));
    standin.set_receive_cap(ReceiveCap::OneADay);
    let start = standin
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 5;
    let mut msgids = Vec::new();
    for text in ["第一条", "第二条"] {
        let v = client
            .post(
                "externalcontact/add_msg_template",
                &token,
                json!({"external_userid": ["wmtest00003"], "sender": "alice",
                       "text": {"content": text}}),
            )
            .await;
        msgids.push(v["msgid"].as_str().unwrap().to_owned());
    }
    let v = client
        .post(
            "externalcontact/get_groupmsg_task",
            &token,
            json!({"msgid": msgids[0]}),
        )
        .await;
    assert_eq!(code(&v), 41063);
    let list = json!({"chat_type": "single", "start_time": start, "end_time": start + 600});
    let v = client
        .post("externalcontact/get_groupmsg_list_v2", &token, list.clone())
        .await;
    assert_eq!(code(&v), 41063);
    standin.advance_clock(Duration::from_secs(31));
    let mut body = list.clone();
    body["limit"] = json!(1);
    let first = client
        .post("externalcontact/get_groupmsg_list_v2", &token, body.clone())
        .await;
    assert_eq!(code(&first), 0, "{first}");
    assert_eq!(first["group_msg_list"].as_array().unwrap().len(), 1);
    body["cursor"] = first["next_cursor"].clone();
    let second = client
        .post("externalcontact/get_groupmsg_list_v2", &token, body.clone())
        .await;
    assert_eq!(second["next_cursor"], "");
    let listed =
        [&first, &second].map(|p| p["group_msg_list"][0]["msgid"].as_str().unwrap().to_owned());
    assert_eq!(listed.to_vec(), msgids);
    body["cursor"] = json!("forged");
    let v = client
        .post("externalcontact/get_groupmsg_list_v2", &token, body)
        .await;
    assert_eq!(code(&v), 50100);

    // one a day: the second message is over the cap when alice confirms it
    assert_eq!(standin.member_confirms("alice", &msgids[0]), Some(1));
    assert_eq!(standin.member_confirms("alice", &msgids[1]), Some(0));
    let result = client
        .post(
            "externalcontact/get_groupmsg_send_result",
            &token,
            json!({"msgid": msgids[1], "userid": "alice"}),
        )
        .await;
    assert_eq!(result["send_list"][0]["status"], 3);
}

#[tokio::test]
async fn reminders_are_three_a_day_and_a_cancel_stops_what_is_unsent() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let v = client
        .post(
            "externalcontact/add_msg_template",
            &token,
            json!({"external_userid": ["wmtest00000", "wmtest00001"], "text": {"content": "提醒"}}),
        )
        .await;
    let msgid = v["msgid"].clone();
    for _ in 0..3 {
        let v = client
            .post(
                "externalcontact/remind_groupmsg_send",
                &token,
                json!({"msgid": msgid}),
            )
            .await;
        assert_eq!(code(&v), 0, "{v}");
    }
    let v = client
        .post(
            "externalcontact/remind_groupmsg_send",
            &token,
            json!({"msgid": msgid}),
        )
        .await;
    assert_eq!(code(&v), 45009);
    standin.advance_clock(Duration::from_secs(86_401));
    let token = client.token().await;
    let v = client
        .post(
            "externalcontact/remind_groupmsg_send",
            &token,
            json!({"msgid": msgid}),
        )
        .await;
    assert_eq!(code(&v), 0, "a day later: {v}");
    let v = client
        .post(
            "externalcontact/cancel_groupmsg_send",
            &token,
            json!({"msgid": msgid}),
        )
        .await;
    assert_eq!(code(&v), 0);
    assert_eq!(
        standin.member_confirms("alice", msgid.as_str().unwrap()),
        None
    );
    assert_eq!(standin.members_confirm_all(), 0);

    // the call runs, its answer is lost: the message exists all the same
    standin.lose_answers("externalcontact/add_msg_template", 1);
    let url = format!(
        "{}/cgi-bin/externalcontact/add_msg_template?access_token={token}",
        standin.base_url()
    );
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({"external_userid": ["wmtest00004"], "text": {"content": "丢了"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let kept = standin.mass_messages();
    assert_eq!(kept.last().unwrap().text, "丢了");
    assert_eq!(standin.members_confirm_all(), 1);
}
