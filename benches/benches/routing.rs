//! Choosing a route among 8 targets (target ≤ 200 ns p50), for each strategy.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use keeptrusts_core::pack;
use keeptrusts_core::routing::{Router, RouterOptions};
use keeptrusts_core::{ChatRequest, Principal, Role};

fn pack_with(routing: &str) -> String {
    let mut y = String::from(
        "pack: { name: r, version: \"1.0\" }\npolicies: { chain: [] }\nproviders:\n  targets:\n",
    );
    for i in 0..8 {
        y.push_str(&format!(
            "    - {{ id: t{i}, provider: openai-compatible, model: m{i}, base_url: \"http://127.0.0.1:9{i:03}/v1\", pricing: {{ input_per_1m: \"{}.5\", output_per_1m: \"{}\" }} }}\n",
            i + 1,
            10 - i
        ));
    }
    y.push_str(&format!("  consumer_groups:\n    - name: g\n      teams: [engineering, support]\n      routing: {routing}\n      models:\n"));
    for i in 0..8 {
        y.push_str(&format!(
            "        - {{ provider: openai-compatible, model: m{i} }}\n"
        ));
    }
    y
}

fn bench(c: &mut Criterion) {
    let principal = Principal {
        consumer_group: Some("g".into()),
        ..Principal::new("dev@yourco.com", "engineering", Role::Member)
    };
    let req = ChatRequest::user(
        "m0",
        "Summarise the ticket history for account 42 in three bullets.",
    );
    for routing in ["ordered", "round_robin", "lowest_latency", "cost_optimized"] {
        let spec = pack::parse(&pack_with(routing)).unwrap().spec;
        let (router, _) = Router::new(&spec, &|_| None, RouterOptions::default());
        for i in 0..8 {
            router.record_success(i, 100_000 + (i as u64 * 37_000) % 90_000, 0);
        }
        c.bench_function(&format!("route/8_targets/{routing}"), |b| {
            b.iter(|| {
                black_box(
                    router
                        .route(black_box(&principal), black_box(&req), 1_000)
                        .unwrap(),
                )
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
