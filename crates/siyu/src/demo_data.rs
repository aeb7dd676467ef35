//! The demo tenant's customers, generated: a year of two brands' private-domain
//! operations, deterministic for a seed (and the day it is generated on).
//!
//! What makes it look like a real brand's data, so the dashboard and segments have
//! something true to show:
//! - acquisition grows over the year, with peaks at 618, mid-autumn and 双11, through
//!   the brand's own channels (mini program, WeCom, official account, app, site) and
//!   public-platform shops (Tmall, JD, Douyin) whose orders a server source syncs;
//! - about 45% of customers churn after a few weeks; the rest stay active;
//! - spend is Pareto-distributed (a few customers bring most of the GMV), orders come in
//!   seasonal waves, private-domain customers buy again more often, and some customers
//!   found on a public platform later buy through the mini-shop;
//! - a few customers spread the word (shares, invites) and a few complain.
//!
//! Generation is plain data (Segment-spec JSON events and plans for owners and consent);
//! [`crate::demo`] sends it through the same ingestion path the tracking API uses.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

/// The acquisition channels, each a source of the demo tenant.
pub const CHANNELS: [Channel; 8] = [
    Channel::new("露米小程序", "mini_program", 26, true, "mini_shop"),
    Channel::new("企业微信", "wecom", 18, true, "wecom"),
    Channel::new("服务号", "official_account", 10, true, "official_account"),
    Channel::new("品牌 App", "app", 8, true, "app"),
    Channel::new("品牌官网", "website", 4, true, "website"),
    Channel::new("天猫旗舰店", "server", 18, false, "tmall"),
    Channel::new("京东自营", "server", 9, false, "jd"),
    Channel::new("抖音小店", "server", 7, false, "douyin_shop"),
];

/// The channel codes (渠道活码, by `state`) that bring people into WeCom and the
/// official account: posters in stores, live streams, parcel inserts, a Douyin profile.
pub const CHANNEL_CODES: [(&str, u32); 4] = [
    ("store-poster", 40),
    ("live-618", 25),
    ("parcel-card", 20),
    ("douyin-profile", 15),
];

#[derive(Debug, Clone, Copy)]
pub struct Channel {
    /// The source's name.
    pub source: &'static str,
    /// The source's kind.
    pub kind: &'static str,
    weight: u32,
    pub private: bool,
    /// Where its customers' orders are placed.
    pub sales_channel: &'static str,
}

impl Channel {
    const fn new(
        source: &'static str,
        kind: &'static str,
        weight: u32,
        private: bool,
        sales_channel: &'static str,
    ) -> Self {
        Self {
            source,
            kind,
            weight,
            private,
            sales_channel,
        }
    }
}

/// One brand and the units its orders are placed in.
#[derive(Debug, Clone)]
pub struct Brand {
    pub unit: i64,
    pub stores: Vec<i64>,
    products: &'static [(&'static str, &'static str, &'static str, i64)],
}

pub const TEA_PRODUCTS: &[(&str, &str, &str, i64)] = &[
    ("TEA-01", "桂花乌龙", "乌龙茶", 28),
    ("TEA-02", "茉莉绿茶", "绿茶", 22),
    ("TEA-03", "冷萃白桃乌龙", "乌龙茶", 32),
    ("GIFT-01", "中秋礼盒", "礼盒", 168),
    ("CUP-01", "随行杯", "周边", 59),
];

pub const SKIN_PRODUCTS: &[(&str, &str, &str, i64)] = &[
    ("SKIN-01", "云杉精华", "精华", 399),
    ("SKIN-02", "保湿面霜", "面霜", 268),
    ("SKIN-03", "洁面乳", "洁面", 89),
    ("SKIN-04", "修护面膜 5 片", "面膜", 129),
    ("GIFT-02", "双11 限定礼盒", "礼盒", 899),
];

impl Brand {
    pub fn tea(unit: i64, stores: Vec<i64>) -> Self {
        Self {
            unit,
            stores,
            products: TEA_PRODUCTS,
        }
    }

    pub fn skin(unit: i64, stores: Vec<i64>) -> Self {
        Self {
            unit,
            stores,
            products: SKIN_PRODUCTS,
        }
    }
}

/// One generated customer.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoCustomer {
    pub user_id: String,
    /// Index into [`CHANNELS`].
    pub channel: usize,
    /// Index into the brands given.
    pub brand: usize,
    /// Their events in time order, as the tracking API takes them (`type` included).
    pub events: Vec<Value>,
    /// Looked after by a store's staff (WeCom friends and some mini-program customers).
    pub owned: bool,
    pub sms_opt_out: bool,
    pub all_opt_out: bool,
    /// Net order total in yuan (for checks).
    pub spend: i64,
    pub orders: u32,
    /// Interests a store guide would tag.
    pub likes_oolong: bool,
}

const FAMILY: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN: [&str; 24] = [
    "芳", "娜", "敏", "静", "伟", "强", "磊", "洋", "艳", "军", "杰", "婷", "雪", "琳", "浩", "宇",
    "欣", "悦", "晨", "涛", "颖", "佳", "倩", "博",
];
const CITIES: [(&str, u32); 10] = [
    ("上海", 22),
    ("杭州", 14),
    ("南京", 10),
    ("苏州", 9),
    ("北京", 12),
    ("深圳", 9),
    ("广州", 8),
    ("成都", 7),
    ("武汉", 5),
    ("宁波", 4),
];

/// Customers for a demo whose "today" is `today_ms` (the start of a UTC day).
pub fn generate(seed: u64, count: usize, today_ms: i64, brands: &[Brand]) -> Vec<DemoCustomer> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| customer(&mut rng, i, today_ms, brands))
        .collect()
}

fn pick_weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.gen_range(0..total);
    for (item, w) in items {
        if n < *w {
            return *item;
        }
        n -= w;
    }
    items[items.len() - 1].0
}

/// How busy shopping is on a day of the year (1.0 normal): 618, mid-autumn, 双11, and
/// the weeks before the Spring Festival.
fn season(day_ms: i64) -> f64 {
    let (_, m, d) = siyu_audience::facts::civil_from_days(day_ms.div_euclid(DAY_MS) as i32);
    match (m, d) {
        (11, 1..=11) => 3.0,
        (6, 10..=18) => 2.2,
        (9, 10..=25) => 1.8,
        (12, 20..=31) | (1, _) => 1.5,
        (2, 1..=10) => 1.4,
        _ => 1.0,
    }
}

/// A day in `[from, to]` (ms, day starts), more likely in busy seasons.
fn seasonal_day(rng: &mut StdRng, from: i64, to: i64) -> i64 {
    let days = ((to - from) / DAY_MS).max(0);
    loop {
        let day = from + rng.gen_range(0..=days) * DAY_MS;
        if rng.gen_bool((season(day) / 3.0).min(1.0)) {
            return day;
        }
    }
}

/// A Pareto draw with scale 1 and shape `alpha` (heavier tail for smaller alpha).
fn pareto(rng: &mut StdRng, alpha: f64) -> f64 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    u.powf(-1.0 / alpha)
}

fn at(day: i64, rng: &mut StdRng) -> String {
    // shoppers are awake 08:00–23:00 Beijing time (00:00–15:00 UTC)
    let ms = day + rng.gen_range(0..15 * 3_600_000);
    siyu_domain::time::format_rfc3339(ms)
}

fn customer(rng: &mut StdRng, i: usize, today: i64, brands: &[Brand]) -> DemoCustomer {
    let channels: Vec<(usize, u32)> = CHANNELS
        .iter()
        .enumerate()
        .map(|(n, c)| (n, c.weight))
        .collect();
    let channel_index = pick_weighted(rng, &channels);
    let channel = CHANNELS[channel_index];
    let brand_index = if rng.gen_bool(0.6) || brands.len() < 2 {
        0
    } else {
        1
    };
    let brand = &brands[brand_index];
    let user_id = format!("demo-{i:06}");
    let name = format!(
        "{}{}",
        FAMILY[rng.gen_range(0..FAMILY.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    );
    let phone = format!("139{:08}", 10_000_000 + i);
    let city = pick_weighted(rng, &CITIES);

    // acquisition: more customers recently (the programme grows), and in busy seasons
    let year_ago = today - 364 * DAY_MS;
    let first = loop {
        let day = seasonal_day(rng, year_ago, today);
        let age = (today - day) as f64 / (365.0 * DAY_MS as f64);
        if rng.gen_bool(1.0 - 0.5 * age) {
            break day;
        }
    };
    // churners stop after a few weeks; the others stay until today
    let churner = rng.gen_bool(0.45);
    let last = if churner {
        (first + rng.gen_range(3..60) * DAY_MS).min(today)
    } else {
        today
    };

    let mut events: Vec<(i64, Value)> = Vec::new();
    let view = if channel.kind == "app" {
        "screen"
    } else {
        "page"
    };
    let anonymous = rng.gen_bool(0.25).then(|| format!("device-{i:06}"));
    let who = |e: &mut Value| {
        e["userId"] = json!(user_id);
    };
    if let Some(device) = &anonymous {
        // a visitor first, known once they sign up
        events.push((
            first,
            json!({"type": view, "anonymousId": device, "name": "首页", "timestamp": at(first, rng)}),
        ));
    }
    let member_level = match rng.gen_range(0..10) {
        0 => "金卡",
        1..=3 => "银卡",
        _ => "普通",
    };
    let gender = if rng.gen_bool(0.68) { "女" } else { "男" };
    let mut identify = json!({"type": "identify", "userId": user_id,
        "traits": {"name": name, "phone": phone, "city": city, "gender": gender,
                   "member_level": member_level, "birth_year": rng.gen_range(1975..2005)},
        "timestamp": at(first, rng)});
    if let Some(device) = &anonymous {
        identify["anonymousId"] = json!(device);
    }
    events.push((first, identify));
    let mut signed_up = json!({"method": if channel.kind == "wecom" { "wechat" } else { "phone" }});
    // people reach WeCom and the official account by scanning a channel code
    if matches!(channel.kind, "wecom" | "official_account") {
        let code = pick_weighted(rng, &CHANNEL_CODES);
        events.push((
            first,
            json!({"type": "track", "event": "Channel Code Scanned", "userId": user_id,
                   "properties": {"channel_code": code}, "timestamp": at(first, rng)}),
        ));
        signed_up["channel_code"] = json!(code);
    }
    events.push((
        first,
        json!({"type": "track", "event": "Signed Up", "userId": user_id,
               "properties": signed_up, "timestamp": at(first, rng)}),
    ));

    // behaviour while active: a few visits, each a page and a product or two
    let active_days = ((last - first) / DAY_MS).max(1) as f64;
    let visits = 1 + (rng.gen_range(0.0..1.0f64) * active_days.sqrt() * 0.8) as usize;
    let mut likes_oolong = false;
    for _ in 0..visits.min(12) {
        let day = seasonal_day(rng, first, last);
        let product = brand.products[rng.gen_range(0..brand.products.len())];
        likes_oolong |= product.2 == "乌龙茶";
        let mut page = json!({"type": view, "name": "商品详情", "timestamp": at(day, rng),
            "properties": {"path": format!("/products/{}", product.0)}});
        who(&mut page);
        events.push((day, page));
        events.push((
            day,
            json!({"type": "track", "event": "Product Viewed", "userId": user_id,
                   "properties": {"sku": product.0, "name": product.1, "category": product.2,
                                  "price": product.3, "dwell_ms": rng.gen_range(2_000..90_000)},
                   "timestamp": at(day, rng)}),
        ));
    }
    // a few spread the word, ask, or complain
    if rng.gen_bool(0.12) {
        for _ in 0..rng.gen_range(1..4) {
            let day = seasonal_day(rng, first, last);
            events.push((
                day,
                json!({"type": "track", "event": "Content Shared", "userId": user_id,
                "properties": {"content_id": "spring-guide", "channel": "wechat_moments"},
                "timestamp": at(day, rng)}),
            ));
        }
        if rng.gen_bool(0.4) {
            let day = seasonal_day(rng, first, last);
            events.push((
                day,
                json!({"type": "track", "event": "Friend Invited", "userId": user_id,
                "properties": {"channel": "wechat_friend", "invite_code": format!("INV{i}")},
                "timestamp": at(day, rng)}),
            ));
        }
    }
    if rng.gen_bool(0.08) {
        let day = seasonal_day(rng, first, last);
        events.push((day, json!({"type": "track", "event": "Consultation Started", "userId": user_id,
            "properties": {"topic": "选购建议", "channel": channel.kind}, "timestamp": at(day, rng)})));
    }
    if rng.gen_bool(0.02) {
        let day = seasonal_day(rng, first, last);
        events.push((
            day,
            json!({"type": "track", "event": "Complaint Filed", "userId": user_id,
            "properties": {"topic": "物流", "severity": "medium"}, "timestamp": at(day, rng)}),
        ));
    }

    // orders: more buyers and more repeat buying in the private domain
    let buyer = rng.gen_bool(if channel.private { 0.62 } else { 0.5 });
    let mut spend = 0;
    let mut orders = 0;
    if buyer {
        let appetite = pareto(rng, 1.3).min(40.0);
        let repeat = if channel.private { 1.6 } else { 0.8 };
        let count = (1.0 + (appetite - 1.0) * repeat * rng.gen_range(0.3..1.0)).min(24.0) as u32;
        let migrates = !channel.private && count >= 2 && rng.gen_bool(0.3);
        for n in 0..count {
            let day = seasonal_day(rng, first, last);
            let product = brand.products[rng.gen_range(0..brand.products.len())];
            let quantity = 1 + (appetite.sqrt() * rng.gen_range(0.0..1.5)) as i64;
            let total = product.3 * quantity;
            let sales_channel = if migrates && n > 0 {
                "mini_shop"
            } else {
                channel.sales_channel
            };
            // the private domain's orders are credited to a store (its guides look after
            // the customer); the platform shops' to the brand
            let unit = if sales_channel == channel.sales_channel && !channel.private {
                brand.unit
            } else {
                brand.stores[rng.gen_range(0..brand.stores.len())]
            };
            spend += total;
            orders += 1;
            events.push((day + 1, json!({"type": "track", "event": "Order Completed", "userId": user_id,
                "properties": {"order_id": format!("D{i:06}-{n:02}"), "total": total, "currency": "CNY",
                    "channel": sales_channel, "unit_id": unit,
                    "products": [{"sku": product.0, "name": product.1, "category": product.2,
                                  "price": product.3, "quantity": quantity}]},
                "timestamp": at(day, rng)})));
        }
    }
    events.sort_by_key(|(day, e)| (*day, e["type"] != "identify"));
    let owned = channel.kind == "wecom" || (channel.kind == "mini_program" && rng.gen_bool(0.3));
    let all_opt_out = rng.gen_bool(0.01);
    DemoCustomer {
        user_id,
        channel: channel_index,
        brand: brand_index,
        events: events.into_iter().map(|(_, e)| e).collect(),
        owned,
        sms_opt_out: all_opt_out || rng.gen_bool(0.06),
        all_opt_out,
        spend,
        orders,
        likes_oolong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brands() -> Vec<Brand> {
        vec![Brand::tea(2, vec![3, 4]), Brand::skin(5, vec![7])]
    }

    const TODAY: i64 = 20_786 * DAY_MS; // 2026-11-29

    #[test]
    fn the_same_seed_makes_the_same_customers() {
        let a = generate(7, 200, TODAY, &brands());
        assert_eq!(a, generate(7, 200, TODAY, &brands()));
        assert_ne!(a, generate(8, 200, TODAY, &brands()));
    }

    #[test]
    fn spend_is_concentrated_and_private_customers_buy_again_more() {
        let customers = generate(2026, 20_000, TODAY, &brands());
        let mut spend: Vec<i64> = customers
            .iter()
            .filter(|c| c.orders > 0)
            .map(|c| c.spend)
            .collect();
        spend.sort_unstable_by(|a, b| b.cmp(a));
        let total: i64 = spend.iter().sum();
        let top_fifth: i64 = spend[..spend.len() / 5].iter().sum();
        assert!(
            top_fifth as f64 > 0.5 * total as f64,
            "the top 20% of buyers bring {top_fifth} of {total}"
        );
        let repeat_rate = |private: bool| {
            let buyers: Vec<&DemoCustomer> = customers
                .iter()
                .filter(|c| c.orders > 0 && CHANNELS[c.channel].private == private)
                .collect();
            buyers.iter().filter(|c| c.orders >= 2).count() as f64 / buyers.len() as f64
        };
        assert!(repeat_rate(true) > repeat_rate(false) + 0.05);
        // every customer is identified with a unique phone, and every event is dated
        let mut phones: Vec<&str> = customers
            .iter()
            .map(|c| {
                let identify = c.events.iter().find(|e| e["type"] == "identify").unwrap();
                identify["traits"]["phone"].as_str().unwrap()
            })
            .collect();
        phones.sort_unstable();
        phones.dedup();
        assert_eq!(phones.len(), customers.len());
        // (RFC 3339 times in one format sort as text)
        let earliest = siyu_domain::time::format_rfc3339(TODAY - 365 * DAY_MS);
        let latest = siyu_domain::time::format_rfc3339(TODAY + DAY_MS);
        for c in &customers {
            for e in &c.events {
                let t = e["timestamp"].as_str().unwrap();
                assert!(*t >= *earliest && *t < *latest, "{e}");
            }
        }
    }
}
