//! The request lifecycle through the gateway, against a provider that bills every token it
//! legally may: what is forwarded, what is charged, what is audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

mod common;
use common::{chat, events, http, key_args, ledger, max_biller, post_json, stop, Env};

fn pack(env: &Env, provider: &str) -> std::path::PathBuf {
    let p = env.write_pack(&format!(
            r#"pack: {{ name: lifecycle, version: "1.0" }}
policies: {{ chain: [rbac, pii-detector, audit-logger] }}
policy:
  rbac: {{ allowed_models: {{ member: [m-cheap, m-dear] }} }}
providers:
  targets:
    - {{ id: cheap, provider: openai-compatible, model: m-cheap, base_url: "http://{provider}/v1", pricing: {{ input_per_1m: "100", output_per_1m: "200" }} }}
    - {{ id: forbidden, provider: openai-compatible, model: m-forbidden, base_url: "http://{provider}/v1", pricing: {{ input_per_1m: "1", output_per_1m: "1" }} }}
    - {{ id: dear, provider: openai, model: m-dear, base_url: "http://{provider}/v1", secret_key_ref: {{ env: PATH }}, pricing: {{ input_per_1m: "300", output_per_1m: "600" }} }}
  consumer_groups:
    - name: fallback
      routing: ordered
      models:
        - {{ provider: openai-compatible, model: m-cheap }}
        - {{ provider: openai-compatible, model: m-forbidden }}
        - {{ provider: openai, model: m-dear }}
"#
        ));
    p
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .map_or_else(|| v.as_f64().unwrap_or(0.0), |s| s.parse().unwrap())
}

#[test]
fn forwarded_requests_carry_the_reserved_limit_and_settle_within_it() {
    let env = Env::new("lc-bound");
    let key = env.support_team();
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    // no max_tokens: the default output limit is injected (max_tokens for an OpenAI-compatible
    // server, max_completion_tokens for OpenAI, which its reasoning models need)
    let r = chat(&gw_addr, Some(&key), "m-cheap", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = chat(&gw_addr, Some(&key), "m-dear", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    // n choices and a tool schema are billed too
    let body = json!({"model": "m-cheap", "n": 3, "messages": [{"role": "user", "content": "three"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "x".repeat(800)}}]});
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    // a limit above the pack's default is cut to it
    let body = json!({"model": "m-cheap", "max_tokens": 50_000, "messages": [{"role": "user", "content": "long"}]});
    assert_eq!(
        post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]).status,
        200
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["max_tokens"], 1024);
        assert_eq!(seen[1]["max_completion_tokens"], 1024);
        assert!(seen[1].get("max_tokens").is_none());
        assert_eq!(
            (seen[2]["n"].as_u64(), seen[2]["max_tokens"].as_u64()),
            (Some(3), Some(1024))
        );
        assert_eq!(seen[3]["max_tokens"], 1024);
    }
    stop(&mut gw);
    let evs = events(&env);
    assert_eq!(evs.len(), 4);
    let mut spent = 0.0;
    for e in &evs {
        let (est, settled) = (num(&e["cost"]["estimated"]), num(&e["cost"]["settled"]));
        assert!(
            settled > 0.0 && settled <= est,
            "settled {settled} <= reserved {est}: {e}"
        );
        assert!(e["cost"].get("overrun").is_none());
        spent += settled;
    }
    let (w_spent, reserved, _) = ledger(&env);
    assert_eq!(reserved, 0.0);
    assert!((w_spent - spent).abs() < 1e-9);
}

#[test]
fn a_provider_that_bills_past_the_limit_is_charged_and_flagged() {
    let env = Env::new("lc-overrun");
    let key = env.support_team();
    let (addr, _) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let r = chat(&gw_addr, Some(&key), "m-cheap", "overbill please", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let m = http(&gw_addr, "GET", "/metrics", None, &[], b"");
    assert!(m.body.contains("keeptrusts_overruns_total 1"), "{}", m.body);
    stop(&mut gw);
    let e = &events(&env)[0];
    assert_eq!(e["cost"]["overrun"], true);
    assert!(num(&e["cost"]["settled"]) > num(&e["cost"]["estimated"]));
    // charged what it billed: 101,024 output tokens at 200 per 1M, plus the prompt
    assert!(num(&e["cost"]["settled"]) > 101_024.0 * 200.0 / 1e6);
}

#[test]
fn an_answer_without_usage_is_charged_its_whole_bound() {
    let env = Env::new("lc-nousage");
    let key = env.support_team();
    let (addr, _) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let r = chat(&gw_addr, Some(&key), "m-cheap", "no-usage here", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    stop(&mut gw);
    let e = &events(&env)[0];
    assert_eq!(e["cost"]["settled"], e["cost"]["estimated"]);
    assert!(num(&e["cost"]["settled"]) > 0.0);
    assert_eq!(e["cost"]["unmetered"], true);
    let (spent, reserved, _) = ledger(&env);
    assert!(spent > 0.0 && reserved == 0.0);
}

#[test]
fn streams_settle_on_the_usage_chunk_and_pass_tool_calls_through_the_filter() {
    let env = Env::new("lc-stream");
    let key = env.support_team();
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    // the client asks for usage: it gets the provider's numbers
    let body = json!({"model": "m-cheap", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200);
    let chunks = common::sse(&r.body);
    let usage = chunks
        .iter()
        .find(|c| c.get("usage").is_some())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["prompt_tokens"], 11);
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    // a client that did not ask gets no usage chunk, but the gateway asked the provider for one
    let body = json!({"model": "m-cheap", "stream": true, "messages": [{"role": "user", "content": "tool-stream"}]});
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200);
    let chunks = common::sse(&r.body);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "{}",
        r.body
    );
    assert_eq!(
        seen.lock().unwrap()[1]["stream_options"]["include_usage"],
        true
    );
    // the tool call reaches the client, its arguments redacted across pieces
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls[0][0]["id"], "call_1");
    assert_eq!(calls[0][0]["function"]["name"], "lookup");
    let args: String = calls
        .iter()
        .filter_map(|c| c[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"email\": \"[EMAIL]\"}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    stop(&mut gw);
    let evs = events(&env);
    for e in &evs {
        assert_eq!(
            e["tokens"],
            json!({"prompt_tokens": 11, "completion_tokens": 7}),
            "{e}"
        );
        let settled = num(&e["cost"]["settled"]);
        assert!(
            (settled - (11.0 * 100.0 + 7.0 * 200.0) / 1e6).abs() < 1e-12,
            "{e}"
        );
    }
}

#[test]
fn a_fallback_is_priced_and_checked_for_the_model_that_ran() {
    let env = Env::new("lc-fallback");
    let key = env.support_team();
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let r = chat(
        &gw_addr,
        Some(&key),
        "any",
        "fail-first, then fall back",
        &[("X-Consumer-Group", "fallback")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // m-cheap failed, m-forbidden is not for members: m-dear answered
    let models: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["model"].clone())
        .collect();
    assert_eq!(models, [json!("m-cheap"), json!("m-dear")]);
    stop(&mut gw);
    let e = &events(&env)[0];
    assert_eq!(e["model"], "m-dear");
    assert_eq!(e["target"], "dear");
    let (p, c) = (
        e["tokens"]["prompt_tokens"].as_f64().unwrap(),
        e["tokens"]["completion_tokens"].as_f64().unwrap(),
    );
    let at_dear = (p * 300.0 + c * 600.0) / 1e6;
    assert!((num(&e["cost"]["settled"]) - at_dear).abs() < 1e-12, "{e}");
    assert!(num(&e["cost"]["settled"]) <= num(&e["cost"]["estimated"]));
}

#[test]
fn an_approved_ticket_is_redeemed_by_its_requester_for_its_request_once() {
    let env = Env::new("lc-ticket");
    let key = env.support_team();
    let mate = env.member_key("support", "mate@yourco.com", None);
    let down = Arc::new(AtomicBool::new(false));
    let (addr, seen) = max_biller(Arc::clone(&down));
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    // 500 output tokens of m-dear ($0.30) do not fit a $0.10 wallet
    env.allocate("support", "0.10");
    let body = json!({"model": "m-dear", "max_tokens": 500, "messages": [{"role": "user", "content": "a long report"}]});
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 402, "{}", r.body);
    let ticket = r.json()["error"]["ticket_id"].as_str().unwrap().to_owned();
    env.ok(&["ticket", "approve", &ticket]);
    let with = [("X-Keeptrusts-Ticket-Id", ticket.as_str())];
    // a teammate who knows the prompt cannot redeem it
    let r = post_json(&gw_addr, "/v1/chat/completions", &mate, &body, &with);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (403, Some("ticket_not_yours"))
    );
    // nor can the requester ask for more than was approved
    let mut bigger = body.clone();
    bigger["max_tokens"] = json!(900);
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &bigger, &with);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (409, Some("ticket_request_mismatch"))
    );
    // the provider fails after the approval was used: it stays redeemable
    down.store(true, Ordering::SeqCst);
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &with);
    assert_eq!(r.status, 502, "{}", r.body);
    down.store(false, Ordering::SeqCst);
    // the retry is served, charged and audited with the ticket's id
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &with);
    assert_eq!(r.status, 200, "{}", r.body);
    // exactly once
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &with);
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), 2, "one failed call, one served");
    stop(&mut gw);
    let evs = events(&env);
    let served: Vec<&Value> = evs.iter().filter(|e| e["status"] == 200).collect();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["ticket_id"], ticket.as_str());
    assert!(num(&served[0]["cost"]["settled"]) > 0.0);
    let (spent, reserved, n) = ledger(&env);
    assert_eq!(n, evs.len());
    assert_eq!(reserved, 0.0);
    assert!((spent - num(&served[0]["cost"]["settled"])).abs() < 1e-9);
}

#[test]
fn concurrent_requests_with_one_request_id_are_each_charged_and_audited() {
    let env = Env::new("lc-sameid");
    let key = env.support_team();
    let (addr, seen) = max_biller(Arc::default());
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (a, k) = (gw_addr.clone(), key.clone());
            std::thread::spawn(move || {
                chat(
                    &a,
                    Some(&k),
                    "m-cheap",
                    "hello",
                    &[("X-Request-Id", "same-id")],
                )
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(
            r.headers
                .lines()
                .find_map(|l| l.strip_prefix("x-request-id: "))
                .unwrap()
                .trim()
                .to_owned(),
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each call has its own id");
    stop(&mut gw);
    let calls = seen.lock().unwrap().len();
    let evs = events(&env);
    assert_eq!((calls, evs.len()), (6, 6));
    let settled: f64 = evs.iter().map(|e| num(&e["cost"]["settled"])).sum();
    let (spent, reserved, _) = ledger(&env);
    assert_eq!(reserved, 0.0);
    assert!((spent - settled).abs() < 1e-9 && settled > 0.0);
}

#[test]
fn a_key_bound_to_a_consumer_group_cannot_switch_groups_by_header() {
    let env = Env::new("lc-group");
    env.support_team();
    let group = ["--consumer-group", "customer-facing", "--json"];
    let bound = env.ok(&key_args("support", "agent@yourco.com", &group));
    let bound: Value = serde_json::from_str(&bound).unwrap();
    let bound = bound["key"].as_str().unwrap().to_owned();
    let p = env.dir.join("groups.yaml");
    std::fs::write(
        &p,
        r#"pack: { name: groups, version: "1.0" }
policies:
  chain:
    - pii-detector:
        targeting: { scope: consumer_group, consumer_groups: [customer-facing] }
    - audit-logger
providers:
  targets:
    - { id: mock-mini, provider: mock, model: gpt-4o-mini }
  consumer_groups:
    - { name: customer-facing, models: [{ provider: mock, model: gpt-4o-mini }] }
    - { name: internal-tools, models: [{ provider: mock, model: gpt-4o-mini }] }
"#,
    )
    .unwrap();
    let (mut gw, addr) = env.gateway_with(&p, &[]);
    let ssn = "my SSN is 123-45-6789";
    // its own group: the detector targeted at it runs
    let r = chat(&addr, Some(&bound), "gpt-4o-mini", ssn, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("123-45-6789"), "{}", r.body);
    // naming another group does not switch the detector off: refused
    let r = chat(
        &addr,
        Some(&bound),
        "gpt-4o-mini",
        ssn,
        &[("X-Consumer-Group", "internal-tools")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "consumer_group_mismatch");
    assert!(!r.body.contains("123-45-6789"));
    stop(&mut gw);
}

#[test]
fn every_text_field_is_governed_and_dropped_logprobs_are_said() {
    let env = Env::new("lc-fields");
    let key = env.support_team();
    let email = "jane.doe@example.com";
    let (addr, seen) = common::provider(move |conn, got| {
        let usage = json!({"prompt_tokens": 3, "completion_tokens": 4});
        if got.body["stream"] == true {
            let piece = |d: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1,
                "model": "m-cheap", "choices": [{"index": 0, "delta": d, "finish_reason": null,
                "logprobs": {"content": [{"token": email, "logprob": -0.1}]}}]})
            };
            let mut events: Vec<Value> =
                ["I cannot mail ", "jane.d", "oe@exam", "ple.com", " today."]
                    .iter()
                    .map(|p| piece(json!({"refusal": p})))
                    .collect();
            events.push(json!({"id": "c", "choices": [], "usage": usage}));
            common::respond_sse(conn, &events);
        } else {
            common::respond_json(
                conn,
                200,
                &json!({"id": "c", "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": null,
                        "refusal": format!("I cannot mail {email}"),
                        "audio": {"id": "a", "data": "AAAA", "expires_at": 1, "transcript": format!("mail {email}")}},
                    "logprobs": {"content": [{"token": email, "logprob": -0.1}]}}],
                "usage": usage}),
            );
        }
    });
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    // a request with the address in every field that carries text but the content
    let body = json!({"model": "m-cheap", "logprobs": true, "user": email,
        "messages": [{"role": "user", "name": email, "content": "hello"},
                     {"role": "assistant", "content": null,
                      "function_call": {"name": "f", "arguments": format!("{{\"to\": \"{email}\"}}")}},
                     {"role": "function", "name": "f", "content": "done"}],
        "prediction": {"type": "content", "content": format!("mail {email}")},
        "tools": [{"type": "function", "function": {"name": "notify", "description": format!("mails {email}"),
            "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": email}}}}}]});
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = seen.lock().unwrap()[0].to_string();
    assert!(
        !sent.contains(email),
        "the provider got the address: {sent}"
    );
    assert!(
        !r.body.contains(email),
        "the client got the address: {}",
        r.body
    );
    assert_eq!(r.json()["choices"][0]["logprobs"], Value::Null);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("x-keeptrusts-logprobs-dropped: true"),
        "{}",
        r.headers
    );
    // streamed: the refusal passes, redacted across pieces; logprobs never pass, and the
    // headers say so
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = post_json(&gw_addr, "/v1/chat/completions", &key, &streamed, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("example.com"), "{}", r.body);
    let refusal = common::streamed(&r.body, "refusal");
    assert_eq!(refusal, "I cannot mail [EMAIL] today.");
    assert!(r
        .headers
        .to_ascii_lowercase()
        .contains("x-keeptrusts-logprobs-dropped: true"));
    stop(&mut gw);
}
