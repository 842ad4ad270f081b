//! Aggregating all five dashboard sections over 1,000,000 events, one thread (target ≤ 1 s).
//!
//! Events are generated in code: 4 teams × 50 users, 3 models, 30 days, a mix of verdicts, costs
//! and escalations. The viewer is the owner looking at one team, so every section scans all
//! 1,000,000 events and aggregates the team's 250,000 (the events section returns them all).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use keeptrusts_core::dashboard::{self, Granularity, Query, Section};
use keeptrusts_core::decision::{AuditStamp, PolicyResult};
use keeptrusts_core::event::{CostRecord, Event, EventDraft};
use keeptrusts_core::pricing::{Currency, Usage};
use keeptrusts_core::{PolicyKind, Principal, Role, Verdict};
use rust_decimal::Decimal;

fn events(n: usize) -> Vec<Event> {
    let teams = ["engineering", "support", "legal", "finance"];
    let models = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4"];
    (0..n)
        .map(|i| {
            let verdict = match i % 20 {
                0 => Verdict::Block,
                1 => Verdict::Escalate,
                2..=5 => Verdict::Redact,
                _ => Verdict::Allow,
            };
            let timestamp = 1_793_491_200_000 + (i as i64 * 2_592_000_000 / n as i64);
            let body = EventDraft {
                team: Some(teams[i % 4].into()),
                user: Some(format!("user{}@yourco.com", (i / 4) % 50)),
                role: Some(Role::Member),
                model: Some(models[i % 3].into()),
                target: Some(models[i % 3].into()),
                verdict,
                status: if matches!(verdict, Verdict::Allow | Verdict::Redact) {
                    200
                } else {
                    409
                },
                policies: vec![PolicyResult {
                    kind: PolicyKind::PiiDetector,
                    verdict: if verdict == Verdict::Redact {
                        Verdict::Redact
                    } else {
                        Verdict::Allow
                    },
                    reason: None,
                    entities: Default::default(),
                }],
                cost: Some(CostRecord {
                    estimated: Decimal::new((i % 997) as i64 + 100, 6),
                    settled: Some(Decimal::new((i % 887) as i64 + 50, 6)),
                    currency: Currency::USD,
                    wallet: None,
                    overrun: false,
                    unmetered: false,
                }),
                tokens: Some(Usage {
                    prompt_tokens: 100 + (i % 50) as u64,
                    completion_tokens: 300,
                }),
                escalation_id: (verdict == Verdict::Escalate).then(|| format!("esc_{i}")),
                audit: Some(AuditStamp::default()),
                ..EventDraft::new(&i.to_string(), "default", timestamp)
            };
            Event::chained(i as u64, body, String::new())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = events(1_000_000);
    let owner = Principal::new("cfo@yourco.com", "finance", Role::Owner);
    let mut group = c.benchmark_group("dashboard");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("all_five_sections/1M_events", |b| {
        b.iter(|| {
            for section in [
                Section::Overview,
                Section::Events,
                Section::Spend,
                Section::Escalations,
                Section::Usage,
            ] {
                let q = Query {
                    team: "support".into(),
                    section,
                    filter: Default::default(),
                    granularity: Granularity::Day,
                    limit: None,
                    before: None,
                };
                black_box(dashboard::view(&owner, &q, black_box(&all)).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
