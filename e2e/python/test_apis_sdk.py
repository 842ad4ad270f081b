"""The official `openai` (Responses, embeddings) and `anthropic` (Messages) Python packages,
unchanged, against `kt gateway run` (issue 22): each call redacted for support (pii-detector),
charged to its wallet and audited as one event.
"""
import json

import anthropic
import pytest
from openai import OpenAI

from conftest import kt

EMAIL = "mail jane@example.com"


def openai_client(gw, team="support"):
    return OpenAI(base_url=gw["url"], api_key=gw["keys"][team], max_retries=0)


def anthropic_client(gw, team="support"):
    # the SDK appends /v1/messages itself, and sends the key as x-api-key
    return anthropic.Anthropic(base_url=gw["url"][: -len("/v1")], api_key=gw["keys"][team], max_retries=0)


def events(gw):
    """Support's request events, oldest first."""
    out = [json.loads(line) for line in kt(gw["store"], "events", "export").splitlines()]
    return [e for e in out if "admin" not in e and e.get("team") == "support"]


@pytest.fixture
def audited(gw):
    """Asserts that the test's calls each wrote one event for support, settled above zero."""
    before = len(events(gw))
    calls = []
    yield calls
    new = events(gw)[before:]
    assert len(new) == len(calls), new
    for e, model in zip(new, calls):
        assert e["model"] == model
        assert e["status"] == 200
        assert float(e["cost"]["settled"]) > 0, e


def test_responses_plain(gw, audited):
    r = openai_client(gw).responses.create(model="gpt-4o-mini", instructions="Be brief.", input=EMAIL)
    audited.append("gpt-4o-mini")
    assert r.output_text == "Echo: mail [EMAIL]"
    assert r.status == "completed"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_responses_streaming(gw, audited):
    stream = openai_client(gw).responses.create(model="gpt-4o-mini", input="call (415) 555-0132 please", stream=True)
    audited.append("gpt-4o-mini")
    kinds, text, final = [], "", None
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created"
    assert text == "Echo: call [PHONE] please"
    assert final.output_text == text
    assert final.usage.output_tokens > 0


def test_responses_tool_call_round_trip(gw, audited):
    c = openai_client(gw)
    tools = [{"type": "function", "name": "lookup", "description": "finds a customer",
              "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}]
    first = c.responses.create(model="gpt-4o-mini", input="who wrote from jane@example.com?", tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "lookup"
    assert json.loads(call.arguments) == {"text": "who wrote from [EMAIL]?"}
    second = c.responses.create(model="gpt-4o-mini", tools=tools, input=[
        {"role": "user", "content": "who wrote from jane@example.com?"},
        call,
        {"type": "function_call_output", "call_id": call.call_id, "output": "Jane, jane@example.com"},
    ])
    audited.extend(["gpt-4o-mini", "gpt-4o-mini"])
    assert second.output_text == "Echo: Jane, [EMAIL]"


def test_responses_refuse_conversation_state(gw):
    import openai
    with pytest.raises(openai.BadRequestError) as e:
        openai_client(gw).responses.create(model="gpt-4o-mini", input="hi", previous_response_id="resp_1")
    assert e.value.body["code"] == "unsupported_parameter"


def test_embeddings(gw, audited):
    r = openai_client(gw).embeddings.create(model="text-embedding-3-small",
                                            input=[EMAIL, "no personal data here"])
    audited.append("text-embedding-3-small")
    assert len(r.data) == 2
    assert len(r.data[0].embedding) == 8
    assert r.usage.prompt_tokens > 0
    # the vector is the redacted input's: the same as embedding the redacted text directly
    again = openai_client(gw, "engineering").embeddings.create(model="text-embedding-3-small",
                                                                input="mail [EMAIL]")
    assert again.data[0].embedding == r.data[0].embedding


def test_messages_plain(gw, audited):
    r = anthropic_client(gw).messages.create(model="claude-sonnet-4-5", max_tokens=200, system="Be brief.",
                                             messages=[{"role": "user", "content": EMAIL}])
    audited.append("claude-sonnet-4-5")
    assert r.content[0].text == "Echo: mail [EMAIL]"
    assert r.stop_reason == "end_turn"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_messages_streaming(gw, audited):
    with anthropic_client(gw).messages.stream(model="claude-sonnet-4-5", max_tokens=200,
                                              messages=[{"role": "user", "content": "call (415) 555-0132"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    audited.append("claude-sonnet-4-5")
    assert text == "Echo: call [PHONE]"
    assert final.usage.output_tokens > 0


def test_messages_tools(gw, audited):
    c = anthropic_client(gw)
    tools = [{"name": "lookup", "description": "finds a customer",
              "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}}]
    question = {"role": "user", "content": "who is jane@example.com?"}
    first = c.messages.create(model="claude-sonnet-4-5", max_tokens=200, tools=tools, messages=[question])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.input == {"text": "who is [EMAIL]?"}
    second = c.messages.create(model="claude-sonnet-4-5", max_tokens=200, tools=tools, messages=[
        question,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Jane, jane@example.com"}]},
    ])
    audited.extend(["claude-sonnet-4-5", "claude-sonnet-4-5"])
    assert second.content[0].text == "Echo: Jane, [EMAIL]"


def test_messages_errors_are_anthropic_errors(gw):
    bad = anthropic.Anthropic(base_url=gw["url"][: -len("/v1")], api_key="kt_wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "authentication_error"
