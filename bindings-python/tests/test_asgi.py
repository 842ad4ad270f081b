"""The ASGI middleware with Starlette's test client, over the example app."""
import os
import pathlib
import sys

import pytest

os.environ.setdefault("KEEPTRUSTS_STORE", "memory")
pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import keeptrusts  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
from asgi_app import create_app  # noqa: E402

HOST = None  # the host itself (no actor): allowed to set up teams
OWNER = {"user": "root@yourco.com", "team": "platform", "role": "owner", "authenticated": True}


@pytest.fixture()
def setup():
    store = keeptrusts.MemoryStore()
    keys = {}
    for team, user in (("support", "ana@yourco.com"), ("engineering", "eng@yourco.com"), ("legal", "lee@yourco.com")):
        store.create_team(HOST, team)
        store.add_member(HOST, team, user, "member")
        keys[team] = store.create_key(HOST, team, user)["secret"]
        store.allocate(OWNER, {"team": team, "amount": "1.00"})
    client = TestClient(create_app(store))
    return store, client, keys


def ask(client, key, text, **headers):
    h = {"authorization": f"Bearer {key}"} if key else {}
    h.update(headers)
    return client.post("/v1/chat/completions", headers=h,
                       json={"model": "gpt-4o-mini", "max_tokens": 50, "messages": [{"role": "user", "content": text}]})


def test_support_prompt_is_redacted_before_the_app_sees_it(setup):
    store, client, keys = setup
    r = ask(client, keys["support"], "my SSN is 123-45-6789, mail ana@example.com")
    assert r.status_code == 200
    assert r.headers["x-keeptrusts-verdict"] == "redact"
    answer = r.json()["choices"][0]["message"]["content"]
    assert "123-45-6789" not in answer and "ana@example.com" not in answer
    assert "[US_SSN]" in answer


def test_engineering_prompt_goes_through_and_is_charged(setup):
    store, client, keys = setup
    r = ask(client, keys["engineering"], "explain this stack trace")
    assert r.status_code == 200 and r.headers["x-keeptrusts-verdict"] == "allow"
    w = store.wallet("team:engineering")
    # gpt-4o-mini list price: 12 prompt + 8 completion tokens
    assert float(w["spent"]) == pytest.approx((12 * 0.15 + 8 * 0.60) / 1e6)
    assert float(w["reserved"]) == 0
    report = store.verify()
    # the setup's 12 administrative events (3 teams, members, keys and wallets), then the request's
    assert (report["valid"], report["events"]) == (True, 12 + 1)


def test_denials_never_reach_the_app(setup):
    store, client, keys = setup
    r = ask(client, None, "hello")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = ask(client, "kt_" + "0" * 64, "hello")
    assert r.status_code == 401
    r = ask(client, keys["legal"], "review this contract")
    assert r.status_code == 409 and r.json()["error"]["code"] == "escalation_required"
    assert r.headers["x-should-retry"] == "false"
    escalation = r.json()["error"]["escalation_id"]
    store.resolve_escalation(OWNER, escalation, "approve")
    r = ask(client, keys["legal"], "review this contract", **{"x-keeptrusts-escalation-id": escalation})
    assert r.status_code == 200


def test_exhausted_wallet_answers_402_with_a_ticket(setup):
    store, client, keys = setup
    store.allocate(OWNER, {"team": "support", "amount": "0"})
    r = ask(client, keys["support"], "hello")
    assert r.status_code == 402
    ticket = r.json()["error"]["ticket_id"]
    store.resolve_ticket(OWNER, ticket, "approve")
    r = ask(client, keys["support"], "hello", **{"x-keeptrusts-ticket-id": ticket})
    assert r.status_code == 200
    assert float(store.wallet("team:support")["spent"]) > 0


def test_bad_bodies_are_400(setup):
    _, client, keys = setup
    r = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {keys['support']}"},
                    content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {keys['support']}"},
                    json={"model": "gpt-4o-mini", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    for body in (b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b"[1, 2]"):
        r = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {keys['support']}"},
                        content=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def test_other_paths_pass_through(setup):
    _, client, _ = setup
    assert client.get("/v1/chat/completions").status_code == 405
    assert client.post("/elsewhere").status_code == 404


LIFECYCLE_PACK = (pathlib.Path(__file__).parents[2] / "conformance" / "packs" / "lifecycle.yaml").read_text()


def request_event(store):
    """The one request's event (the setup's administrative events left aside)."""
    (event,) = [e for e in store.events("default") if "admin" not in e]
    return event


def lifecycle_client(app):
    from keeptrusts.asgi import KeeptrustsMiddleware
    store = keeptrusts.MemoryStore()
    store.create_team(HOST, "support")
    store.add_member(HOST, "support", "ana@yourco.com", "member")
    key = store.create_key(HOST, "support", "ana@yourco.com")["secret"]
    store.allocate(OWNER, {"team": "support", "amount": "10000"})
    wrapped = KeeptrustsMiddleware(app, engine=keeptrusts.Engine.from_yaml(LIFECYCLE_PACK), store=store, budget=True)
    return store, TestClient(wrapped), {"authorization": f"Bearer {key}"}


async def _read(receive):
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            return body


def test_the_app_gets_the_reserved_limit_and_an_answer_without_usage_is_charged_its_bound():
    import json
    seen = []

    async def app(scope, receive, send):
        seen.append(json.loads(await _read(receive)))
        body = json.dumps({"id": "a", "object": "chat.completion",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                        "finish_reason": "stop"}]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    store, client, auth = lifecycle_client(app)
    r = client.post("/v1/chat/completions", headers=auth,
                    json={"model": "house-model", "messages": [{"role": "user", "content": "hello"}]})
    assert r.status_code == 200, r.text
    assert seen[0]["max_tokens"] == 64  # injected: the app cannot be billed past the reservation
    event = request_event(store)
    assert event["cost"]["settled"] == event["cost"]["estimated"]  # no usage: the whole bound
    assert event["cost"]["unmetered"] is True
    assert float(store.wallet("team:support")["reserved"]) == 0


def test_a_streamed_answer_is_redacted_across_chunks_and_settled_on_its_usage_chunk():
    import json

    async def app(scope, receive, send):
        await _read(receive)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        pieces = [{"choices": [{"index": 0, "delta": {"content": "write to ana@exa"}}]},
                  {"choices": [{"index": 0, "delta": {"content": "mple.com today"}}]},
                  {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6}}]
        for p in pieces:
            await send({"type": "http.response.body", "body": f"data: {json.dumps(dict(p, id='s'))}\n\n".encode(),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    store, client, auth = lifecycle_client(app)
    r = client.post("/v1/chat/completions", headers=auth,
                    json={"model": "house-model", "stream": True, "stream_options": {"include_usage": True},
                          "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e.get("choices"))
    assert text == "write to [EMAIL] today"
    assert r.text.rstrip().endswith("data: [DONE]")
    usage = [e["usage"] for e in events if "usage" in e]
    assert usage == [{"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}]
    event = request_event(store)
    assert float(event["cost"]["settled"]) == 11
    assert float(store.wallet("team:support")["spent"]) == 11


def test_an_answers_refusal_is_redacted_and_its_dropped_logprobs_are_said():
    import json

    async def app(scope, receive, send):
        await _read(receive)
        body = json.dumps({"id": "a", "object": "chat.completion",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": None,
                                                    "refusal": "I cannot mail ana@example.com"},
                                        "logprobs": {"content": [{"token": "ana@example.com", "logprob": -0.1}]}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    store, client, auth = lifecycle_client(app)
    r = client.post("/v1/chat/completions", headers=auth,
                    json={"model": "house-model", "logprobs": True, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert "ana@example.com" not in r.text
    choice = r.json()["choices"][0]
    assert choice["message"]["refusal"] == "I cannot mail [EMAIL]"
    assert choice["logprobs"] is None
    assert r.headers["x-keeptrusts-logprobs-dropped"] == "true"
