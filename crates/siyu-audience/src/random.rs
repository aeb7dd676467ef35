//! Random customers and random conditions, for the randomized tests that hold the
//! index to the plain evaluation and for the audience benchmark's synthetic tenant.

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::condition::*;
use crate::facts::{CustomerFacts, DAY_MS, EventDay, OrderFact, day_of};

pub const CITIES: &[&str] = &["上海", "杭州", "北京", "广州", "深圳", "成都"];
pub const EVENTS: &[&str] = &[
    "Product Viewed",
    "Content Read",
    "Content Shared",
    "Complaint Filed",
    "Signed Up",
    "Coupon Claimed",
    "Question Asked",
    "Video Watched",
];
pub const CHANNELS: &[&str] = &["wecom", "mini_shop", "tmall", "jd", "offline"];
pub const CONSENT: &[&str] = &["sms", "email", "wecom", "all"];
/// Channel codes (their `state`) customers came through.
pub const CHANNEL_CODES: &[&str] = &["618-poster", "live-0601", "store-qr-sh"];

/// How a random pool is shaped.
#[derive(Debug, Clone)]
pub struct Shape {
    pub today: i32,
    /// Tag ids are 1..=tags.
    pub tags: i64,
    /// Units orders may belong to.
    pub units: Vec<i64>,
    /// Staff ids are 1..=owners.
    pub owners: i64,
    /// Mean event rows (days with events) and orders per customer.
    pub event_days: u32,
    pub orders: u32,
    /// How many days back events and orders go.
    pub history_days: i32,
}

impl Shape {
    pub fn small(today: i32) -> Self {
        Self {
            today,
            tags: 6,
            units: vec![2, 3, 4],
            owners: 4,
            event_days: 6,
            orders: 2,
            history_days: 500,
        }
    }
}

/// One random customer. Spend is skewed: a few customers order far more than most.
pub fn customer(rng: &mut impl Rng, id: i64, shape: &Shape) -> CustomerFacts {
    let mut traits = serde_json::Map::new();
    if rng.gen_bool(0.8) {
        traits.insert("city".into(), json!(CITIES.choose(rng).unwrap()));
    }
    if rng.gen_bool(0.7) {
        let age = rng.gen_range(16..70);
        // some sources send numbers as text
        let v = if rng.gen_bool(0.3) {
            json!(age.to_string())
        } else {
            json!(age)
        };
        traits.insert("age".into(), v);
    }
    if rng.gen_bool(0.5) {
        traits.insert("vip".into(), json!(rng.gen_bool(0.3)));
    }
    if rng.gen_bool(0.6) {
        let day = shape.today - rng.gen_range(0..shape.history_days);
        traits.insert("member_since".into(), json!(crate::facts::format_day(day)));
    }
    if rng.gen_bool(0.4) {
        traits.insert(
            "name".into(),
            json!(format!("客户{}", rng.gen_range(0..50))),
        );
    }
    let tags = (1..=shape.tags)
        .filter(|_| rng.gen_bool((2.0 / shape.tags as f64).min(0.5)))
        .collect();
    let owner = rng.gen_bool(0.7).then(|| rng.gen_range(1..=shape.owners));
    let sources = (1..=3).filter(|_| rng.gen_bool(0.4)).collect();
    let channel_codes = CHANNEL_CODES
        .iter()
        .filter(|_| rng.gen_bool(0.25))
        .map(|c| (*c).to_owned())
        .collect();
    let mut events = Vec::new();
    let n = rng.gen_range(0..=shape.event_days * 2);
    for _ in 0..n {
        let name = EVENTS.choose(rng).unwrap();
        let day = shape.today - rng.gen_range(0..shape.history_days);
        if events
            .iter()
            .any(|e: &EventDay| e.name == *name && e.day == day)
        {
            continue;
        }
        events.push(EventDay {
            name: (*name).into(),
            day,
            count: rng.gen_range(1..=4),
        });
    }
    let big = rng.gen_bool(0.1);
    let n = if rng.gen_bool(0.4) {
        0
    } else {
        rng.gen_range(1..=shape.orders * 2 - 1) * if big { 3 } else { 1 }
    };
    let orders = (0..n)
        .map(|_| OrderFact {
            at: (shape.today - rng.gen_range(0..shape.history_days)) as i64 * DAY_MS
                + rng.gen_range(0..DAY_MS),
            amount: rng.gen_range(1..2000) * 100 * if big { 5 } else { 1 } + rng.gen_range(0..100),
            unit: if rng.gen_bool(0.8) {
                shape.units.choose(rng).copied()
            } else {
                None
            },
            channel: (*CHANNELS.choose(rng).unwrap()).into(),
        })
        .collect();
    let opted_out = CONSENT
        .iter()
        .filter(|_| rng.gen_bool(0.08))
        .map(|c| (*c).into())
        .collect();
    CustomerFacts {
        id,
        traits,
        tags,
        sources,
        channel_codes,
        owner,
        events,
        orders,
        opted_out,
        first_seen_at: (shape.today - shape.history_days) as i64 * DAY_MS,
    }
}

fn cmp(rng: &mut impl Rng) -> Cmp {
    *[Cmp::Eq, Cmp::Ne, Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le]
        .choose(rng)
        .unwrap()
}

fn days(rng: &mut impl Rng) -> u32 {
    *[1, 7, 30, 90, 180, 365, 730].choose(rng).unwrap()
}

fn time_test(rng: &mut impl Rng) -> TimeTest {
    if rng.gen_bool(0.5) {
        TimeTest::Within(days(rng))
    } else {
        TimeTest::Before(days(rng))
    }
}

/// A random condition over a pool of [`Shape`], valid for `catalog`, nested up to `depth`.
pub fn condition(rng: &mut impl Rng, shape: &Shape, catalog: &Catalog, depth: u32) -> Condition {
    if depth > 0 && rng.gen_bool(0.4) {
        let n = rng.gen_range(1..=3);
        let parts: Vec<Condition> = (0..n)
            .map(|_| condition(rng, shape, catalog, depth - 1))
            .collect();
        return match rng.gen_range(0..3) {
            0 => Condition::And(parts),
            1 => Condition::Or(parts),
            _ => Condition::Not(Box::new(parts.into_iter().next().unwrap())),
        };
    }
    let tag_names: Vec<&String> = catalog.tags.keys().collect();
    match rng.gen_range(0..18) {
        0 => Condition::Tag((*tag_names.choose(rng).unwrap()).clone()),
        1 => Condition::Trait(TraitTest {
            key: "city".into(),
            test: TraitOp::In(
                {
                    let n = rng.gen_range(1..3);
                    CITIES.choose_multiple(rng, n)
                }
                .map(|c| json!(c))
                .collect(),
            ),
        }),
        2 => Condition::Trait(TraitTest {
            key: ["age", "vip", "city", "name", "nothing"]
                .choose(rng)
                .unwrap()
                .to_string(),
            test: match rng.gen_range(0..4) {
                0 => TraitOp::Exists,
                1 => TraitOp::Contains(["1", "海", "客户2", "t"].choose(rng).unwrap().to_string()),
                _ => TraitOp::Compare {
                    op: cmp(rng),
                    value: [
                        json!(30),
                        json!("30"),
                        json!(true),
                        json!("上海"),
                        json!(45.5),
                    ]
                    .choose(rng)
                    .unwrap()
                    .clone(),
                },
            },
        }),
        3 => Condition::Trait(TraitTest {
            key: "member_since".into(),
            test: TraitOp::Time(time_test(rng)),
        }),
        4 | 5 => {
            let filters = if rng.gen_bool(0.2) {
                vec![PropertyFilter {
                    property: "category".into(),
                    op: Cmp::Eq,
                    value: Value::String("美妆".into()),
                }]
            } else {
                Vec::new()
            };
            Condition::Performed(Performed {
                event: EVENTS.choose(rng).unwrap().to_string(),
                within_days: if filters.is_empty() && rng.gen_bool(0.3) {
                    None
                } else {
                    Some(days(rng).min(365))
                },
                filters,
                op: cmp(rng),
                count: rng.gen_range(0..6),
            })
        }
        6 => Condition::EventTime(EventTime {
            event: EVENTS.choose(rng).unwrap().to_string(),
            which: if rng.gen_bool(0.5) {
                Which::First
            } else {
                Which::Last
            },
            test: time_test(rng),
        }),
        7 | 8 => {
            let measure = *[OrderMeasure::Count, OrderMeasure::Sum, OrderMeasure::Avg]
                .choose(rng)
                .unwrap();
            Condition::Orders(OrderTest {
                measure,
                within_days: rng.gen_bool(0.7).then(|| days(rng)),
                unit: rng.gen_bool(0.2).then(|| {
                    *catalog
                        .units
                        .keys()
                        .collect::<Vec<_>>()
                        .choose(rng)
                        .unwrap()
                        .to_owned()
                }),
                channel: rng
                    .gen_bool(0.2)
                    .then(|| CHANNELS.choose(rng).unwrap().to_string()),
                op: cmp(rng),
                value: match measure {
                    OrderMeasure::Count => rng.gen_range(0..5) as f64,
                    _ => rng.gen_range(0..3000) as f64 + [0.0, 0.5, 0.25].choose(rng).unwrap(),
                },
            })
        }
        9 => Condition::LastOrder(time_test(rng)),
        10 => Condition::RfmClass(
            {
                let n = rng.gen_range(1..4);
                RfmClass::ALL.choose_multiple(rng, n)
            }
            .copied()
            .collect(),
        ),
        11 => Condition::RfmScore(RfmScoreTest {
            dimension: *[RfmDimension::R, RfmDimension::F, RfmDimension::M]
                .choose(rng)
                .unwrap(),
            op: cmp(rng),
            value: rng.gen_range(1..=5),
        }),
        12 => Condition::Lifecycle(
            {
                let n = rng.gen_range(1..3);
                LifecycleStage::ALL.choose_multiple(rng, n)
            }
            .copied()
            .collect(),
        ),
        13 => Condition::Unit(
            *catalog
                .units
                .keys()
                .collect::<Vec<_>>()
                .choose(rng)
                .unwrap()
                .to_owned(),
        ),
        14 => {
            if rng.gen_bool(0.5) {
                Condition::HasOwner
            } else {
                Condition::Owner(rng.gen_range(1..=shape.owners + 1))
            }
        }
        15 if rng.gen_bool(0.3) && !catalog.sources.is_empty() => {
            let names: Vec<&String> = catalog.sources.keys().collect();
            Condition::Source((*names.choose(rng).unwrap()).clone())
        }
        15 => Condition::Consent(
            ["sms", "email", "wecom", "app_push"]
                .choose(rng)
                .unwrap()
                .to_string(),
        ),
        16 => Condition::ChannelCode(
            // now and then a code nobody came through
            (*CHANNEL_CODES
                .iter()
                .chain(&["never-scanned"])
                .collect::<Vec<_>>()
                .choose(rng)
                .unwrap())
            .to_string(),
        ),
        _ => {
            let segments: Vec<&i64> = catalog.segments.keys().collect();
            match segments.choose(rng) {
                Some(id) if rng.gen_bool(0.5) => Condition::Segment(**id),
                _ => Condition::Bucket(BucketTest {
                    op: cmp(rng),
                    value: rng.gen_range(0..100),
                }),
            }
        }
    }
}

/// The shape of the audience benchmark's synthetic tenant.
#[derive(Debug, Clone)]
pub struct SyntheticShape {
    pub today: i32,
    pub customers: u64,
    /// Mean events and orders per customer.
    pub events_per_customer: f64,
    pub orders_per_customer: f64,
    pub tags: i64,
    pub units: Vec<i64>,
}

/// One customer of the synthetic tenant: a city, an age and a member level; events
/// over the last year on a few days each (so per-day rows hold several events); orders
/// whose number and size follow a heavy tail (a fifth of customers bring most of the
/// money); tags whose popularity falls off (a few tags are on many customers). Returns
/// the facts and how many events they stand for.
pub fn synthetic_customer(
    rng: &mut impl Rng,
    id: i64,
    shape: &SyntheticShape,
) -> (CustomerFacts, u64) {
    let mut traits = serde_json::Map::new();
    traits.insert(
        "city".into(),
        json!(CITIES[(rng.gen_range(0.0f64..1.0).powi(2) * CITIES.len() as f64) as usize]),
    );
    traits.insert("age".into(), json!(rng.gen_range(16..70)));
    traits.insert(
        "member_level".into(),
        json!(
            ["普通", "银卡", "金卡", "黑金"][(rng.gen_range(0.0f64..1.0).powi(3) * 4.0) as usize]
        ),
    );
    let tag_count = rng.gen_range(0..=6);
    let mut tags: Vec<i64> = (0..tag_count)
        .map(|_| 1 + (rng.gen_range(0.0f64..1.0).powi(2) * shape.tags as f64) as i64)
        .collect();
    tags.sort();
    tags.dedup();
    let events = rng.gen_range(0.0..shape.events_per_customer * 2.0).round() as u64;
    let mut days: Vec<EventDay> = Vec::new();
    let active_days: Vec<i32> = (0..rng.gen_range(1..=8))
        .map(|_| shape.today - rng.gen_range(0..365))
        .collect();
    for _ in 0..events {
        let name = EVENTS[(rng.gen_range(0.0f64..1.0).powi(2) * EVENTS.len() as f64) as usize];
        let day = *active_days.choose(rng).unwrap();
        match days.iter_mut().find(|d| d.name == name && d.day == day) {
            Some(d) => d.count += 1,
            None => days.push(EventDay {
                name: name.into(),
                day,
                count: 1,
            }),
        }
    }
    // heavy-tailed orders: most buy rarely, a few often and big
    let spender = rng.gen_bool(0.2);
    let mean = if spender {
        shape.orders_per_customer * 3.4
    } else {
        shape.orders_per_customer * 0.4
    };
    let n = rng.gen_range(0.0..mean * 2.0).round() as usize;
    let orders: Vec<OrderFact> = (0..n)
        .map(|_| OrderFact {
            at: (shape.today - rng.gen_range(0..730)) as i64 * DAY_MS + rng.gen_range(0..DAY_MS),
            amount: if spender {
                rng.gen_range(20_000..200_000)
            } else {
                rng.gen_range(2_000..30_000)
            },
            unit: shape.units.choose(rng).copied(),
            channel: CHANNELS
                [(rng.gen_range(0.0f64..1.0).powi(2) * CHANNELS.len() as f64) as usize]
                .into(),
        })
        .collect();
    let opted_out = if rng.gen_bool(0.05) {
        vec![(*CONSENT.choose(rng).unwrap()).to_owned()]
    } else {
        Vec::new()
    };
    let owner = rng.gen_bool(0.6).then(|| rng.gen_range(1..=40));
    // first seen at their first event or order (two years ago without either)
    let first_day = days
        .iter()
        .map(|d| d.day)
        .chain(orders.iter().map(|o: &OrderFact| day_of(o.at)))
        .min()
        .unwrap_or(shape.today - 730);
    (
        CustomerFacts {
            id,
            traits,
            tags,
            sources: vec![1 + (id % 3)],
            channel_codes: if rng.gen_bool(0.1) {
                vec![(*CHANNEL_CODES.choose(rng).unwrap()).to_owned()]
            } else {
                Vec::new()
            },
            owner,
            events: days,
            orders,
            opted_out,
            first_seen_at: first_day as i64 * DAY_MS,
        },
        events,
    )
}
