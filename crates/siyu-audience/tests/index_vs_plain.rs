//! The index must answer every condition exactly as the plain evaluation does. Random
//! pools, random conditions, random changes to customers; any difference fails with the
//! condition and the customers on which they disagree.

use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use siyu_audience::catalog::{Catalog, SavedSegment};
use siyu_audience::condition::Condition;
use siyu_audience::facts::CustomerFacts;
use siyu_audience::index::{AudienceIndex, IndexBuilder, ScoreSettings};
use siyu_audience::plain::{self, Derived, EvalInput, FilteredCounts};
use siyu_audience::random::{self, Shape};

fn catalog(rng: &mut StdRng, shape: &Shape, customers: &[CustomerFacts]) -> Catalog {
    let mut c = Catalog::default();
    for id in 1..=shape.tags {
        c.tags.insert(format!("标签{id}"), id);
    }
    c.units.insert(1, vec![1, 2, 3, 4]);
    c.units.insert(2, vec![2, 4]);
    c.units.insert(3, vec![3]);
    c.units.insert(4, vec![4]);
    c.sources.insert("小程序".into(), 1);
    c.sources.insert("官网".into(), 2);
    c.sources.insert("APP".into(), 3);
    c.sources.insert("线下".into(), 4);
    let dynamic = random::condition(rng, shape, &c, 1);
    c.segments.insert(100, SavedSegment::Dynamic(dynamic));
    let frozen = customers
        .iter()
        .filter(|_| rng.gen_bool(0.3))
        .map(|f| f.id)
        .collect();
    c.segments.insert(101, SavedSegment::Static(frozen));
    c
}

/// Counts for the filtered event conditions, as the store would read them.
fn filtered_counts(
    rng: &mut StdRng,
    catalog: &Catalog,
    condition: &Condition,
    customers: &[CustomerFacts],
) -> FilteredCounts {
    let mut counts = FilteredCounts::new();
    for c in catalog.filtered_events(condition) {
        let mut per: HashMap<i64, u32> = HashMap::new();
        for f in customers {
            if rng.gen_bool(0.3) {
                per.insert(f.id, rng.gen_range(1..5));
            }
        }
        counts.insert(c.to_string(), per);
    }
    counts
}

fn check(
    index: &AudienceIndex,
    customers: &HashMap<i64, CustomerFacts>,
    condition: &Condition,
    input: &EvalInput<'_>,
) {
    let got: HashSet<i64> = index
        .ids(&index.evaluate(condition, input).unwrap(), usize::MAX)
        .into_iter()
        .collect();
    let mut want = HashSet::new();
    for (id, facts) in customers {
        let (rfm, stage) = index.scores_of(*id).expect("indexed");
        if plain::matches(condition, facts, &Derived { rfm, stage }, input).unwrap() {
            want.insert(*id);
        }
    }
    if got != want {
        let extra: Vec<_> = got.difference(&want).take(5).collect();
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        panic!(
            "{condition}\n  json: {}\n  index has {} more: {extra:?}\n  index lacks {}: {missing:?}",
            serde_json::to_string(condition).unwrap(),
            got.difference(&want).count(),
            want.difference(&got).count(),
        );
    }
    // the text form means the same
    let reparsed = siyu_audience::parse(&condition.to_string()).unwrap();
    assert_eq!(reparsed.simplified(), condition.simplified(), "{condition}");
}

#[test]
fn the_index_agrees_with_the_plain_evaluation() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let today = 20_780 + rng.gen_range(0..30);
        let shape = Shape::small(today);
        let pool: Vec<CustomerFacts> = (1..=400)
            .map(|id| random::customer(&mut rng, id * 3, &shape))
            .collect();
        let catalog = catalog(&mut rng, &shape, &pool);
        let mut builder = IndexBuilder::new(ScoreSettings::default(), today);
        for f in &pool {
            builder.add(f);
        }
        let mut index = builder.finish();
        let mut customers: HashMap<i64, CustomerFacts> =
            pool.into_iter().map(|f| (f.id, f)).collect();

        for round in 0..3 {
            for _ in 0..60 {
                let condition = random::condition(&mut rng, &shape, &catalog, 3);
                let all: Vec<CustomerFacts> = customers.values().cloned().collect();
                let filtered = filtered_counts(&mut rng, &catalog, &condition, &all);
                let input = EvalInput {
                    today,
                    zone: siyu_domain::time::TimeZone::UTC,
                    catalog: &catalog,
                    filtered: &filtered,
                };
                check(&index, &customers, &condition, &input);
            }
            // change some customers, add some, remove some; then score again
            let ids: Vec<i64> = customers.keys().copied().collect();
            for id in ids.iter().take(40 + round * 10) {
                let fresh = random::customer(&mut rng, *id, &shape);
                index.upsert(&fresh);
                customers.insert(*id, fresh);
            }
            for n in 0..20 {
                let id = 10_000 + round as i64 * 100 + n;
                let fresh = random::customer(&mut rng, id, &shape);
                index.upsert(&fresh);
                customers.insert(id, fresh);
            }
            for id in ids.iter().rev().take(15) {
                index.remove(*id);
                customers.remove(id);
            }
            index.recompute(today);
        }
    }
}

#[test]
fn a_segment_of_customers_who_bought_much_is_found() {
    let today = 20_780;
    let shape = Shape::small(today);
    let mut rng = StdRng::seed_from_u64(7);
    let pool: Vec<CustomerFacts> = (1..=300)
        .map(|id| random::customer(&mut rng, id, &shape))
        .collect();
    let catalog = catalog(&mut rng, &shape, &pool);
    let mut builder = IndexBuilder::new(ScoreSettings::default(), today);
    pool.iter().for_each(|f| builder.add(f));
    let index = builder.finish();
    let condition =
        siyu_audience::parse("orders.sum(last 365d) >= 500 and trait.city in (\"上海\", \"杭州\")")
            .unwrap();
    let filtered = FilteredCounts::new();
    let input = EvalInput {
        today,
        zone: siyu_domain::time::TimeZone::UTC,
        catalog: &catalog,
        filtered: &filtered,
    };
    let found = index.ids(&index.evaluate(&condition, &input).unwrap(), usize::MAX);
    // worked out directly from the generated facts
    let expected: Vec<i64> = pool
        .iter()
        .filter(|f| {
            let city = f.traits.get("city").and_then(|v| v.as_str());
            let spent: i64 = f
                .orders
                .iter()
                .filter(|o| o.at.div_euclid(86_400_000) > i64::from(today) - 365)
                .map(|o| o.amount)
                .sum();
            spent >= 50_000 && matches!(city, Some("上海" | "杭州"))
        })
        .map(|f| f.id)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(found, expected);
}
