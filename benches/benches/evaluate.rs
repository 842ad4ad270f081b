//! `Engine::evaluate` on the seed's chains.
//!
//! `legal_chain_without_detectors` is the issue's target (p50 ≤ 2 µs): the seed's legal chain
//! (pii-detector, hipaa-phi-detector, human-oversight, audit-logger) minus the two detectors, so
//! human-oversight with `require_review: true` (fingerprint + escalation record) and the audit
//! stamp. Each iteration gets a fresh in-memory escalation store (created outside the timing) so
//! the store does not grow across millions of iterations.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use keeptrusts_core::{
    ChatRequest, Engine, MemoryEscalations, Principal, RequestContext, Role, Stores,
};

const LEGAL_NO_DETECTORS: &str = r#"
pack: { name: legal-bench, version: "1.0" }
policies:
  chain:
    - rbac:
        targeting: { scope: team, teams: [engineering] }
    - audit-logger
    - human-oversight:
        targeting: { scope: team, teams: [legal] }
    - audit-logger
policy:
  rbac: { require_auth: true, minimum_role: member }
  human-oversight: { require_review: true }
"#;

fn request() -> ChatRequest {
    ChatRequest::user(
        "gpt-4o",
        "Please summarise the indemnification clause in section 7 and list the obligations of each party.",
    )
}

fn bench(c: &mut Criterion) {
    let legal = Engine::from_yaml(LEGAL_NO_DETECTORS).unwrap();
    let principal = Principal::new("counsel@yourco.com", "legal", Role::Member);
    let req = request();
    let ctx = RequestContext::new("req-0001", 1_700_000_000_000);
    c.bench_function("evaluate/legal_chain_without_detectors", |b| {
        b.iter_batched_ref(
            MemoryEscalations::new,
            |store| {
                let stores = Stores::new(store);
                black_box(
                    legal
                        .evaluate(black_box(&principal), black_box(&req), &ctx, &stores)
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        );
    });

    let eng = Principal::new("dev@yourco.com", "engineering", Role::Member);
    let store = MemoryEscalations::new();
    let stores = Stores::new(&store);
    c.bench_function("evaluate/engineering_rbac_and_audit", |b| {
        b.iter(|| {
            black_box(
                legal
                    .evaluate(black_box(&eng), black_box(&req), &ctx, &stores)
                    .unwrap(),
            )
        });
    });

    let seed = Engine::from_yaml(include_str!(
        "../../examples/packs/multi-team-governance.yaml"
    ))
    .unwrap();
    let pii_req = ChatRequest::user(
        "gpt-4o-mini",
        "Customer jane.doe@example.com called from (415) 555-0132 about card 4111 1111 1111 1111; please draft a reply.",
    );
    c.bench_function("evaluate/seed_multi_team_with_pii_redaction", |b| {
        b.iter(|| {
            black_box(
                seed.evaluate(black_box(&eng), black_box(&pii_req), &ctx, &stores)
                    .unwrap(),
            )
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
