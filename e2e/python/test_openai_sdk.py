"""The official `openai` Python package, unchanged, against `kt gateway run` (issue 8).

A fresh SQLite store is set up with the `kt` CLI, the gateway runs the quick start pack with the
mock provider, and the SDK talks to it. KT_BIN names the `kt` binary (default target/debug/kt).
"""
import json
import urllib.error
import urllib.request

import openai
import pytest
from openai import OpenAI

from conftest import kt


def client(gw, team, **kw):
    return OpenAI(base_url=gw["url"], api_key=gw["keys"][team], **kw)


def ask(c, text, model="gpt-4o-mini", **kw):
    return c.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)


def test_completion_redacts_support_pii(gw):
    r = ask(client(gw, "support"), "Customer SSN 123-45-6789, card 4111 1111 1111 1111, mail jane@example.com")
    assert r.choices[0].message.content == "Echo: Customer SSN [US_SSN], card [CREDIT_CARD], mail [EMAIL]"
    assert r.usage.prompt_tokens > 0


def test_engineering_is_not_redacted(gw):
    r = ask(client(gw, "engineering"), "mail jane@example.com")
    assert "jane@example.com" in r.choices[0].message.content


def test_streaming_with_usage(gw):
    stream = ask(client(gw, "support"), "call me at (415) 555-0132 please", stream=True,
                 stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert text == "Echo: call me at [PHONE] please"
    assert usage and usage.completion_tokens > 0


def test_missing_key_is_401(gw):
    req = urllib.request.Request(gw["url"] + "/chat/completions", method="POST",
                                 data=b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 401
    assert json.loads(e.value.read())["error"]["code"] == "unauthenticated"


def test_wrong_key_is_401(gw):
    with pytest.raises(openai.AuthenticationError) as e:
        ask(OpenAI(base_url=gw["url"], api_key="kt_not_a_key"), "hi")
    assert e.value.status_code == 401
    assert e.value.body["code"] == "unauthenticated"


def test_legal_escalation_approved_with_the_cli(gw):
    c = client(gw, "legal")
    with pytest.raises(openai.APIStatusError) as e:
        ask(c, "Review the contract for Maria Garcia", model="gpt-4o")
    assert e.value.status_code == 409
    assert e.value.body["code"] == "escalation_required"
    esc = e.value.body["escalation_id"]
    kt(gw["store"], "escalation", "approve", esc, "--as", "gc@yourco.com")
    r = ask(c, "Review the contract for Maria Garcia", model="gpt-4o",
            extra_headers={"X-Keeptrusts-Escalation-Id": esc})
    assert "[PERSON]" in r.choices[0].message.content
    with pytest.raises(openai.APIStatusError) as again:
        ask(c, "Review the contract for Maria Garcia", model="gpt-4o",
            extra_headers={"X-Keeptrusts-Escalation-Id": esc})
    assert again.value.status_code == 409


def test_exhausted_wallet_gives_a_ticket_that_lets_one_retry_through(gw):
    c = client(gw, "engineering", max_retries=0)
    prompt = "a longer prompt that costs a little more each time"
    ticket = None
    for _ in range(1000):
        try:
            ask(c, prompt)
        except openai.APIStatusError as e:
            assert e.status_code == 402
            assert e.body["code"] == "budget_exceeded"
            ticket = e.body["ticket_id"]
            break
    assert ticket, "the wallet ran dry"
    # empty the wallet for good, so only the approval can let a request through
    kt(gw["store"], "wallet", "allocate", "--team", "engineering", "--amount", "0")
    kt(gw["store"], "ticket", "approve", ticket, "--charge-to", "team:engineering")
    r = ask(c, prompt, extra_headers={"X-Keeptrusts-Ticket-Id": ticket})
    assert r.choices[0].message.content.startswith("Echo:")
    with pytest.raises(openai.APIStatusError):
        ask(c, prompt, extra_headers={"X-Keeptrusts-Ticket-Id": ticket})


def test_member_reading_another_teams_dashboard_is_403(gw):
    req = urllib.request.Request(gw["url"] + "/dashboard/overview?team=legal",
                                 headers={"Authorization": "Bearer " + gw["keys"]["support"]})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    assert json.loads(e.value.read())["error"]["code"] == "forbidden"
