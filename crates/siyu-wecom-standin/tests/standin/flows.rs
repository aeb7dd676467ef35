//! Welcome codes, transfers, app messages, contact ways.

use super::*;

#[tokio::test]
async fn welcome_codes_are_single_use_and_last_20_seconds() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let added = standin
        .customer_adds("alice", contact(100), Some("spring".into()), true)
        .await;
    assert_eq!(added.delivered, Err(StandinError::NoCallback));
    assert_eq!(
        standin
            .follow_relation("alice", "wmtest00100")
            .unwrap()
            .state,
        "spring"
    );
    let code1 = added.welcome_code.unwrap();
    let send = |code: String| {
        let client = &client;
        let token = &token;
        async move {
            let body = json!({"welcome_code": code, "text": {"content": "欢迎光临"}});
            client
                .post("externalcontact/send_welcome_msg", token, body)
                .await
        }
    };
    assert_eq!(code(&send(code1.clone()).await), 0);
    assert_eq!(code(&send(code1.clone()).await), 41051);
    assert_eq!(code(&send(String::new()).await), 41049);
    let code2 = standin
        .customer_adds("bob", contact(101), None, true)
        .await
        .welcome_code
        .unwrap();
    standin.advance_clock(Duration::from_secs(21));
    assert_eq!(code(&send(code2).await), 41050);
    let sent = standin.welcome_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].userid.as_str(), sent[0].text.as_str()),
        ("alice", "欢迎光临")
    );
}

#[tokio::test]
async fn transfers_take_over_after_24_hours() {
    let standin = Standin::start(small_corp()).unwrap();
    // the clock moves days ahead: a token that outlives it
    standin.set_token_ttl(10 * 86_400);
    let client = Client::new(&standin);
    let token = client.token().await;
    let ext = "wmtest00005";
    let transfer = |from: &'static str, to: &'static str, ids: Value| {
        let body = json!({"handover_userid": from, "takeover_userid": to, "external_userid": ids});
        client.post("externalcontact/transfer_customer", &token, body)
    };
    let v = transfer("alice", "bob", json!([ext, "wmnobody", "wmtest00001"])).await;
    let codes: Vec<i64> = v["customer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["errcode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![0, 40096, 0]);
    let v = transfer("alice", "bob", json!([ext])).await;
    assert_eq!(
        v["customer"][0]["errcode"], 40129,
        "already being transferred"
    );

    let result = || {
        let body = json!({"handover_userid": "alice", "takeover_userid": "bob"});
        client.post("externalcontact/transfer_result", &token, body)
    };
    assert_eq!(result().await["customer"][0]["status"], 2);
    standin.advance_clock(Duration::from_secs(23 * 3600));
    assert!(standin.follow_relation("alice", ext).is_some());
    standin.advance_clock(Duration::from_secs(3600));
    assert_eq!(result().await["customer"][0]["status"], 1);
    assert!(standin.follow_relation("alice", ext).is_none());
    assert!(standin.follow_relation("bob", ext).is_some());

    // twice in 90 days at most
    assert_eq!(
        transfer("bob", "alice", json!([ext])).await["customer"][0]["errcode"],
        0
    );
    standin.advance_clock(Duration::from_secs(86_400));
    assert_eq!(
        transfer("alice", "bob", json!([ext])).await["customer"][0]["errcode"],
        40128
    );
    assert_eq!(
        transfer("alice", "alice", json!(["wmtest00006"])).await["customer"][0]["errcode"],
        40130
    );
    assert_eq!(
        transfer("bob", "alice", json!(["wmtest00009"])).await["customer"][0]["errcode"],
        40131
    );

    // resigned: the handover must have left
    let body = json!({"handover_userid": "alice", "takeover_userid": "bob", "external_userid": ["wmtest00007"]});
    let v = client
        .post("externalcontact/resigned/transfer_customer", &token, body)
        .await;
    assert_eq!(code(&v), 40097);

    // a refusal ends a waiting transfer with status 3
    assert_eq!(
        transfer("bob", "alice", json!(["wmtest00002"])).await["customer"][0]["errcode"],
        0
    );
    assert!(standin.customer_refuses_transfer("wmtest00002"));
    let body = json!({"handover_userid": "bob", "takeover_userid": "alice"});
    let v = client
        .post("externalcontact/transfer_result", &token, body)
        .await;
    let refused = v["customer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_userid"] == "wmtest00002");
    assert_eq!(refused.unwrap()["status"], 3);
    assert!(standin.follow_relation("bob", "wmtest00002").is_some());
}

#[tokio::test]
async fn app_messages_past_30_a_minute_are_dropped_silently() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    for i in 0..35 {
        let body = json!({"touser": "alice|nobody", "msgtype": "text", "agentid": 1000002,
                          "text": {"content": format!("第{i}条")}});
        let v = client.post("message/send", &token, body).await;
        assert_eq!(code(&v), 0);
        assert_eq!(v["invaliduser"], "nobody");
    }
    assert_eq!(standin.app_messages().len(), 30);
    assert_eq!(standin.app_messages_dropped(), 5);
    standin.advance_clock(Duration::from_secs(61));
    let body =
        json!({"touser": "alice", "msgtype": "text", "agentid": 1, "text": {"content": "x"}});
    assert_eq!(code(&client.post("message/send", &token, body).await), 0);
    assert_eq!(standin.app_messages().len(), 31);

    let body =
        json!({"touser": "nobody", "msgtype": "text", "agentid": 1, "text": {"content": "x"}});
    assert_eq!(
        code(&client.post("message/send", &token, body).await),
        81013
    );
    let body = json!({"touser": "alice", "msgtype": "text", "text": {"content": "x"}});
    assert_eq!(
        code(&client.post("message/send", &token, body).await),
        41011
    );
    let body = json!({"msgtype": "text", "agentid": 1, "text": {"content": "x"}});
    assert_eq!(
        code(&client.post("message/send", &token, body).await),
        82001
    );
    let body = json!({"touser": "alice", "msgtype": "text", "agentid": 1, "text": {"content": ""}});
    assert_eq!(
        code(&client.post("message/send", &token, body).await),
        44004
    );
}

#[tokio::test]
async fn contact_ways_carry_their_state_into_the_add() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let add = |body: Value| client.post("externalcontact/add_contact_way", &token, body);
    let v = add(json!({"type": 1, "scene": 2, "user": ["alice"], "state": "poster_a"})).await;
    assert_eq!(code(&v), 0, "{v}");
    let config_id = v["config_id"].as_str().unwrap().to_owned();
    // the QR image is served by the stand-in (WeCom's are on wework.qpic.cn), a PNG
    let qr_code = v["qr_code"].as_str().unwrap();
    assert_eq!(
        qr_code,
        format!("{}/wwpic/{config_id}/0", standin.base_url())
    );
    let image = reqwest::get(qr_code).await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let png = image.bytes().await.unwrap();
    assert_eq!(
        siyu_qr::read(&png).as_deref(),
        Some(format!("https://work.weixin.qq.com/ca/{config_id}").as_str())
    );
    let unknown = reqwest::get(format!("{}/wwpic/nope/0", standin.base_url()))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        code(&add(json!({"type": 1, "scene": 2, "user": ["alice", "bob"]})).await),
        40058
    );
    assert_eq!(
        code(&add(json!({"scene": 2, "user": ["alice"]})).await),
        41037
    );
    assert_eq!(
        code(&add(json!({"type": 1, "user": ["alice"]})).await),
        41038
    );
    assert_eq!(
        code(&add(json!({"type": 3, "scene": 2, "user": ["alice"]})).await),
        41039
    );
    let long = "x".repeat(31);
    assert_eq!(
        code(&add(json!({"type": 1, "scene": 2, "user": ["alice"], "state": long})).await),
        40058
    );

    let v = client
        .post(
            "externalcontact/get_contact_way",
            &token,
            json!({"config_id": config_id}),
        )
        .await;
    assert_eq!(v["contact_way"]["state"], "poster_a");
    let v = client
        .post(
            "externalcontact/get_contact_way",
            &token,
            json!({"config_id": "nope"}),
        )
        .await;
    assert_eq!(code(&v), 41044);

    let added = standin
        .customer_scans(&config_id, contact(200), false)
        .await
        .unwrap();
    assert!(added.welcome_code.is_none());
    assert_eq!(
        standin
            .follow_relation("alice", "wmtest00200")
            .unwrap()
            .state,
        "poster_a"
    );
    assert_eq!(standin.contact_ways().len(), 1);
}
