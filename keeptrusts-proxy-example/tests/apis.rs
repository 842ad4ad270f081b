//! The Responses, Messages and embeddings APIs through the gateway, against a fake provider
//! that speaks each upstream API (chat completions, Anthropic's Messages, embeddings): what is
//! translated each way, what the detectors redact, what is charged and audited, and the error
//! shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::io::Write;

use serde_json::{json, Value};

mod common;
use common::{events, http, ledger, post_json, provider, respond_json, sse, stop, Env, Received};

/// Chat completions: a tool call when the request has tools and ends with the user, the tool's
/// result echoed once it ends with it, else an answer with an e-mail address; streams in pieces
/// with a usage chunk when asked. Embeddings: one vector per input, 4 tokens each. Messages:
/// the same behaviours in Anthropic's shapes. A prompt saying `fail` is answered 500.
fn fake() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    provider(|conn, r: &Received| {
        let b = &r.body;
        if b.to_string().contains("fail") {
            respond_json(conn, 500, &json!({"error": {"message": "overloaded"}}));
            return;
        }
        if r.head.starts_with("post /v1/embeddings ") {
            let inputs: Vec<Value> = match &b["input"] {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, _)| json!({"object": "embedding", "index": i, "embedding": [0.5, -0.25, i]}))
                .collect();
            let n = 4 * inputs.len();
            let mut answer = json!({"object": "list", "data": data, "model": b["model"],
                "usage": {"prompt_tokens": n, "total_tokens": n}});
            // a provider that does not say what it billed, or answers without the vectors
            if b["input"].to_string().contains("no-usage") {
                answer.as_object_mut().unwrap().remove("usage");
            }
            if b["input"].to_string().contains("no-data") {
                answer.as_object_mut().unwrap().remove("data");
            }
            // or one vector short: the client would pair its texts with the wrong vectors
            if b["input"].to_string().contains("one-short") {
                answer["data"].as_array_mut().unwrap().pop();
            }
            respond_json(conn, 200, &answer);
            return;
        }
        if r.head.starts_with("post /v1/messages ") {
            messages_answer(conn, b);
            return;
        }
        let last = &b["messages"].as_array().unwrap().last().unwrap().clone();
        let tool_call = b["tools"].is_array() && last["role"] == "user";
        let text = if last["role"] == "tool" {
            format!(
                "Done: {} mail jane@example.com",
                last["content"].as_str().unwrap()
            )
        } else {
            "Contact jane@example.com".to_owned()
        };
        if b["stream"] == true {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "c", "object": "chat.completion.chunk", "model": b["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            let mut evs: Vec<Value> = if tool_call {
                vec![
                    chunk(
                        json!({"tool_calls": [{"index": 0, "id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}),
                        Value::Null,
                    ),
                    chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"email\": \"ann@exa"}}]}),
                        Value::Null,
                    ),
                    chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "mple.com\"}"}}]}),
                        Value::Null,
                    ),
                    chunk(json!({}), json!("tool_calls")),
                ]
            } else {
                [
                    "Sure, call me at ",
                    "(415) 555-",
                    "0132 or mail ",
                    "ana@example.org",
                    " today.",
                ]
                .iter()
                .map(|p| chunk(json!({"content": p}), Value::Null))
                .chain([chunk(json!({}), json!("stop"))])
                .collect()
            };
            if b["stream_options"]["include_usage"] == true {
                evs.push(
                    json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7}}),
                );
            }
            for ev in evs {
                let _ = conn.write_all(format!("data: {ev}\n\n").as_bytes());
                let _ = conn.flush();
            }
            let _ = conn.write_all(b"data: [DONE]\n\n");
            return;
        }
        let message = if tool_call {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_7", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"email\": \"ann@example.com\"}"}}]})
        } else {
            json!({"role": "assistant", "content": text})
        };
        respond_json(
            conn,
            200,
            &json!({"id": "x", "object": "chat.completion", "model": b["model"],
                "choices": [{"index": 0, "message": message,
                    "finish_reason": if tool_call { "tool_calls" } else { "stop" }}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}),
        );
    })
}

/// The fake's Messages API: text with an e-mail address (a `tool_use` block when the request
/// has tools and its last turn is not a tool result); usage 9 in, 20 out.
fn messages_answer(conn: &mut std::net::TcpStream, b: &Value) {
    let last = b["messages"].as_array().unwrap().last().unwrap();
    let answered_tool = last["content"][0]["type"] == "tool_result";
    let content = if b["tools"].is_array() && !answered_tool {
        json!([{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"email": "ann@example.com"}}])
    } else {
        json!([{"type": "text", "text": "Hello, mail jane@example.com"}])
    };
    if b["stream"] == true {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        );
        let evs = [
            json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello, mail jane@exa"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "mple.com"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}),
            json!({"type": "message_stop"}),
        ];
        for ev in evs {
            let _ = conn.write_all(
                format!("event: {}\ndata: {ev}\n\n", ev["type"].as_str().unwrap()).as_bytes(),
            );
        }
        return;
    }
    let stop = if content[0]["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    };
    respond_json(
        conn,
        200,
        &json!({"id": "msg_1", "type": "message", "role": "assistant", "model": b["model"],
            "content": content, "stop_reason": stop, "usage": {"input_tokens": 9, "output_tokens": 20}}),
    );
}

fn pack(env: &Env, provider: &str) -> std::path::PathBuf {
    std::env::set_var("KT_TEST_APIS_KEY", "sk-test");
    let p = env.write_pack(&format!(
            r#"pack: {{ name: apis, version: "1.0" }}
policies: {{ chain: [pii-detector, audit-logger] }}
policy:
  pii-detector: {{ action: redact }}
providers:
  targets:
    - {{ id: gpt, provider: openai-compatible, model: gpt-4o-mini, base_url: "http://{provider}/v1" }}
    - {{ id: claude, provider: anthropic, model: claude-sonnet-4-5, base_url: "http://{provider}/v1", secret_key_ref: {{ env: KT_TEST_APIS_KEY }} }}
    - {{ id: emb, provider: openai-compatible, model: text-embedding-3-small, base_url: "http://{provider}/v1" }}
"#
        ));
    p
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .map_or_else(|| v.as_f64().unwrap_or(0.0), |s| s.parse().unwrap())
}

/// Every event settled what its provider reported, and the wallet spent exactly their sum.
fn charged_as_audited(env: &Env, expected: usize) -> Vec<Value> {
    let evs = events(env);
    assert_eq!(evs.len(), expected, "one event per request: {evs:#?}");
    let settled: f64 = evs.iter().map(|e| num(&e["cost"]["settled"])).sum();
    let (spent, reserved, _) = ledger(env);
    assert!(
        (spent - settled).abs() < 1e-9,
        "spent {spent}, settled {settled}"
    );
    assert!(reserved.abs() < 1e-12, "nothing stays reserved: {reserved}");
    evs
}

#[test]
fn responses_are_translated_to_chat_completions_and_back() {
    let env = Env::new("apis-responses");
    let key = env.support_team();
    let (addr, seen) = fake();
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);

    // plain: the prompt is redacted before the provider, the answer before the client
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "instructions": "Be brief.", "input": "mail bob@example.com", "max_output_tokens": 64}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "Contact [EMAIL]");
    assert_eq!(v["usage"]["input_tokens"], 10);
    assert_eq!(v["usage"]["output_tokens"], 5);
    {
        let sent = &seen.lock().unwrap()[0];
        assert_eq!(
            sent["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(sent["messages"][1]["content"], "mail [EMAIL]");
        assert_eq!(sent["max_completion_tokens"], 64);
    }

    // streamed: the Responses events, redacted across pieces, usage in response.completed
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "stream": true}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = sse(&r.body);
    assert_eq!(evs[0]["type"], "response.created");
    let text: String = evs
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Sure, call me at [PHONE] or mail [EMAIL] today.");
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "response.completed", "{last}");
    assert_eq!(last["response"]["usage"]["output_tokens"], 7);
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"],
        "Sure, call me at [PHONE] or mail [EMAIL] today."
    );

    // a tool round trip: the call's arguments are redacted; its output goes back as a tool turn
    let tools = json!([{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]);
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": "who is it?", "tools": tools}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let call = r.json()["output"][0].clone();
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "call_7");
    assert_eq!(call["arguments"], "{\"email\": \"[EMAIL]\"}");
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "tools": tools, "input": [
            {"role": "user", "content": "who is it?"}, call,
            {"type": "function_call_output", "call_id": "call_7", "output": "Ann, ann@example.com"}]}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["output"][0]["content"][0]["text"],
        "Done: Ann, [EMAIL] mail [EMAIL]"
    );
    {
        let sent = &seen.lock().unwrap()[3];
        assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_7");
        assert_eq!(
            sent["messages"][2],
            json!({"role": "tool", "tool_call_id": "call_7", "content": "Ann, [EMAIL]"})
        );
    }
    // streamed tool call: the arguments' pieces are redacted as one text
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": "who?", "tools": tools, "stream": true}),
        &[],
    );
    let evs = sse(&r.body);
    let done = evs.last().unwrap();
    assert_eq!(
        done["response"]["output"][0]["type"], "function_call",
        "{done}"
    );
    assert_eq!(
        done["response"]["output"][0]["arguments"],
        "{\"email\": \"[EMAIL]\"}"
    );
    assert!(!r.body.contains("ann@"), "{}", r.body);

    // refused clearly, and audited: state, built-in tools; a provider failure is a 502
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": "x", "previous_response_id": "resp_1"}),
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unsupported_parameter");
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": "x", "tools": [{"type": "web_search"}]}),
        &[],
    );
    assert_eq!(r.json()["error"]["code"], "unsupported_tool");
    let r = post_json(
        &gw_addr,
        "/v1/responses",
        &key,
        &json!({"model": "gpt-4o-mini", "input": "please fail"}),
        &[],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    stop(&mut gw);
    let evs = charged_as_audited(&env, 8);
    assert_eq!(evs[1]["tokens"]["completion_tokens"], 7);
    assert_eq!(evs[5]["status"], 400);
    assert_eq!(evs[7]["status"], 502);
}

#[test]
fn messages_are_translated_for_either_target_and_errors_keep_anthropics_shape() {
    let env = Env::new("apis-messages");
    let key = env.support_team();
    let (addr, seen) = fake();
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let version = [("anthropic-version", "2023-06-01")];
    let with_key = [
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", key.as_str()),
    ];

    // to an Anthropic target, with the key as x-api-key as the Anthropic SDKs send it
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "system": "Be brief.",
        "messages": [{"role": "user", "content": "my SSN is 123-45-6789"}]});
    let r = http(
        &gw_addr,
        "POST",
        "/v1/messages",
        None,
        &with_key,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(
        v["content"][0],
        json!({"type": "text", "text": "Hello, mail [EMAIL]"})
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"], json!({"input_tokens": 9, "output_tokens": 20}));
    {
        let sent = &seen.lock().unwrap()[0];
        assert_eq!(sent["system"], "Be brief.");
        assert_eq!(sent["max_tokens"], 200);
        assert_eq!(
            sent["messages"][0]["content"][0]["text"],
            "my SSN is [US_SSN]"
        );
    }
    // streamed from an Anthropic target: Messages events, redacted across pieces
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = post_json(&gw_addr, "/v1/messages", &key, &streamed, &version);
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = sse(&r.body);
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let text: String = evs
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello, mail [EMAIL]");
    let delta = evs.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 20);

    // to a chat completions target, with tools: tool_use with redacted input, then the result
    let tools = json!([{"name": "lookup", "description": "finds people", "input_schema": {"type": "object"}}]);
    let r = post_json(
        &gw_addr,
        "/v1/messages",
        &key,
        &json!({"model": "gpt-4o-mini", "max_tokens": 100, "tools": tools,
            "messages": [{"role": "user", "content": "who?"}]}),
        &version,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "tool_use", "id": "call_7", "name": "lookup", "input": {"email": "[EMAIL]"}})
    );
    let r = post_json(
        &gw_addr,
        "/v1/messages",
        &key,
        &json!({"model": "gpt-4o-mini", "max_tokens": 100, "tools": tools, "messages": [
            {"role": "user", "content": "who?"},
            {"role": "assistant", "content": v["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_7", "content": "Ann"}]}]}),
        &version,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["content"][0]["text"], "Done: Ann mail [EMAIL]");
    {
        let sent = &seen.lock().unwrap()[3];
        assert_eq!(
            sent["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(
            sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
            "{\"email\":\"[EMAIL]\"}"
        );
        assert_eq!(
            sent["messages"][2],
            json!({"role": "tool", "tool_call_id": "call_7", "content": "Ann"})
        );
    }

    // errors in Anthropic's shape, the gateway's code beside
    let r = post_json(&gw_addr, "/v1/messages", &key, &body, &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = http(
        &gw_addr,
        "POST",
        "/v1/messages",
        None,
        &[
            ("anthropic-version", "2023-06-01"),
            ("x-api-key", "kt_wrong"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    let r = post_json(
        &gw_addr,
        "/v1/messages",
        &key,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "fail"}]}),
        &version,
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    let r = post_json(
        &gw_addr,
        "/v1/messages",
        &key,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "top_k": 3, "messages": []}),
        &version,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unsupported_parameter");
    stop(&mut gw);
    // every request is an event: 4 served, the missing header, the wrong key, the 502, top_k
    let evs = charged_as_audited(&env, 8);
    assert_eq!(evs[0]["tokens"]["prompt_tokens"], 9);
}

#[test]
fn embeddings_scan_every_input_and_are_priced_on_input_tokens() {
    let env = Env::new("apis-embeddings");
    let key = env.support_team();
    let (addr, seen) = fake();
    let (mut gw, gw_addr) = env.gateway_with(&pack(&env, &addr), &[]);
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": ["mail bob@example.com", "plain text"], "encoding_format": "float"}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"], json!([0.5, -0.25, 1]));
    assert_eq!(v["usage"]["prompt_tokens"], 8);
    {
        let sent = &seen.lock().unwrap()[0];
        assert_eq!(sent["input"], json!(["mail [EMAIL]", "plain text"]));
        assert_eq!(sent["encoding_format"], "float");
        assert!(sent.get("messages").is_none(), "{sent}");
    }
    // one string stays one string
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": "call (415) 555-0132"}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen.lock().unwrap()[1]["input"], "call [PHONE]");
    // token arrays cannot be scanned: refused, nothing forwarded
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": [[1, 2, 3]]}),
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unsupported_input");
    assert_eq!(seen.lock().unwrap().len(), 2);
    // a provider that reports no usage is charged its whole bound, never 0; one that answers
    // 2xx without vectors (or one short) is a 502, and still charged (it may have billed)
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": "no-usage"}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": "no-data"}),
        &[],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    let r = post_json(
        &gw_addr,
        "/v1/embeddings",
        &key,
        &json!({"model": "text-embedding-3-small", "input": ["one-short", "b"]}),
        &[],
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 embedding(s) for 2 input(s)"),
        "{}",
        r.body
    );
    stop(&mut gw);
    let evs = charged_as_audited(&env, 6);
    assert!(num(&evs[5]["cost"]["settled"]) > 0.0, "{}", evs[5]);
    let unmetered = &evs[3]["cost"];
    assert!(num(&unmetered["settled"]) > 0.0, "{unmetered}");
    assert_eq!(num(&unmetered["settled"]), num(&unmetered["estimated"]));
    assert!(num(&evs[4]["cost"]["settled"]) > 0.0, "{}", evs[4]);
    // 8 input tokens at 0.02 per million, no output
    assert!(
        (num(&evs[0]["cost"]["settled"]) - 8.0 * 0.02 / 1e6).abs() < 1e-15,
        "{}",
        evs[0]
    );
    assert_eq!(evs[0]["tokens"]["completion_tokens"], 0);
    assert_eq!(evs[0]["model"], "text-embedding-3-small");
}
