//! Consumer groups and routing strategies, with injected time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::pack;
use keeptrusts_core::routing::{Router, RouterOptions};
use keeptrusts_core::{ChatRequest, Principal, Role};

fn router(yaml: &str) -> Router {
    let spec = pack::parse(yaml).unwrap().spec;
    let (r, warnings) = Router::new(&spec, &|_| Some("sk-test".into()), RouterOptions::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    r
}

fn in_group(g: &str) -> Principal {
    Principal {
        consumer_group: Some(g.into()),
        ..Principal::new("dev@yourco.com", "engineering", Role::Member)
    }
}

fn ids(r: &Router, cands: &[usize]) -> Vec<String> {
    cands
        .iter()
        .map(|&i| r.target(i).unwrap().id.clone())
        .collect()
}

fn pack_with(routing: &str, n: usize) -> String {
    let mut y = String::from(
        "pack: { name: r, version: \"1.0\" }\npolicies: { chain: [] }\nproviders:\n  targets:\n",
    );
    for i in 0..n {
        y.push_str(&format!("    - {{ id: t{i}, provider: openai-compatible, model: m{i}, base_url: \"http://127.0.0.1:9{i:03}/v1\", secret_key_ref: {{ env: K{i} }}, pricing: {{ input_per_1m: \"1\", output_per_1m: \"1\" }} }}\n"));
    }
    y.push_str(&format!(
        "  consumer_groups:\n    - name: g\n      routing: {routing}\n      models:\n"
    ));
    for i in 0..n {
        y.push_str(&format!(
            "        - {{ provider: openai-compatible, model: m{i} }}\n"
        ));
    }
    y
}

#[test]
fn the_seed_consumer_groups_route_as_described() {
    let r = router(include_str!("../../examples/packs/consumer-groups.yaml"));
    let req = ChatRequest::user("gpt-4o", "hello");
    let internal = r.route(&in_group("internal-tools"), &req, 0).unwrap();
    assert_eq!(ids(&r, &internal.candidates), ["openai-gpt4o-mini"]);
    assert_eq!(internal.group, Some("internal-tools"));
    // customer-facing: cost_optimized between gpt-4o ($2.50/$10) and claude-sonnet-4 ($3/$15)
    let facing = r.route(&in_group("customer-facing"), &req, 0).unwrap();
    assert_eq!(
        ids(&r, &facing.candidates),
        ["openai-gpt4o", "anthropic-sonnet-4"]
    );
    assert_eq!(
        r.target(facing.candidates[1]).unwrap().base_url,
        "https://api.anthropic.com/v1"
    );
    // no group: every target serving the requested model
    let direct = r
        .route(&Principal::new("a", "b", Role::Member), &req, 0)
        .unwrap();
    assert_eq!(ids(&r, &direct.candidates), ["openai-gpt4o"]);
}

#[test]
fn groups_enforce_their_teams_and_names() {
    let yaml = pack_with("ordered", 2).replace(
        "    - name: g\n",
        "    - name: g\n      teams: [engineering]\n",
    );
    let r = router(&yaml);
    let req = ChatRequest::user("m0", "x");
    assert!(r.route(&in_group("g"), &req, 0).is_ok());
    let support = Principal {
        team: Some("support".into()),
        ..in_group("g")
    };
    let e = r.route(&support, &req, 0).unwrap_err();
    assert_eq!((e.code(), e.status()), ("consumer_group_forbidden", 403));
    let e = r.route(&in_group("nope"), &req, 0).unwrap_err();
    assert_eq!((e.code(), e.status()), ("unknown_consumer_group", 400));
    let e = r
        .route(
            &Principal::default(),
            &ChatRequest::user("unknown-model", "x"),
            0,
        )
        .unwrap_err();
    assert_eq!(e.code(), "model_not_routable");
}

#[test]
fn lowest_latency_explores_then_converges() {
    let r = router(&pack_with("lowest_latency", 3));
    let req = ChatRequest::user("m0", "x");
    let p = in_group("g");
    // nothing observed: config order
    assert_eq!(r.route(&p, &req, 0).unwrap().candidates, [0, 1, 2]);
    r.record_success(0, 900_000, 0);
    r.record_success(1, 300_000, 0);
    // t2 was never observed: it is tried first
    assert_eq!(r.route(&p, &req, 0).unwrap().candidates, [2, 1, 0]);
    r.record_success(2, 600_000, 0);
    assert_eq!(r.route(&p, &req, 0).unwrap().candidates, [1, 2, 0]);
    // t1 slows down for a while; the average follows and the order changes
    for _ in 0..40 {
        r.record_success(1, 2_000_000, 0);
    }
    assert_eq!(r.route(&p, &req, 0).unwrap().candidates, [2, 0, 1]);
    assert!(r.latency_us(1).unwrap() > 1_900_000);
}

#[test]
fn cost_optimized_depends_on_the_request_shape() {
    let yaml = "pack: { name: r, version: \"1.0\" }\npolicies: { chain: [] }\nproviders:\n  targets:\n    - { id: cheap-in, provider: openai-compatible, model: a, base_url: \"http://x/v1\", pricing: { input_per_1m: \"1.00\", output_per_1m: \"10.00\" } }\n    - { id: cheap-out, provider: openai-compatible, model: b, base_url: \"http://x/v1\", pricing: { input_per_1m: \"5.00\", output_per_1m: \"2.00\" } }\n  consumer_groups:\n    - name: g\n      routing: cost_optimized\n      models: [{ provider: openai-compatible, model: a }, { provider: openai-compatible, model: b }]\n";
    let r = router(yaml);
    let p = in_group("g");
    // short prompt, 1024 output tokens: output dominates → cheap-out
    let short = ChatRequest::user("a", "Write a poem about the sea.");
    assert_eq!(
        ids(&r, &r.route(&p, &short, 0).unwrap().candidates),
        ["cheap-out", "cheap-in"]
    );
    // long prompt, 10 output tokens: input dominates → cheap-in
    let mut long = ChatRequest::user("a", &"lorem ipsum dolor sit amet ".repeat(4_000));
    long.max_tokens = Some(10);
    assert_eq!(
        ids(&r, &r.route(&p, &long, 0).unwrap().candidates),
        ["cheap-in", "cheap-out"]
    );
}

#[test]
fn round_robin_is_even() {
    let r = router(&pack_with("round_robin", 4));
    let req = ChatRequest::user("m0", "x");
    let mut firsts = [0usize; 4];
    for _ in 0..400 {
        let c = r.route(&in_group("g"), &req, 0).unwrap().candidates;
        assert_eq!(c.len(), 4);
        firsts[c[0]] += 1;
    }
    assert_eq!(firsts, [100, 100, 100, 100]);
}

#[test]
fn ordered_falls_back_past_a_failing_target() {
    let r = router(&pack_with("ordered", 3));
    let req = ChatRequest::user("m0", "x");
    let p = in_group("g");
    for t in 0..5 {
        assert_eq!(r.route(&p, &req, t).unwrap().candidates[0], 0);
        r.record_failure(0, t);
    }
    assert_eq!(r.route(&p, &req, 10).unwrap().candidates, [1, 2]);
}

#[test]
fn breaker_opens_half_opens_and_closes_on_schedule() {
    let r = router(&pack_with("ordered", 2));
    let req = ChatRequest::user("m0", "x");
    let p = in_group("g");
    let cool = RouterOptions::default().cooldown_ms;
    // four failures: still closed
    for t in 1..=4 {
        r.record_failure(0, t);
    }
    assert_eq!(r.breaker(0, 5), "closed");
    // a success resets the count
    r.record_success(0, 1_000, 5);
    for t in 6..=10 {
        r.record_failure(0, t);
    }
    assert_eq!(r.breaker(0, 10), "open");
    assert_eq!(r.route(&p, &req, 10 + cool - 1).unwrap().candidates, [1]);
    // after the cooldown: half-open, and exactly one route gets the probe
    assert_eq!(r.breaker(0, 10 + cool), "half_open");
    assert_eq!(r.route(&p, &req, 10 + cool).unwrap().candidates, [0, 1]);
    assert_eq!(r.route(&p, &req, 10 + cool).unwrap().candidates, [1]);
    // the probe fails: open again, for a full cooldown from now
    r.record_failure(0, 10 + cool);
    assert_eq!(r.breaker(0, 10 + cool + 1), "open");
    assert_eq!(
        r.route(&p, &req, 10 + 2 * cool - 1).unwrap().candidates,
        [1]
    );
    // next probe succeeds: closed
    assert_eq!(r.route(&p, &req, 10 + 2 * cool).unwrap().candidates, [0, 1]);
    r.record_success(0, 1_000, 10 + 2 * cool);
    assert_eq!(r.breaker(0, 10 + 2 * cool), "closed");
    assert_eq!(r.route(&p, &req, 10 + 2 * cool).unwrap().candidates, [0, 1]);
    // a probe handed out but never reported goes stale after a cooldown
    for t in 0..5 {
        r.record_failure(0, 100_000 + t);
    }
    let t0 = 100_004 + cool;
    assert_eq!(r.route(&p, &req, t0).unwrap().candidates, [0, 1]);
    assert_eq!(r.route(&p, &req, t0 + 1).unwrap().candidates, [1]);
    assert_eq!(r.route(&p, &req, t0 + cool).unwrap().candidates, [0, 1]);
}

#[test]
fn missing_secrets_make_targets_unavailable_with_a_warning() {
    let spec = pack::parse(&pack_with("ordered", 3)).unwrap().spec;
    let (r, warnings) = Router::new(
        &spec,
        &|env| (env != "K1").then(|| "sk".into()),
        RouterOptions::default(),
    );
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].code, "W005");
    assert!(warnings[0].message.contains("`K1`"));
    assert_eq!(
        r.route(&in_group("g"), &ChatRequest::user("m0", "x"), 0)
            .unwrap()
            .candidates,
        [0, 2]
    );
    assert!(!format!("{:?}", r.targets()[0]).contains("sk"));
    let (r, _) = Router::new(&spec, &|_| None, RouterOptions::default());
    assert_eq!(
        r.route(&in_group("g"), &ChatRequest::user("m0", "x"), 0)
            .unwrap_err()
            .code(),
        "no_target_available"
    );
}

#[test]
fn many_threads_route_and_record_at_once() {
    let r = std::sync::Arc::new(router(&pack_with("lowest_latency", 8)));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let r = std::sync::Arc::clone(&r);
            std::thread::spawn(move || {
                let req = ChatRequest::user("m0", "x");
                for i in 0..5_000u64 {
                    let c = r.route(&in_group("g"), &req, 0).unwrap().candidates;
                    r.record_success(c[0], 1_000 + (t as u64 * 100 + i % 7) * 10, 0);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!((0..8).all(|i| r.latency_us(i).is_some()));
}
