//! The demo's content library, message templates and quick replies: what the tea
//! brand's staff send — an opening line, a greeting that names the customer, a link card
//! to the spring collection, an article on brewing, the answers service staff give every
//! day — so that the library, the mass-send wizard and the quick replies beside a
//! customer have something to pick on the first run. Images and files need uploads: add
//! them in the console.

use std::collections::BTreeMap;

use siyu_domain::audit::Actor;
use siyu_domain::engagement::content::{
    ContentCategory, ContentKind, ContentSource, NewContentItem,
};
use siyu_domain::engagement::quick_reply::{NewQuickReply, NewQuickReplyGroup, QuickReplyLibrary};
use siyu_domain::engagement::template::NewMessageTemplate;
use siyu_domain::ids::TenantId;
use siyu_store::Store;

fn item(
    kind: ContentKind,
    title: &str,
    category: ContentCategory,
    tags: &[&str],
) -> NewContentItem {
    NewContentItem {
        kind,
        title: title.into(),
        category: Some(category),
        source: Some(ContentSource::Bgc),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        unit_id: None,
        text: None,
        file_id: None,
        url: None,
        description: None,
        image_file_id: None,
        appid: None,
        page: None,
        article: None,
    }
}

pub async fn seed(store: &Store, tenant: TenantId) -> anyhow::Result<()> {
    let scope = store.tenant(tenant);
    let actor = Actor::cli();
    let items = [
        NewContentItem {
            text: Some("您好，我是您的专属茶顾问，有任何关于茶叶的问题都可以随时问我。".into()),
            source: Some(ContentSource::Ogc),
            ..item(
                ContentKind::Text,
                "添加好友开场白",
                ContentCategory::Story,
                &["开场", "通用"],
            )
        },
        NewContentItem {
            url: Some("https://shop.example.com/spring".into()),
            description: Some("明前龙井、碧螺春新茶上市，会员专享八折".into()),
            ..item(
                ContentKind::Link,
                "春茶上新",
                ContentCategory::Promotion,
                &["新品", "春季"],
            )
        },
        NewContentItem {
            article: Some(
                "绿茶宜用 80℃ 左右的水，避免烫熟茶叶。\n\n投茶量约为每 100 毫升水 2 克，\
                 第一泡 45 秒即可出汤。\n\n之后每泡延长 15 秒，可冲泡三到四次。"
                    .into(),
            ),
            description: Some("三分钟学会泡一杯好绿茶".into()),
            source: Some(ContentSource::Pgc),
            ..item(
                ContentKind::Article,
                "绿茶冲泡指南",
                ContentCategory::Knowledge,
                &["知识", "绿茶"],
            )
        },
    ];
    for new in items {
        scope
            .create_content_item(&new.check()?, None, &actor)
            .await?;
    }
    let greeting = NewMessageTemplate {
        name: "会员日问候".into(),
        body: "{{ customer.name }}您好，本周六是会员日，{{ brand.name }}全场茶叶八折，\
               欢迎到店品鉴。"
            .into(),
        fallbacks: BTreeMap::from([
            ("customer.name".to_owned(), "亲爱的会员".to_owned()),
            ("brand.name".to_owned(), "我们".to_owned()),
        ]),
    };
    scope
        .create_message_template(&greeting.check()?, None, &actor)
        .await?;
    seed_quick_replies(store, tenant).await
}

/// The tenant's quick replies, in two groups.
async fn seed_quick_replies(store: &Store, tenant: TenantId) -> anyhow::Result<()> {
    let scope = store.tenant(tenant);
    let actor = Actor::cli();
    let groups = [
        (
            "售后",
            vec![
                (
                    "退款说明",
                    "退款会在三个工作日内原路返回，请留意银行或微信支付的通知。",
                ),
                (
                    "发货时间",
                    "下单后 48 小时内从杭州仓发货，节假日顺延，发货后会短信通知您。",
                ),
                (
                    "茶叶保存",
                    "开封后请密封冷藏，避光防潮，一个月内喝完风味最好。",
                ),
            ],
        ),
        (
            "活动",
            vec![
                ("会员日", "每周六是会员日，全场茶叶八折，积分双倍。"),
                (
                    "新人礼",
                    "添加好友即送 20 元新人券，满 99 元可用，7 天内有效。",
                ),
            ],
        ),
    ];
    for (position, (name, replies)) in groups.into_iter().enumerate() {
        let group = NewQuickReplyGroup {
            library: Some(QuickReplyLibrary::Tenant),
            name: name.into(),
            position: Some(position as i64),
        };
        let group = scope
            .create_quick_reply_group(&group.check()?, None)
            .await?;
        for (title, text) in replies {
            let reply = NewQuickReply {
                library: Some(QuickReplyLibrary::Tenant),
                group_id: Some(group.id),
                title: title.into(),
                text: text.into(),
                content_id: None,
            };
            scope
                .create_quick_reply(&reply.check()?, None, &actor)
                .await?;
        }
    }
    Ok(())
}
