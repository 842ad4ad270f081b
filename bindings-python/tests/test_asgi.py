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
    assert report == {"valid": True, "events": 1}


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
