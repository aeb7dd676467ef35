//! Tokens, frequency and concurrency limits, injected faults.

use super::*;

#[tokio::test]
async fn token_is_reused_while_valid_and_renewed_after_expiry() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let first = client.gettoken(SECRET).await;
    assert_eq!(first["expires_in"], 7200);
    standin.advance_clock(Duration::from_secs(100));
    let again = client.gettoken(SECRET).await;
    assert_eq!(again["access_token"], first["access_token"]);
    assert!(again["expires_in"].as_u64().unwrap() <= 7100);
    let token = first["access_token"].as_str().unwrap();
    assert_eq!(
        code(
            &client
                .get(&format!("user/get?access_token={token}&userid=alice"))
                .await
        ),
        0
    );

    standin.advance_clock(Duration::from_secs(7200));
    let expired = client
        .get(&format!("user/get?access_token={token}&userid=alice"))
        .await;
    assert_eq!(code(&expired), 42001);
    assert!(expired["errmsg"].as_str().unwrap().contains("hint: ["));
    let renewed = client.gettoken(SECRET).await;
    assert_ne!(renewed["access_token"], first["access_token"]);

    assert_eq!(code(&client.get("gettoken?corpsecret=x").await), 41002);
    assert_eq!(
        code(&client.get(&format!("gettoken?corpid={CORP}")).await),
        41004
    );
    assert_eq!(
        code(&client.get("gettoken?corpid=wwother&corpsecret=x").await),
        40013
    );
    assert_eq!(code(&client.get("user/get?userid=alice").await), 41001);
    assert_eq!(
        code(
            &client
                .get("user/get?access_token=forged&userid=alice")
                .await
        ),
        40014
    );
}

#[tokio::test]
async fn revoked_secrets_and_expired_tokens() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    standin.expire_tokens();
    let v = client
        .post("user/list_id", &token, json!({"limit": 10}))
        .await;
    assert_eq!(code(&v), 42001);
    let token = client.token().await;
    let v = client
        .post("user/list_id", &token, json!({"limit": 10}))
        .await;
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["dept_user"].as_array().unwrap().len(), 2, "carol left");

    standin.revoke_secret(SECRET);
    assert_eq!(code(&client.gettoken(SECRET).await), 40001);
    let v = client
        .post("user/list_id", &token, json!({"limit": 10}))
        .await;
    assert_eq!(code(&v), 40014);
}

#[tokio::test]
async fn rate_limit_blocks_for_a_minute_and_faults_are_injected() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    standin.set_rate_limit(5, 1000);
    let path = format!("user/get?access_token={token}&userid=alice");
    for _ in 0..5 {
        assert_eq!(code(&client.get(&path).await), 0);
    }
    assert_eq!(code(&client.get(&path).await), 45009);
    // other paths have their own count
    assert_eq!(
        code(
            &client
                .get(&format!("department/list?access_token={token}"))
                .await
        ),
        0
    );
    standin.advance_clock(Duration::from_secs(30));
    assert_eq!(code(&client.get(&path).await), 45009, "still blocked");
    standin.advance_clock(Duration::from_secs(31));
    assert_eq!(code(&client.get(&path).await), 0);
    assert_eq!(standin.calls("user/get"), 8);

    standin.inject("/cgi-bin/user/get", -1, 2);
    assert_eq!(code(&client.get(&path).await), -1);
    assert_eq!(code(&client.get(&path).await), -1);
    assert_eq!(code(&client.get(&path).await), 0);
    let log = standin.call_log();
    assert_eq!(log.iter().filter(|r| r.errcode == -1).count(), 2);
    assert_eq!(
        code(
            &client
                .get(&format!("no/such/api?access_token={token}"))
                .await
        ),
        40058
    );
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_answer_45033() {
    let standin = Arc::new(Standin::start(small_corp()).unwrap());
    let client = Arc::new(Client::new(&standin));
    let token = client.token().await;
    standin.set_latency(Duration::from_millis(300));
    standin.set_max_concurrency(Some(2));
    let calls = (0..4).map(|_| {
        let client = client.clone();
        let path = format!("user/get?access_token={token}&userid=alice");
        tokio::spawn(async move { code(&client.get(&path).await) })
    });
    let mut codes = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        codes.push(call.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, vec![0, 0, 45033, 45033]);
}
