use super::*;

fn events(frames: &[Bytes]) -> Vec<Value> {
    frames
        .iter()
        .map(|f| {
            let s = std::str::from_utf8(f).unwrap();
            let data = s.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[test]
fn a_conversation_with_a_tool_round_trip_translates() {
    let v = json!({"model": "gpt-4o-mini", "instructions": "be brief",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "weather"},
        "max_output_tokens": 50, "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}}});
    let c = to_chat(&v).unwrap();
    assert_eq!(
        c["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(c["messages"][1]["content"][0]["text"], "weather?");
    assert_eq!(
        c["messages"][2]["tool_calls"][0]["function"]["name"],
        "weather"
    );
    assert_eq!(
        c["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    );
    assert_eq!(c["tools"][0]["function"]["name"], "weather");
    assert_eq!(c["tool_choice"]["function"]["name"], "weather");
    assert_eq!(c["max_completion_tokens"], 50);
    assert_eq!(c["response_format"]["json_schema"]["name"], "w");
}

#[test]
fn state_and_built_in_tools_are_refused_by_name() {
    for (v, code, needle) in [
        (
            json!({"input": "x", "previous_response_id": "resp_1"}),
            "unsupported_parameter",
            "previous_response_id",
        ),
        (
            json!({"input": "x", "store": true}),
            "unsupported_parameter",
            "store",
        ),
        (
            json!({"input": "x", "tools": [{"type": "web_search"}]}),
            "unsupported_tool",
            "web_search",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "x"}]}),
            "unsupported_input",
            "input[0]",
        ),
        (
            json!({"input": "x", "frobnicate": 1}),
            "unsupported_parameter",
            "frobnicate",
        ),
        (json!({"model": "m"}), "invalid_request", "`input`"),
    ] {
        let e = to_chat(&v).unwrap_err();
        assert_eq!(e.code, code, "{v}");
        assert!(e.message.contains(needle), "{}", e.message);
    }
    assert!(to_chat(&json!({"input": "x", "store": false})).is_ok());
}

#[test]
fn answers_become_output_items_with_usage() {
    let answer = json!({"model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": "checking",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}});
    let r = from_chat(&answer, &json!({"input": "x"}), "rid");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["content"][0]["text"], "checking");
    assert_eq!(r["output"][1]["call_id"], "call_9");
    assert_eq!(r["usage"]["input_tokens"], 12);
    assert_eq!(r["usage"]["total_tokens"], 15);
    let cut = json!({"choices": [{"finish_reason": "length", "message": {"content": "a"}}]});
    let r = from_chat(&cut, &Value::Null, "rid");
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
}

#[test]
fn a_stream_writes_the_responses_events_in_order() {
    let mut s = Stream::new(&json!({"input": "x"}), "rid", "m");
    let mut frames = s.open();
    for d in [
        Delta::Text {
            choice: 0,
            text: "Hel".into(),
        },
        Delta::Text {
            choice: 0,
            text: "lo".into(),
        },
        Delta::ToolCall {
            choice: 0,
            index: 0,
            id: Some("call_1".into()),
            name: Some("f".into()),
            arguments: String::new(),
        },
        Delta::ToolCall {
            choice: 0,
            index: 0,
            id: None,
            name: None,
            arguments: "{}".into(),
        },
        Delta::Finish {
            choice: 0,
            reason: "tool_calls".into(),
        },
    ] {
        frames.extend(s.delta(&d));
    }
    frames.extend(s.close(
        Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
        }),
        None,
    ));
    let evs = events(&frames);
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let seq: Vec<u64> = evs
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seq, (0..14).collect::<Vec<_>>());
    let done = &evs[13]["response"];
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][1]["arguments"], "{}");
    assert_eq!(done["usage"]["output_tokens"], 2);
    let mut s = Stream::new(&Value::Null, "rid", "m");
    let evs = events(&s.close(None, Some(("policy_blocked", "no", 409))));
    assert_eq!(evs[0]["type"], "response.failed");
    assert_eq!(evs[0]["response"]["error"]["code"], "policy_blocked");
}
