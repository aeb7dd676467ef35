//! Group codes against the WeCom stand-in: the join way made over the first chats with
//! room, moved on when a chat fills (200 members), a room WeCom opens for the code
//! adopted, joins attributed by the state WeCom shows on each member, the report per
//! code and chat, bad input refused and the way deleted with the code.

use serde_json::{Value, json};
use siyu_wecom_standin::{ChatMember, GroupChat, Standin};

use crate::helpers::TestApp;
use crate::wecom_flow::{all_jobs_done, connected};

/// A chat owned by member001 with `customers` customers in it, told to siyu by WeCom's
/// create callback.
async fn chat(standin: &Standin, chat_id: &str, customers: usize) {
    let mut members = vec![ChatMember {
        userid: "member001".into(),
        type_: 1,
        join_time: 1_700_000_000,
        join_scene: 1,
        ..ChatMember::default()
    }];
    members.extend((0..customers).map(|i| ChatMember {
        userid: format!("wm{chat_id}x{i:04}"),
        type_: 2,
        join_time: 1_700_000_000,
        join_scene: 1,
        ..ChatMember::default()
    }));
    let status = standin
        .chat_created(GroupChat {
            chat_id: chat_id.into(),
            name: format!("群{chat_id}"),
            owner: "member001".into(),
            create_time: 1_700_000_000,
            member_list: members,
            member_version: "1".into(),
            ..GroupChat::default()
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
}

async fn code(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/group-codes/{id}"), &app.admin_token)
        .await
        .expect(200)
        .body
}

fn way_of(standin: &Standin, config_id: &str) -> Vec<String> {
    standin
        .join_ways()
        .into_iter()
        .find(|w| w.config_id == config_id)
        .unwrap_or_else(|| panic!("no join way {config_id}"))
        .chat_id_list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_code_moves_on_as_its_chats_fill_and_reports_its_joins() {
    let (app, standin, connector) = connected().await;
    let token = &app.admin_token;
    chat(&standin, "g1", 198).await; // with its owner: 199, room for one more
    for id in ["g2", "g3", "g4", "g5", "g6"] {
        chat(&standin, id, 3).await;
    }
    all_jobs_done(&app).await;
    let made = app
        .post(
            "/api/v1/group-codes",
            token,
            json!({"name": "春季体验群", "state": "grp-spring", "connector_id": connector,
                   "chat_ids": ["g1", "g2", "g3", "g4", "g5", "g6"], "auto_create_room": false}),
        )
        .await
        .expect(201)
        .body;
    let id = made["id"].as_i64().unwrap();
    all_jobs_done(&app).await;
    let way = code(&app, id).await["join_way"].clone();
    let config_id = way["config_id"].as_str().expect("a join way").to_owned();
    assert_eq!(way["chat_ids"], json!(["g1", "g2", "g3", "g4", "g5"]));
    assert!(way["qr_code_url"].as_str().is_some(), "{way}");
    assert_eq!(way_of(&standin, &config_id), ["g1", "g2", "g3", "g4", "g5"]);
    let on_wecom = standin.join_ways();
    assert_eq!(on_wecom[0].state, "grp-spring");
    assert_eq!(on_wecom[0].auto_create_room, 0);

    // the 200th member fills g1: the way moves onto g2…g6
    let seated = standin
        .join_by_way(&config_id, "wmGRPJOIN0001", "进群一")
        .await
        .unwrap();
    assert_eq!(seated, "g1");
    all_jobs_done(&app).await;
    assert_eq!(way_of(&standin, &config_id), ["g2", "g3", "g4", "g5", "g6"]);
    assert_eq!(
        code(&app, id).await["join_way"]["chat_ids"],
        json!(["g2", "g3", "g4", "g5", "g6"])
    );
    let seated = standin
        .join_by_way(&config_id, "wmGRPJOIN0002", "进群二")
        .await
        .unwrap();
    assert_eq!(seated, "g2");
    all_jobs_done(&app).await;

    let today = chrono::Utc::now().date_naive();
    let report = app
        .get(
            &format!(
                "/api/v1/group-codes/report?from={}&to={}",
                today.pred_opt().unwrap(),
                today.succ_opt().unwrap()
            ),
            token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(report["joins"], 2, "{report}");
    let row = &report["rows"][0];
    assert_eq!(row["code_id"], id);
    let chats = row["chats"].as_array().unwrap();
    assert_eq!(chats[0]["chat_id"], "g1");
    assert_eq!(
        (
            &chats[0]["joins"],
            &chats[0]["members"],
            &chats[0]["has_room"]
        ),
        (&json!(1), &json!(200), &json!(false))
    );
    assert_eq!(
        (&chats[1]["chat_id"], &chats[1]["joins"]),
        (&json!("g2"), &json!(1))
    );

    // deleted: its way goes from WeCom, its joins stay reported
    app.delete(&format!("/api/v1/group-codes/{id}"), token)
        .await
        .expect(204);
    all_jobs_done(&app).await;
    assert!(standin.join_ways().iter().all(|w| w.config_id != config_id));
    app.get(&format!("/api/v1/group-codes/{id}"), token)
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_wecom_opens_for_a_code_is_adopted_and_bad_input_is_refused() {
    let (app, standin, connector) = connected().await;
    let token = &app.admin_token;
    chat(&standin, "g7", 198).await;
    all_jobs_done(&app).await;
    let id = app
        .post(
            "/api/v1/group-codes",
            token,
            json!({"name": "直播福利群", "state": "grp-live", "connector_id": connector,
                   "chat_ids": ["g7"], "room_base_name": "直播福利", "room_base_id": 3}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    all_jobs_done(&app).await;
    let config_id = code(&app, id).await["join_way"]["config_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        standin
            .join_by_way(&config_id, "wmLIVE000001", "一")
            .await
            .unwrap(),
        "g7"
    );
    all_jobs_done(&app).await;
    // every chat full: the way keeps the last, from which WeCom opens the next room
    assert_eq!(code(&app, id).await["join_way"]["chat_ids"], json!(["g7"]));
    let room = standin
        .join_by_way(&config_id, "wmLIVE000002", "二")
        .await
        .unwrap();
    assert_ne!(room, "g7");
    all_jobs_done(&app).await;
    let now = code(&app, id).await;
    assert_eq!(
        now["chat_ids"],
        json!(["g7", room]),
        "the room adopted: {now}"
    );
    assert_eq!(now["join_way"]["chat_ids"], json!([room]));

    // bad input
    let bad = [
        json!({"name": "x", "state": "grp-live", "connector_id": connector, "chat_ids": ["g7"]}),
        json!({"name": "x", "state": "has space", "connector_id": connector, "chat_ids": ["g7"]}),
        json!({"name": "x", "state": "grp-2", "connector_id": connector, "chat_ids": ["nope"]}),
        json!({"name": "x", "state": "grp-3", "connector_id": connector, "chat_ids": []}),
        json!({"name": "x", "state": "grp-4", "connector_id": 999_999, "chat_ids": ["g7"]}),
    ];
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for body in bad {
            out.push(
                app.post("/api/v1/group-codes", token, body)
                    .await
                    .status
                    .as_u16(),
            );
        }
        out
    };
    assert_eq!(statuses, [409, 422, 422, 422, 422]);
}
