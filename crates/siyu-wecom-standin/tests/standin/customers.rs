//! Staff and customer reads: paging, tags, the generated corp.

use super::*;

/// Every (customer, member) pair over all pages, as "userid/external_userid".
async fn sync_all(
    client: &Client,
    token: &str,
    users: &[&str],
    limit: u64,
    mut between_pages: impl FnMut(usize),
) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut cursor = String::new();
    let mut page = 0;
    loop {
        let body = json!({"userid_list": users, "cursor": cursor, "limit": limit});
        let v = client
            .post("externalcontact/batch/get_by_user", token, body)
            .await;
        assert_eq!(code(&v), 0, "{v}");
        for item in v["external_contact_list"].as_array().unwrap() {
            pairs.push(format!(
                "{}/{}",
                item["follow_info"]["userid"].as_str().unwrap(),
                item["external_contact"]["external_userid"]
                    .as_str()
                    .unwrap()
            ));
        }
        cursor = v["next_cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            return pairs;
        }
        page += 1;
        between_pages(page);
    }
}

#[tokio::test]
async fn batch_get_by_user_pages_every_pair_once_even_while_contacts_are_added() {
    let corp = Corp::generate(&GenerateSpec {
        members: 7,
        contacts: 1_000,
        ..GenerateSpec::default()
    });
    let expected = corp.relation_count();
    let standin = Standin::start(corp).unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: standin.base_url(),
    };
    let token = client
        .get(&format!(
            "gettoken?corpid={}&corpsecret={}",
            siyu_wecom_standin::GENERATED_CORP_ID,
            siyu_wecom_standin::GENERATED_SECRET
        ))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users: Vec<String> = (1..=7).map(|i| format!("member{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();

    let pairs = sync_all(&client, &token, &users, 100, |_| {}).await;
    assert_eq!(pairs.len(), expected);
    assert_eq!(pairs.iter().collect::<HashSet<_>>().len(), expected);

    // customers added between pages: the old pairs come exactly once, nothing twice
    let before: HashSet<String> = pairs.into_iter().collect();
    let pairs = sync_all(&client, &token, &users, 37, |page| {
        standin.with_corp(|corp| {
            for (n, userid) in ["member001", "member004", "member007"].iter().enumerate() {
                let id = format!("wm{page:04}{n}");
                *corp = std::mem::take(corp)
                    .add_contact(ExternalContact::wechat(&id, "新客户"))
                    .follow(userid, &id, FollowInfo::default());
            }
        });
    })
    .await;
    let got: HashSet<&String> = pairs.iter().collect();
    assert_eq!(got.len(), pairs.len(), "no pair twice");
    assert!(
        before.iter().all(|p| got.contains(p)),
        "every old pair once"
    );

    let bad = client
        .post(
            "externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": users, "cursor": "not-a-cursor"}),
        )
        .await;
    assert_eq!(code(&bad), 50100);
    let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let v = client
        .post(
            "externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": too_many}),
        )
        .await;
    assert_eq!(code(&v), 40058);
    let v = client
        .post(
            "externalcontact/batch/get_by_user",
            &token,
            json!({"userid_list": users}),
        )
        .await;
    assert_eq!(
        v["external_contact_list"].as_array().unwrap().len(),
        50,
        "default limit"
    );
}

#[tokio::test]
async fn mark_tag_changes_the_relation() {
    let standin = Standin::start(small_corp()).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let vip = standin.with_corp(|c| c.tag_id("客户等级", "VIP")).unwrap();
    let ext = "wmtest00001";
    let mark = |body: Value| client.post("externalcontact/mark_tag", &token, body);
    let v = mark(json!({"userid": "alice", "external_userid": ext, "add_tag": [vip]})).await;
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(
        standin.follow_relation("alice", ext).unwrap().tag_ids,
        vec![vip.clone()]
    );
    let v = client
        .get(&format!(
            "externalcontact/get?access_token={token}&external_userid={ext}"
        ))
        .await;
    let tags = &v["follow_user"][0]["tags"][0];
    assert_eq!(
        (tags["group_name"].as_str(), tags["tag_name"].as_str()),
        (Some("客户等级"), Some("VIP"))
    );
    assert_eq!(v["external_contact"]["unionid"], "ounion00001");

    let v = mark(json!({"userid": "alice", "external_userid": ext, "add_tag": ["etNOPE"]})).await;
    assert_eq!(code(&v), 40068);
    let v =
        mark(json!({"userid": "bob", "external_userid": "wmtest00009", "add_tag": [vip]})).await;
    assert_eq!(code(&v), 84061);
    let v = mark(json!({"userid": "alice", "external_userid": ext})).await;
    assert_eq!(code(&v), 40058);
    let v = mark(json!({"userid": "alice", "external_userid": ext, "remove_tag": [vip]})).await;
    assert_eq!(code(&v), 0);
    assert!(
        standin
            .follow_relation("alice", ext)
            .unwrap()
            .tag_ids
            .is_empty()
    );

    // a new tag in an existing group, then listed
    let v = client
        .post(
            "externalcontact/add_corp_tag",
            &token,
            json!({"group_name": "客户等级", "tag": [{"name": "黑卡"}, {"name": "黑卡"}]}),
        )
        .await;
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["tag_group"]["tag"].as_array().unwrap().len(), 1);
    let v = client
        .post("externalcontact/get_corp_tag_list", &token, json!({}))
        .await;
    assert_eq!(v["tag_group"][0]["tag"].as_array().unwrap().len(), 3);
    assert!(v["tag_group"][0].get("deleted").is_none());
}

#[tokio::test]
async fn staff_customers_and_group_chats_read_as_wecom_shapes_them() {
    let corp = small_corp().add_group_chat(siyu_wecom_standin::GroupChat {
        chat_id: "wrchat1".into(),
        name: "会员群".into(),
        owner: "alice".into(),
        create_time: 1_700_000_000,
        member_list: vec![siyu_wecom_standin::ChatMember {
            userid: "wmtest00001".into(),
            type_: 2,
            join_scene: 3,
            state: Some("qr_a".into()),
            name: "客户1".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let standin = Standin::start(corp).unwrap();
    let client = Client::new(&standin);
    let token = client.token().await;
    let get = |q: String| {
        let (client, path) = (&client, format!("{q}&access_token={token}"));
        async move { client.get(&path).await }
    };
    assert_eq!(
        code(&get("user/get?userid=carol".into()).await),
        60111,
        "carol left"
    );
    let v = get("user/simplelist?department_id=1&fetch_child=1".into()).await;
    assert_eq!(v["userlist"].as_array().unwrap().len(), 2);
    assert_eq!(
        code(&get("user/simplelist?department_id=99".into()).await),
        60123
    );
    let v = get("department/list?id=1".into()).await;
    assert_eq!(v["department"].as_array().unwrap().len(), 2);
    let v = get("externalcontact/get_follow_user_list?x=1".into()).await;
    assert_eq!(v["follow_user"], json!(["alice", "bob"]));
    let v = get("externalcontact/list?userid=bob".into()).await;
    assert_eq!(v["external_userid"].as_array().unwrap().len(), 3);
    standin.with_corp(|c| {
        c.insert_member(Member::new("dave", "戴夫", 2));
    });
    assert_eq!(
        code(&get("externalcontact/list?userid=dave".into()).await),
        84061
    );
    assert_eq!(
        code(&get("externalcontact/get?external_userid=wmnobody".into()).await),
        40096
    );

    let list = |body: Value| client.post("externalcontact/groupchat/list", &token, body);
    assert_eq!(code(&list(json!({})).await), 40058, "limit is required");
    let v = list(json!({"limit": 10, "owner_filter": {"userid_list": ["alice"]}})).await;
    assert_eq!(
        v["group_chat_list"],
        json!([{"chat_id": "wrchat1", "status": 0}])
    );
    let v = client
        .post(
            "externalcontact/groupchat/get",
            &token,
            json!({"chat_id": "wrchat1", "need_name": 1}),
        )
        .await;
    let member = &v["group_chat"]["member_list"][0];
    assert_eq!(
        (member["state"].as_str(), member["name"].as_str()),
        (Some("qr_a"), Some("客户1"))
    );
}

#[test]
fn generating_the_benchmark_corp() {
    let started = Instant::now();
    let corp = Corp::generate(&GenerateSpec::default());
    let took = started.elapsed();
    println!(
        "generated {} customers, {} relations, {} tags in {took:?}",
        corp.contact_count(),
        corp.relation_count(),
        corp.tag_ids().len()
    );
    assert_eq!(corp.contact_count(), 100_000);
    assert!(corp.relation_count() > 105_000 && corp.relation_count() < 115_000);
    assert_eq!(corp.members().count(), 50);
    let again = Corp::generate(&GenerateSpec {
        contacts: 1_000,
        ..GenerateSpec::default()
    });
    let twice = Corp::generate(&GenerateSpec {
        contacts: 1_000,
        ..GenerateSpec::default()
    });
    assert_eq!(
        again.customers_of("member001"),
        twice.customers_of("member001"),
        "deterministic"
    );
}

/// The benchmark's sync (100,000 customers, 50 members) against a debug build: run with
/// `--ignored --nocapture` to see the figure.
#[tokio::test]
#[ignore = "builds 100,000 customers: run for the figure (about 5 s of paging in a debug build)"]
async fn full_sync_of_the_benchmark_corp() {
    let corp = Corp::generate(&GenerateSpec::default());
    let expected = corp.relation_count();
    let standin = Standin::start(corp).unwrap();
    let client = Client::new(&standin);
    let token = client
        .get(&format!(
            "gettoken?corpid={}&corpsecret={}",
            siyu_wecom_standin::GENERATED_CORP_ID,
            siyu_wecom_standin::GENERATED_SECRET
        ))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let users: Vec<String> = (1..=50).map(|i| format!("member{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let started = Instant::now();
    let pairs = sync_all(&client, &token, &users, 100, |_| {}).await;
    println!(
        "synced {} pairs in {} pages in {:?}",
        pairs.len(),
        standin.calls("externalcontact/batch/get_by_user"),
        started.elapsed()
    );
    assert_eq!(pairs.len(), expected);
}
