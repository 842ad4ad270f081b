//! Every text-bearing field is governed (issue 19): a detected value placed in any field of a
//! request never reaches the provider, and one placed in any field of an answer (whole or
//! streamed) never reaches the client. Each test puts an e-mail address or an SSN in one field
//! and checks the JSON that would be sent, never the engine's own list of fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::exchange::{Begin, Exchange, StreamEnd};
use keeptrusts_core::{
    ChatRequest, ChatResponse, Engine, MemoryEscalations, Principal, RequestContext, Stores,
};
use serde_json::{json, Value};

const PACK: &str = r#"
pack: { name: fields, version: "1.0" }
policies:
  chain: [pii-detector]
policy:
  pii-detector: { action: redact }
"#;

const EMAIL: &str = "jane.doe@example.com";
const SSN: &str = "123-45-6789";

fn engine() -> Engine {
    Engine::from_yaml(PACK).unwrap()
}

fn principal() -> Principal {
    serde_json::from_value(json!({"user": "agent@yourco.com", "team": "support",
        "role": "member", "authenticated": true}))
    .unwrap()
}

/// The JSON the host forwards for `request` (the rewritten request, else the original).
fn forwarded(request: Value) -> String {
    let request: ChatRequest = serde_json::from_value(request).unwrap();
    let store = MemoryEscalations::new();
    let d = engine()
        .evaluate(
            &principal(),
            &request,
            &RequestContext::new("r1", 0),
            &Stores::new(&store),
        )
        .unwrap();
    assert!(d.forwards(), "{:?}", d.error);
    serde_json::to_string(d.request.as_ref().unwrap_or(&request)).unwrap()
}

fn assert_request_governed(request: Value) {
    let text = forwarded(request);
    assert!(
        !text.contains(EMAIL),
        "the address reached the provider: {text}"
    );
    assert!(!text.contains(SSN), "the SSN reached the provider: {text}");
}

fn user(extra: Value) -> Value {
    let mut r = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

#[test]
fn content_string_and_parts_are_governed() {
    assert_request_governed(user(json!({"messages": [
        {"role": "user", "content": format!("mail {EMAIL}")},
        {"role": "user", "content": [{"type": "text", "text": format!("SSN {SSN}")},
                                     {"type": "input_text", "text": format!("or {EMAIL}")}]}
    ]})));
}

#[test]
fn legacy_function_call_arguments_are_governed() {
    assert_request_governed(user(json!({"messages": [
        {"role": "user", "content": "look her up"},
        {"role": "assistant", "content": null,
         "function_call": {"name": "lookup", "arguments": format!("{{\"email\": \"{EMAIL}\", \"ssn\": \"{SSN}\"}}")}},
        {"role": "function", "name": "lookup", "content": "found"}
    ]})));
}

#[test]
fn tool_call_arguments_are_governed() {
    assert_request_governed(user(json!({"messages": [
        {"role": "user", "content": "look her up"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "lookup", "arguments": format!("{{\"email\": \"{EMAIL}\", \"ssn\": \"{SSN}\"}}")}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "found"}
    ]})));
}

#[test]
fn message_names_are_governed() {
    assert_request_governed(user(json!({"messages": [
        {"role": "user", "name": EMAIL, "content": "hello"},
        {"role": "user", "name": format!("ssn {SSN}"), "content": "hello"}
    ]})));
}

#[test]
fn assistant_refusals_in_the_history_are_governed() {
    assert_request_governed(user(json!({"messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": null, "refusal": format!("I will not mail {EMAIL}")},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": format!("nor SSN {SSN}")}]},
        {"role": "user", "content": "why"}
    ]})));
}

#[test]
fn prediction_content_is_governed() {
    assert_request_governed(user(json!({"prediction": {"type": "content",
        "content": format!("mail {EMAIL}, SSN {SSN}")}})));
    assert_request_governed(user(json!({"prediction": {"type": "content",
        "content": [{"type": "text", "text": format!("mail {EMAIL}")},
                    {"type": "text", "text": format!("SSN {SSN}")}]}})));
}

#[test]
fn tool_descriptions_are_governed() {
    assert_request_governed(user(json!({"tools": [{"type": "function", "function": {
        "name": "notify",
        "description": format!("mails {EMAIL}"),
        "parameters": {"type": "object", "properties": {
            "who": {"type": "string", "description": format!("the SSN, such as {SSN}")}}}}}]})));
}

#[test]
fn legacy_function_descriptions_are_governed() {
    assert_request_governed(user(json!({"functions": [{
        "name": "notify",
        "description": format!("mails {EMAIL}"),
        "parameters": {"type": "object", "properties": {
            "who": {"type": "string", "title": format!("SSN {SSN}")}}}}]})));
}

#[test]
fn response_schema_descriptions_are_governed() {
    assert_request_governed(user(json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "reply", "description": format!("for {EMAIL}"),
            "schema": {"type": "object", "properties": {
                "id": {"type": "string", "description": format!("SSN {SSN}")}}}}}})));
}

#[test]
fn end_user_ids_and_metadata_are_governed() {
    assert_request_governed(user(
        json!({"user": EMAIL, "metadata": {"case": format!("SSN {SSN}")}}),
    ));
}

#[test]
fn governed_request_keeps_everything_else() {
    // the schema's structure, the names and the ids are forwarded as sent
    let text = forwarded(user(json!({
        "tools": [{"type": "function", "function": {"name": "notify", "description": format!("mails {EMAIL}"),
            "parameters": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"who": {"type": "string", "enum": ["a", "b"]}}, "required": ["who"]}}}],
        "temperature": 0.5
    })));
    let v: Value = serde_json::from_str(&text).unwrap();
    let f = &v["tools"][0]["function"];
    assert_eq!(f["name"], "notify");
    assert_eq!(f["description"], "mails [EMAIL]");
    assert_eq!(
        f["parameters"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(f["parameters"]["required"], json!(["who"]));
    assert_eq!(v["temperature"], 0.5);
}

// ---------- answers ----------

/// The exchange of `request` by the test principal, which the pack forwards.
fn forward(request: &ChatRequest) -> Box<Exchange> {
    let store = MemoryEscalations::new();
    let ctx = RequestContext::new("r1", 0);
    let stores = Stores::new(&store);
    let begun = Exchange::begin(&engine(), None, &principal(), request, &ctx, &stores);
    let Begin::Forward(x) = begun.unwrap() else {
        panic!("refused")
    };
    x
}

/// What the client receives for a whole answer `response`: the answer's body and the fields the
/// answer says were dropped.
fn answered(response: Value) -> (String, keeptrusts_core::exchange::Answer) {
    let request: ChatRequest = serde_json::from_value(user(json!({}))).unwrap();
    let mut x = forward(&request);
    x.next_call().unwrap();
    let response: ChatResponse = serde_json::from_value(response).unwrap();
    let a = x.answer(&response);
    assert_eq!(a.status, 200);
    (a.body.to_string(), a)
}

fn answer_of(message: Value, extra: Value) -> Value {
    let mut choice = json!({"index": 0, "message": message, "finish_reason": "stop"});
    for (k, v) in extra.as_object().unwrap() {
        choice[k] = v.clone();
    }
    json!({"id": "c1", "object": "chat.completion", "choices": [choice],
           "usage": {"prompt_tokens": 3, "completion_tokens": 5}})
}

fn assert_answer_governed(response: Value) {
    let (text, _) = answered(response);
    assert!(
        !text.contains(EMAIL),
        "the address reached the client: {text}"
    );
    assert!(!text.contains(SSN), "the SSN reached the client: {text}");
}

#[test]
fn answer_content_and_tool_calls_are_governed() {
    assert_answer_governed(answer_of(
        json!({"role": "assistant", "content": format!("mail {EMAIL}"), "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": format!("{{\"ssn\": \"{SSN}\"}}")}}]}),
        json!({}),
    ));
}

#[test]
fn answer_refusals_are_governed() {
    assert_answer_governed(answer_of(
        json!({"role": "assistant", "content": null, "refusal": format!("I cannot mail {EMAIL} or use SSN {SSN}")}),
        json!({}),
    ));
}

#[test]
fn answer_audio_transcripts_are_governed() {
    assert_answer_governed(answer_of(
        json!({"role": "assistant", "content": null, "audio": {"id": "audio_1", "data": "AAAA",
            "expires_at": 1, "transcript": format!("mail {EMAIL}, SSN {SSN}")}}),
        json!({}),
    ));
}

#[test]
fn answer_legacy_function_calls_are_governed() {
    assert_answer_governed(answer_of(
        json!({"role": "assistant", "content": null, "function_call": {"name": "f",
            "arguments": format!("{{\"email\": \"{EMAIL}\", \"ssn\": \"{SSN}\"}}")}}),
        json!({}),
    ));
}

/// Logprobs repeat the answer token by token (and list alternatives): they cannot be redacted
/// in place, so they are dropped whenever an output detector applies.
fn logprobs_of(text: &str) -> Value {
    let tokens: Vec<Value> = text
        .split_inclusive(['.', ' ', '@'])
        .map(|t| {
            json!({"token": t, "logprob": -0.1, "bytes": t.as_bytes(),
            "top_logprobs": [{"token": t, "logprob": -0.1, "bytes": t.as_bytes()}]})
        })
        .collect();
    json!({"content": tokens, "refusal": null})
}

#[test]
fn answer_logprobs_are_dropped() {
    let content = format!("mail {EMAIL}, SSN {SSN}");
    assert_answer_governed(answer_of(
        json!({"role": "assistant", "content": content}),
        json!({"logprobs": logprobs_of(&content)}),
    ));
    // even when nothing was found: the alternatives are not the answer
    let (text, _) = answered(answer_of(
        json!({"role": "assistant", "content": "hello"}),
        json!({"logprobs": {"content": [{"token": "hello", "logprob": -0.1,
            "top_logprobs": [{"token": EMAIL, "logprob": -3.0}]}]}}),
    ));
    assert!(!text.contains(EMAIL), "{text}");
}

#[test]
fn dropped_logprobs_are_said() {
    let (text, a) = answered(answer_of(
        json!({"role": "assistant", "content": "hello"}),
        json!({"logprobs": logprobs_of("hello")}),
    ));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    assert_eq!(a.dropped, vec!["logprobs".to_owned()]);
    assert_eq!(
        a.headers(),
        vec![(keeptrusts_core::exchange::LOGPROBS_DROPPED_HEADER, "true")]
    );
    // an answer without logprobs says nothing
    let (_, a) = answered(answer_of(
        json!({"role": "assistant", "content": "hello"}),
        json!({"logprobs": null}),
    ));
    assert!(a.dropped.is_empty() && a.headers().is_empty());
}

#[test]
fn logprobs_stay_when_no_output_detector_applies() {
    let engine = Engine::from_yaml(
        r#"
pack: { name: fields, version: "1.0" }
policies:
  chain: [pii-detector]
policy:
  pii-detector: { action: redact, apply_to: input }
"#,
    )
    .unwrap();
    let response: ChatResponse = serde_json::from_value(answer_of(
        json!({"role": "assistant", "content": "hello"}),
        json!({"logprobs": logprobs_of("hello")}),
    ))
    .unwrap();
    let d = engine
        .evaluate_output(&principal(), &response, &RequestContext::new("r1", 0))
        .unwrap();
    assert!(d.dropped.is_empty() && d.response.is_none());
}

// ---------- streams ----------

/// What the client receives for a stream of `chunks`, through the exchange's relay.
fn streamed(chunks: &[Value]) -> String {
    let mut request: ChatRequest = serde_json::from_value(user(json!({}))).unwrap();
    request.extra.insert("stream".into(), json!(true));
    let mut x = forward(&request);
    x.next_call().unwrap();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(x.push_chunk(c));
    }
    let (rest, _) = x.finish_chunks(StreamEnd::Complete);
    out.extend(rest);
    serde_json::to_string(&out).unwrap()
}

fn delta(d: Value) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": d, "finish_reason": null}]})
}

/// `text` split into pieces of `n` bytes (on char boundaries).
fn pieces(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if cur.len() >= n {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn streamed_content_is_governed() {
    let chunks: Vec<Value> = pieces(&format!("mail {EMAIL}, SSN {SSN} please"), 3)
        .into_iter()
        .map(|p| delta(json!({"content": p})))
        .collect();
    let text = streamed(&chunks);
    assert!(
        text.contains("[EMAIL]") && !text.contains("example.com"),
        "{text}"
    );
}

#[test]
fn streamed_refusals_are_governed_and_passed_on() {
    let chunks: Vec<Value> = pieces(&format!("I cannot mail {EMAIL} or use SSN {SSN}."), 4)
        .into_iter()
        .map(|p| delta(json!({"refusal": p})))
        .collect();
    let text = streamed(&chunks);
    assert!(
        !text.contains("example.com") && !text.contains("45-67"),
        "{text}"
    );
    // the refusal still reaches the client, redacted, as a refusal
    let out: Vec<Value> = serde_json::from_str(&text).unwrap();
    let refusal: String = out
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(refusal, "I cannot mail [EMAIL] or use SSN [US_SSN].");
}

#[test]
fn streamed_tool_call_arguments_are_governed() {
    let args = format!("{{\"email\": \"{EMAIL}\", \"ssn\": \"{SSN}\"}}");
    let mut chunks = vec![delta(
        json!({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
        "function": {"name": "f", "arguments": ""}}]}),
    )];
    for p in pieces(&args, 3) {
        chunks.push(delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
        ));
    }
    let text = streamed(&chunks);
    assert!(
        !text.contains("example.com") && !text.contains("45-67"),
        "{text}"
    );
}

#[test]
fn streamed_logprobs_never_pass() {
    let mut c = delta(json!({"content": "hello "}));
    c["choices"][0]["logprobs"] = json!({"content": [{"token": "hello", "logprob": -0.1,
        "top_logprobs": [{"token": EMAIL, "logprob": -3.0}]}]});
    let text = streamed(&[c]);
    assert!(!text.contains(EMAIL), "{text}");
}

#[test]
fn a_stream_that_asked_for_logprobs_says_they_are_dropped() {
    for (asked, want) in [(true, 1), (false, 0)] {
        let request: ChatRequest =
            serde_json::from_value(user(json!({"stream": true, "logprobs": asked}))).unwrap();
        let x = forward(&request);
        assert_eq!(x.stream_headers().len(), want);
    }
}
