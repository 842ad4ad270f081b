//! The gateway end to end, as a client sees it: `kt gateway run` on a fresh SQLite store set up
//! with the `kt` CLI, the mock provider, plain HTTP/1.1 requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::io::Write;

use serde_json::Value;

mod common;
use common::{call, chat, get, http, post_json, stop, Env};

#[test]
fn the_gateway_governs_each_team() {
    let env = Env::new("teams");
    for team in ["Support", "Engineering", "Legal"] {
        env.ok(&["team", "create", "--name", team]);
    }
    env.add_member("support", "agent@yourco.com", None);
    env.add_member("engineering", "dev@yourco.com", None);
    env.add_member("legal", "counsel@yourco.com", None);
    let support = env.key("support", "agent@yourco.com");
    let eng = env.key("engineering", "dev@yourco.com");
    let legal = env.key("legal", "counsel@yourco.com");
    env.allocate("support", "5");
    env.ok(&[
        "wallet", "allocate", "--team", "legal", "--amount", "1000", "--period", "monthly",
    ]);
    env.allocate("engineering", "0.003");
    let (mut gw, addr) = env.gateway(&["--max-body-bytes", "20000"]);

    // no key, a wrong key
    let r = chat(&addr, None, "gpt-4o-mini", "hi", &[]);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let r = chat(&addr, Some("kt_0123"), "gpt-4o-mini", "hi", &[]);
    assert_eq!(r.status, 401);

    // support: PII redacted before the provider sees it (the mock echoes what it got)
    let r = chat(
        &addr,
        Some(&support),
        "gpt-4o-mini",
        "Customer SSN 123-45-6789, card 4111 1111 1111 1111, mail jane@example.com",
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        content,
        "Echo: Customer SSN [US_SSN], card [CREDIT_CARD], mail [EMAIL]"
    );
    assert!(r
        .headers
        .to_ascii_lowercase()
        .contains("x-request-id: req_"));

    // a client's request id is propagated
    let r = chat(
        &addr,
        Some(&support),
        "gpt-4o-mini",
        "hello",
        &[("X-Request-Id", "client-42")],
    );
    assert!(r.headers.contains("client-42"), "{}", r.headers);

    // engineering: not redacted; its tiny wallet soon runs dry → 402 with a ticket
    let r = chat(
        &addr,
        Some(&eng),
        "gpt-4o-mini",
        "mail jane@example.com",
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("jane@example.com"));
    let eng_asks = |headers: &[(&str, &str)]| {
        let text = "a longer prompt that costs a little more each time";
        chat(&addr, Some(&eng), "gpt-4o-mini", text, headers)
    };
    let mut ticket = None;
    for _ in 0..1000 {
        let r = eng_asks(&[]);
        if r.status == 402 {
            assert_eq!(r.json()["error"]["code"], "budget_exceeded");
            ticket = Some(r.json()["error"]["ticket_id"].as_str().unwrap().to_owned());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let ticket = ticket.expect("the engineering wallet ran dry");
    // empty the wallet for good, so only the approval can let a request through
    env.allocate("engineering", "0");
    env.ok(&[
        "ticket",
        "approve",
        &ticket,
        "--charge-to",
        "team:engineering",
        "--as",
        "cfo@yourco.com",
    ]);
    let retry = eng_asks(&[("X-Keeptrusts-Ticket-Id", &ticket)]);
    assert_eq!(retry.status, 200, "{}", retry.body);
    let again = eng_asks(&[("X-Keeptrusts-Ticket-Id", &ticket)]);
    assert_ne!(
        again.status, 200,
        "an approved ticket lets the request through once"
    );

    // legal: escalated, approved with the CLI, the retry goes through once
    let legal_asks = |headers: &[(&str, &str)]| {
        let text = "Review the contract for Maria Garcia";
        chat(&addr, Some(&legal), "gpt-4o", text, headers)
    };
    let r = legal_asks(&[]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "escalation_required");
    let esc = r.json()["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&["escalation", "approve", &esc, "--as", "gc@yourco.com"]);
    let r = legal_asks(&[("X-Keeptrusts-Escalation-Id", &esc)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("[PERSON]"),
        "legal's chain redacts names: {}",
        r.body
    );
    let r = legal_asks(&[("X-Keeptrusts-Escalation-Id", &esc)]);
    assert_eq!(r.status, 409);

    // streaming: SSE chunks, redacted, usage, [DONE]
    let body = serde_json::json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "call me at (415) 555-0132 please"}]});
    let r = post_json(&addr, "/v1/chat/completions", &support, &body, &[]);
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("text/event-stream"));
    assert!(
        r.body.contains("[PHONE]") && !r.body.contains("555-0132"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("\"usage\"") && r.body.trim_end().ends_with("data: [DONE]"),
        "{}",
        r.body
    );

    // bad input
    let r = call(
        &addr,
        "POST",
        "/v1/chat/completions",
        &support,
        b"{not json",
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let big = vec![b'x'; 30_000];
    let r = call(&addr, "POST", "/v1/chat/completions", &support, &big);
    assert_eq!(r.status, 413);

    // dashboards: a member may not read another team's
    let r = get(&addr, "/v1/dashboard/overview?team=legal", &support);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get(&addr, "/v1/dashboard/overview", &support);
    assert_eq!(r.status, 200, "{}", r.body);

    // models, health, metrics
    let r = get(&addr, "/v1/models", &support);
    assert!(r.body.contains("gpt-4o-mini"), "{}", r.body);
    let r = http(&addr, "GET", "/metrics", None, &[], b"");
    assert!(
        r.body
            .contains("keeptrusts_requests_total{team=\"support\",verdict=\"redact\"}"),
        "{}",
        r.body
    );

    stop(&mut gw);
    // every request left one event, and the chain verifies
    let out = env.ok(&["events", "verify"]);
    assert!(out.starts_with("ok:"), "{out}");
    let balance: Value = serde_json::from_str(&env.ok(&["wallet", "balance", "--json"])).unwrap();
    let support_wallet = balance
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wallet"] == "team:support")
        .unwrap();
    assert_ne!(support_wallet["spent"], "0");
    assert_eq!(
        support_wallet["reserved"]
            .as_str()
            .unwrap()
            .trim_end_matches('0')
            .trim_end_matches('.'),
        "0"
    );
}

#[test]
fn admin_api_creates_teams_members_and_keys_for_owners_only() {
    let env = Env::new("admin");
    env.ok(&["team", "create", "--name", "Finance"]);
    env.add_member("finance", "cfo@yourco.com", Some("owner"));
    env.add_member("finance", "clerk@yourco.com", None);
    let owner = env.key("finance", "cfo@yourco.com");
    let clerk = env.key("finance", "clerk@yourco.com");
    let (mut gw, addr) = env.gateway(&[]);
    let post = |path: &str, key: &str, body: &[u8]| call(&addr, "POST", path, key, body);
    let r = post("/v1/teams", &clerk, br#"{"name": "Support"}"#);
    assert_eq!(r.status, 403);
    let tier_one = br#"{"name": "Support", "description": "tier 1"}"#;
    let r = post("/v1/teams", &owner, tier_one);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["slug"], "support");
    let r = post("/v1/teams", &owner, br#"{"name": "Support"}"#);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let r = post("/v1/teams", &owner, br#"{"nmae": "Typo"}"#);
    assert_eq!(r.status, 400);
    let member = br#"{"email": "agent@yourco.com", "role": "member"}"#;
    let r = post("/v1/teams/support/members", &owner, member);
    assert_eq!(r.status, 201, "{}", r.body);
    let new_key = br#"{"team": "support", "email": "agent@yourco.com"}"#;
    let r = post("/v1/keys", &owner, new_key);
    assert_eq!(r.status, 201, "{}", r.body);
    let agent_key = r.json()["key"].as_str().unwrap().to_owned();
    let monthly = br#"{"team": "support", "amount": 1000, "currency": "USD", "period": "monthly"}"#;
    let r = post("/v1/wallets/allocate", &owner, monthly);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = chat(&addr, Some(&agent_key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&addr, "/v1/wallets/balance", &owner);
    assert!(r.body.contains("support"), "{}", r.body);
    stop(&mut gw);
}

/// A provider on a local port: JSON for plain requests, an SSE stream (sent in pieces, with
/// pauses) for `"stream": true`. The phone number is split across events.
fn fake_provider() -> String {
    common::provider(|conn, r| {
        if r.head.starts_with("post /v1/messages ") {
            anthropic_answer(conn, &r.head, &r.body);
            return;
        }
        if r.body["stream"] == true {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
            for piece in [
                "Sure, call me at ",
                "(415) 555-",
                "0132 or mail ",
                "ana@example.org",
                " today.",
            ] {
                let ev = serde_json::json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
                let _ = conn.write_all(format!("data: {ev}\n\n").as_bytes());
                let _ = conn.flush();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = conn.write_all(b"data: [DONE]\n\n");
        } else {
            let v = serde_json::json!({"id": "x", "object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Contact jane@example.com"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
            common::respond_json(conn, 200, &v);
        }
    })
    .0
}

/// The fake's Messages API: the answer reports what arrived (system prompt, max_tokens, the
/// version and key headers, the last user text) and adds an e-mail address for the output phase.
fn anthropic_answer(conn: &mut std::net::TcpStream, head: &str, req: &Value) {
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let said = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_owned();
    let text = format!(
        "system={} max_tokens={} version={} key={} said={said} mail jane@example.com",
        req["system"].as_str().unwrap_or("-"),
        req["max_tokens"],
        header("anthropic-version:"),
        header("x-api-key:"),
    );
    if req["stream"] == true {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        );
        let mut events = vec![
            serde_json::json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ];
        for piece in text.split_inclusive(' ') {
            events.push(serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}));
        }
        events.push(serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}));
        events.push(serde_json::json!({"type": "message_stop"}));
        for ev in events {
            let _ = conn.write_all(
                format!("event: {}\ndata: {ev}\n\n", ev["type"].as_str().unwrap()).as_bytes(),
            );
            let _ = conn.flush();
        }
    } else {
        let v = serde_json::json!({"id": "msg_1", "type": "message", "role": "assistant", "model": req["model"],
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 20}});
        let b = v.to_string();
        let _ = conn.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}", b.len()).as_bytes());
    }
}

#[test]
fn anthropic_targets_speak_the_messages_api() {
    let env = Env::new("anthropic");
    let provider = fake_provider();
    std::env::set_var("KT_TEST_ANTHROPIC_KEY", "sk-ant-test");
    let pack = env.write_pack(&format!(
            "pack: {{ name: claude, version: \"1.0\" }}\npolicies: {{ chain: [pii-detector, audit-logger] }}\nproviders:\n  targets:\n    - id: claude\n      provider: anthropic\n      base_url: http://{provider}/v1\n      model: claude-sonnet-4-20250514\n      secret_key_ref: {{ env: KT_TEST_ANTHROPIC_KEY }}\n"
        ));
    let key = env.support_team();
    let (mut gw, addr) = env.gateway_with(&pack, &[]);

    let body = serde_json::json!({"model": "claude-sonnet-4-20250514", "max_tokens": 300,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "my SSN is 123-45-6789"}]});
    let r = post_json(&addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "system=Be brief. max_tokens=300 version=2023-06-01 key=sk-ant-test said=my SSN is [US_SSN] mail [EMAIL]"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    assert_eq!(v["usage"]["completion_tokens"], 20);

    let body = serde_json::json!({"model": "claude-sonnet-4-20250514", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]});
    let r = post_json(&addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200);
    let text = common::streamed(&r.body, "content");
    assert_eq!(
        text,
        "system=- max_tokens=1024 version=2023-06-01 key=sk-ant-test said=hello mail [EMAIL]"
    );
    stop(&mut gw);
    assert_eq!(common::request_events(&env), 2);
}

#[test]
fn provider_responses_and_streams_are_redacted_on_the_way_back() {
    let env = Env::new("upstream");
    let provider = fake_provider();
    let pack = env.write_pack(&format!(
            "pack: {{ name: upstream, version: \"1.0\" }}\npolicies: {{ chain: [pii-detector, audit-logger] }}\nproviders:\n  targets:\n    - id: local\n      provider: openai-compatible\n      base_url: http://{provider}/v1\n      model: gpt-4o-mini\n"
        ));
    let key = env.support_team();
    let (mut gw, addr) = env.gateway_with(&pack, &[]);

    let r = chat(&addr, Some(&key), "gpt-4o-mini", "who do I contact?", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Contact [EMAIL]"
    );

    let body = serde_json::json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "how do I reach you?"}]});
    let r = post_json(&addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200);
    let text = common::streamed(&r.body, "content");
    assert_eq!(text, "Sure, call me at [PHONE] or mail [EMAIL] today.");
    stop(&mut gw);
    assert_eq!(common::request_events(&env), 2);
}

#[test]
fn models_lists_only_what_the_callers_role_and_consumer_group_may_use() {
    let env = Env::new("models");
    let pack = env.write_pack("pack: { name: models, version: \"1.0\" }
policies: { chain: [rbac, audit-logger] }
policy:
  rbac:
    allowed_models:
      member: [gpt-4o-mini, claude-*]
providers:
  targets:
    - { id: mini, provider: openai-compatible, base_url: http://127.0.0.1:9/v1, model: gpt-4o-mini }
    - { id: big, provider: openai-compatible, base_url: http://127.0.0.1:9/v1, model: gpt-4o }
    - { id: claude, provider: openai-compatible, base_url: http://127.0.0.1:9/v1, model: claude-sonnet-4 }
  consumer_groups:
    - name: internal-tools
      models: [{ provider: openai-compatible, model: gpt-4o-mini }, { provider: openai-compatible, model: gpt-4o }]
    - name: legal-only
      teams: [legal]
      models: [{ provider: openai-compatible, model: claude-sonnet-4 }]
");
    let member = env.support_team();
    let admin = env.member_key("support", "lead@yourco.com", Some("admin"));
    let (mut gw, addr) = env.gateway_with(&pack, &[]);
    let ids = |key: &str, headers: &[(&str, &str)]| -> (u16, Vec<String>) {
        let r = http(&addr, "GET", "/v1/models", Some(key), headers, b"");
        let ids = r.json()["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (r.status, ids)
    };
    // a member's role may use two of the three models; an admin's role is not restricted
    assert_eq!(
        ids(&member, &[]),
        (200, vec!["claude-sonnet-4".into(), "gpt-4o-mini".into()])
    );
    assert_eq!(
        ids(&admin, &[]),
        (
            200,
            vec![
                "claude-sonnet-4".into(),
                "gpt-4o".into(),
                "gpt-4o-mini".into()
            ]
        )
    );
    // a consumer group narrows to its models, then the role to what it may use
    assert_eq!(
        ids(&member, &[("x-consumer-group", "internal-tools")]),
        (200, vec!["gpt-4o-mini".into()])
    );
    assert_eq!(
        ids(&admin, &[("x-consumer-group", "internal-tools")]),
        (200, vec!["gpt-4o".into(), "gpt-4o-mini".into()])
    );
    // a group of another team, an unknown group, no key
    assert_eq!(ids(&admin, &[("x-consumer-group", "legal-only")]).0, 403);
    assert_eq!(ids(&admin, &[("x-consumer-group", "nope")]).0, 400);
    let r = http(&addr, "GET", "/v1/models", None, &[], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    stop(&mut gw);
}
