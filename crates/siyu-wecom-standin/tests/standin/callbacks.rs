//! Callbacks pushed to a receiver and decrypted with `CallbackCrypto`.

use super::*;

type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A tiny receiver standing in for siyu's callback endpoint.
async fn receiver() -> (String, Received) {
    use axum::extract::{RawQuery, State};
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/wecom/callback",
            axum::routing::post(
                |State(r): State<Received>, RawQuery(q): RawQuery, body: String| async move {
                    r.lock().unwrap().push((q.unwrap_or_default(), body));
                    "success"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wecom/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).expect("start") + start.len();
    let to = from + text[from..].find(end).expect("end");
    &text[from..to]
}

#[tokio::test]
async fn pushed_callbacks_decrypt_with_callback_crypto() {
    const TOKEN: &str = "callbacktoken";
    const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
    let standin = Standin::start(small_corp()).unwrap();
    let (url, received) = receiver().await;
    standin.set_callback(&url, TOKEN, KEY).unwrap();
    let added = standin
        .customer_adds("alice", contact(300), Some("live_room".into()), true)
        .await;
    assert_eq!(added.delivered, Ok(200));
    let vip = standin.with_corp(|c| c.tag_id("客户等级", "VIP")).unwrap();
    assert_eq!(
        standin
            .member_edits_tags("alice", "wmtest00300", &[&vip], &[])
            .await,
        Ok(200)
    );
    assert_eq!(
        standin
            .follow_relation("alice", "wmtest00300")
            .unwrap()
            .tag_ids,
        vec![vip]
    );
    assert_eq!(
        standin
            .customer_deletes_member("alice", "wmtest00300")
            .await,
        Ok(200)
    );
    assert!(
        standin
            .member_deletes_customer("alice", "wmtest00300")
            .await
            .is_err()
    );

    let crypto = CallbackCrypto::new(TOKEN, KEY, CORP).unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    let mut plaintexts = Vec::new();
    for (query, body) in &received {
        let q: std::collections::HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let encrypted = between(body, "<Encrypt><![CDATA[", "]]></Encrypt>");
        let plain = crypto
            .decrypt(&q["msg_signature"], &q["timestamp"], &q["nonce"], encrypted)
            .expect("decrypts");
        plaintexts.push(plain);
    }
    assert!(plaintexts[0].contains("<ChangeType><![CDATA[add_external_contact]]></ChangeType>"));
    assert!(plaintexts[0].contains("<State><![CDATA[live_room]]></State>"));
    let welcome = added.welcome_code.unwrap();
    assert!(plaintexts[0].contains(&format!("<WelcomeCode><![CDATA[{welcome}]]></WelcomeCode>")));
    assert!(plaintexts[1].contains("edit_external_contact"));
    assert!(plaintexts[2].contains("del_follow_user"));
    assert_eq!(standin.pushed().len(), 3);

    // the helper for tests that send (or tamper with) the request themselves
    let xml = standin.build_event_xml(
        "change_external_tag",
        "create",
        &[("Id", "etX"), ("TagType", "tag")],
    );
    let (query, body) = standin.encrypted_callback(&xml).unwrap();
    let q: std::collections::HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let encrypted = between(&body, "<Encrypt><![CDATA[", "]]></Encrypt>");
    assert_eq!(
        crypto
            .decrypt(&q["msg_signature"], &q["timestamp"], &q["nonce"], encrypted)
            .unwrap(),
        xml
    );
}

#[tokio::test]
async fn completed_transfers_push_their_callbacks() {
    let standin = Standin::start(small_corp()).unwrap();
    standin.set_token_ttl(3 * 86_400);
    let (url, received) = receiver().await;
    standin
        .set_callback(&url, "t", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")
        .unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let body = json!({"handover_userid": "alice", "takeover_userid": "bob",
                      "external_userid": ["wmtest00001", "wmtest00008"]});
    let v = client
        .post("externalcontact/transfer_customer", &token, body)
        .await;
    assert_eq!(code(&v), 0, "{v}");
    assert!(
        standin.push_transfer_callbacks().await.is_empty(),
        "nothing done yet"
    );
    standin.advance_clock(Duration::from_secs(86_400));
    // wmtest00001 was bob's already: no add for it
    let delivered = standin.push_transfer_callbacks().await;
    assert_eq!(delivered, vec![Ok(200), Ok(200), Ok(200)]);
    let pushed: Vec<String> = standin.pushed().into_iter().map(|p| p.plaintext).collect();
    assert_eq!(
        pushed
            .iter()
            .filter(|p| p.contains("DELETE_BY_TRANSFER"))
            .count(),
        2
    );
    assert!(pushed[2].contains("add_external_contact") && pushed[2].contains("wmtest00008"));
    assert_eq!(received.lock().unwrap().len(), 3);
    assert_eq!(standin.with_corp(|c| c.customers_of("alice").len()), 8);
}
