//! What the gateway does with a request body before any policy runs, on any bytes: parse it as
//! a chat completion (never panics), re-serialize it stably, translate it for an Anthropic target
//! (a clear error or a Messages body with `max_tokens` and alternating turns), and read any JSON
//! as an Anthropic answer or stream event (a clear error or a chat completion).
#![no_main]

use keeptrusts_core::ChatRequest;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[path = "../../keeptrusts-proxy-example/src/gateway/anthropic.rs"]
#[allow(dead_code)]
mod anthropic;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let _ = anthropic::StreamReader::default().event(&v);
        if let Ok(chat) = anthropic::response_to_chat(&v, 0) {
            assert_eq!(chat["object"], "chat.completion");
            assert!(chat["usage"]["total_tokens"].is_u64());
        }
    }
    let Ok(r) = serde_json::from_slice::<ChatRequest>(data) else { return };
    let bytes = serde_json::to_vec(&r).unwrap();
    let again: ChatRequest = serde_json::from_slice(&bytes).expect("what the gateway writes, it reads");
    assert_eq!(serde_json::to_vec(&again).unwrap(), bytes, "re-serialization is stable");
    let v = serde_json::to_value(&r).unwrap();
    for stream in [false, true] {
        if let Ok(body) = anthropic::request_body(&v, "claude-sonnet-4", stream, 1024) {
            assert!(body["max_tokens"].is_u64());
            let turns = body["messages"].as_array().unwrap();
            for pair in turns.windows(2) {
                assert_ne!(pair[0]["role"], pair[1]["role"], "turns alternate");
            }
            assert_eq!(body.get("stream").is_some(), stream);
        }
    }
});
