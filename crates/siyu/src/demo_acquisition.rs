//! The demo's acquisition: the tea brand's accounts on Douyin, Xiaohongshu and Weibo,
//! channel codes on them routed to its store guides (their landing pages visited), a
//! registered shop destination and tracked links whose clicks of the past month went
//! through ingestion like any event, from the phones of some of the demo's customers
//! (personal ones on the customer they were made for, the others known by the phone's
//! anonymous id). Made with the rest of the demo on its first run. Group codes need the corp's
//! chats, which the first sync brings after the server starts: make one in the console.

use rand::{Rng, SeedableRng};
use siyu_domain::acquisition::links::{
    Click, LinkKey, NewLinkDestination, NewTrackedLink, click_event,
};
use siyu_domain::acquisition::{
    CodeMember, CodeMemberRole, NewChannelAccount, NewChannelCode, Platform,
};
use siyu_domain::audit::Actor;
use siyu_domain::customer::CustomerId;
use siyu_domain::ids::{StaffId, TenantId};
use siyu_store::{IngestItem, SecretName, Store};

const DAY_MS: i64 = 86_400_000;

pub async fn seed(
    store: &Store,
    tenant: TenantId,
    customers: &[CustomerId],
    guides: &[StaffId],
) -> anyhow::Result<()> {
    let scope = store.tenant(tenant);
    let actor = Actor::cli();
    let account = |platform, name: &str, handle: &str| NewChannelAccount {
        platform,
        name: name.into(),
        domain_class: None,
        handle: Some(handle.into()),
        unit_id: None,
        owner_staff_id: None,
    };
    let douyin = scope
        .create_channel_account(
            &account(Platform::Douyin, "露米茶饮官方号", "lumitea").check()?,
            &actor,
        )
        .await?;
    let xhs = scope
        .create_channel_account(
            &account(Platform::Xiaohongshu, "露米种草笔记", "lumi_notes").check()?,
            &actor,
        )
        .await?;
    scope
        .create_channel_account(
            &account(Platform::Weibo, "露米茶饮微博", "lumitea_weibo").check()?,
            &actor,
        )
        .await?;
    let members: Vec<CodeMember> = guides
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, staff)| CodeMember {
            staff_id: *staff,
            role: if i < 2 {
                CodeMemberRole::Primary
            } else {
                CodeMemberRole::Backup
            },
            weight: 1,
            daily_capacity: Some(50),
        })
        .collect();
    for (name, state, account) in [
        ("618 直播间活码", "live-618", douyin.id),
        ("小红书笔记活码", "xhs-note-01", xhs.id),
    ] {
        let code = scope
            .create_channel_code(
                &NewChannelCode {
                    name: name.into(),
                    state: state.into(),
                    account_id: Some(account),
                    connector_id: None,
                    unit_id: None,
                    members: members.clone(),
                    tag_ids: Vec::new(),
                    welcome: Some("{customer}您好，我是{member}，欢迎来到露米茶饮！".into()),
                    skip_verify: None,
                    routing: None,
                    landing_first: None,
                }
                .check()?,
                None,
                &actor,
            )
            .await?;
        for visitor in 0..12 {
            scope
                .record_code_scan(code.id, &format!("{visitor:016x}"), visitor % 6 == 5)
                .await?;
        }
    }

    // tracked links to the brand's shop, and a month of their clicks
    let (prefix, note) = NewLinkDestination {
        url_prefix: "https://shop.lumi-tea.example.com/".into(),
        note: Some("露米茶饮商城".into()),
    }
    .check()?;
    scope.add_link_destination(&prefix, &note, &actor).await?;
    let link = |name: &str, path: &str, source: &str, campaign: &str| NewTrackedLink {
        name: name.into(),
        destination: format!("{prefix}{path}"),
        utm_source: Some(source.into()),
        utm_medium: Some("social".into()),
        utm_campaign: Some(campaign.into()),
        utm_term: None,
        utm_content: None,
        account_id: None,
    };
    let registered = std::slice::from_ref(&prefix);
    let links = [
        scope
            .create_tracked_link(
                &link("618 直播福利", "promo/618", "douyin", "618").check(registered)?,
                None,
                &actor,
            )
            .await?,
        scope
            .create_tracked_link(
                &link("新品乌龙种草", "tea/oolong", "xiaohongshu", "oolong-launch")
                    .check(registered)?,
                None,
                &actor,
            )
            .await?,
    ];
    let source = scope.links_source(&actor).await?;
    let key = LinkKey::from_bytes(
        &scope
            .secret_or_put(
                &SecretName::new(LinkKey::SECRET_NAME)?,
                LinkKey::generate,
                &actor,
            )
            .await?,
    );
    // the clicks come from 80 of the demo's customers' phones: each phone's first click
    // is on a personal link (its anonymous id joins that customer), later ones may be on
    // the shared link and are known by that id; one in five is personal
    let people: Vec<CustomerId> = customers.iter().take(80).copied().collect();
    let mut seen = vec![false; people.len()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(618);
    let now = siyu_store::now_ms();
    let mut items = Vec::new();
    for i in 0..600 {
        let link = &links[i % links.len()];
        let who = (!people.is_empty() && key.is_some()).then(|| rng.gen_range(0..people.len()));
        let customer = who.filter(|w| !seen[*w] || i % 5 == 0).map(|w| people[w]);
        if let Some(w) = who {
            seen[w] = true;
        }
        let visitor = format!("{:016x}", who.unwrap_or(i) as u64 + 0xde30_0000_0000);
        let at = now - rng.gen_range(DAY_MS..30 * DAY_MS);
        let event = click_event(
            &Click {
                link: link.id,
                slug: &link.slug,
                name: &link.name,
                target: &link.target,
                utm: &link.utm,
                customer,
                visitor: &visitor,
                user_agent: Some("Mozilla/5.0 (iPhone) MicroMessenger/8.0.47 NetType/WIFI"),
                referrer: None,
            },
            format!("demo-click-{i}"),
            at,
        );
        items.push(IngestItem { source, event });
    }
    store.ingest(&items).await?;
    Ok(())
}
