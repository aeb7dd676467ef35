//! The stand-in, driven over HTTP the way siyu's connector drives WeCom (one test
//! binary, a module per concern).

mod auth;
mod callbacks;
mod customers;
mod flows;
mod mass;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use siyu_connect::wecom::crypto::CallbackCrypto;
use siyu_wecom_standin::{
    Corp, ExternalContact, FollowInfo, GenerateSpec, Member, Standin, StandinError,
};

const CORP: &str = "wwtestcorp0001";
const SECRET: &str = "test-secret";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(standin: &Standin) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: standin.base_url(),
        }
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}/cgi-bin/{path_and_query}", self.base);
        let response = self.http.get(url).send().await.expect("sent");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let url = format!("{}/cgi-bin/{path}?access_token={token}", self.base);
        let response = self.http.post(url).json(&body).send().await.expect("sent");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    async fn gettoken(&self, secret: &str) -> Value {
        self.get(&format!("gettoken?corpid={CORP}&corpsecret={secret}"))
            .await
    }

    async fn token(&self) -> String {
        let v = self.gettoken(SECRET).await;
        assert_eq!(v["errcode"], 0, "{v}");
        v["access_token"].as_str().expect("token").to_owned()
    }
}

fn code(v: &Value) -> i64 {
    v["errcode"].as_i64().expect("errcode")
}

fn contact(i: usize) -> ExternalContact {
    let mut c = ExternalContact::wechat(&format!("wmtest{i:05}"), &format!("客户{i}"));
    c.unionid = Some(format!("ounion{i:05}"));
    c
}

/// alice and bob in department 2, carol left; 10 customers of alice (3 also bob's).
fn small_corp() -> Corp {
    let mut corp = Corp::new(CORP)
        .add_secret(SECRET)
        .add_department(1, "总部", 0)
        .add_department(2, "销售部", 1)
        .add_member(Member::new("alice", "爱丽丝", 2))
        .add_member(Member::new("bob", "鲍勃", 2))
        .add_member(Member {
            status: 5,
            ..Member::new("carol", "卡罗", 1)
        })
        .add_tag_group("客户等级", &["VIP", "普通"]);
    for i in 0..10 {
        corp = corp.add_contact(contact(i)).follow(
            "alice",
            &contact(i).external_userid,
            FollowInfo {
                createtime: 1_700_000_000 + i as u64,
                ..FollowInfo::default()
            },
        );
        if i < 3 {
            corp = corp.follow("bob", &contact(i).external_userid, FollowInfo::default());
        }
    }
    corp
}
