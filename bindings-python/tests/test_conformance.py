"""Runs the shared conformance vectors (conformance/vectors/*.json) through the Python API."""

import json
import pathlib
from decimal import Decimal

import pytest

import keeptrusts

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = [
    (path.name, case)
    for path in sorted((ROOT / "conformance" / "vectors").glob("*.json"))
    for case in json.loads(path.read_text())["cases"]
]


def pack_source(case):
    if "pack_yaml" in case:
        return case["pack_yaml"]
    return (ROOT / "examples" / "packs" / f"{case['pack']}.yaml").read_text()


def substitute(value, ids, tickets, keys=None):
    if value == "$first":
        return ids[0] if ids else "none"
    if value == "$last":
        return ids[-1] if ids else "none"
    if value == "$ticket":
        return tickets[-1] if tickets else "none"
    if isinstance(value, str) and value.startswith("$key:"):
        return (keys or {}).get(value[len("$key:"):], (None, "none"))[1]
    return value


def key_secret(store, keys, name):
    """The secret of the key `team/email` (issued by the host on first use)."""
    if name in keys:
        return keys[name][0]
    team, slash, email = name.partition("/")
    assert slash, "a key is named `team/email`"
    try:
        issued = store.admin(None, {"op": "create_key", "team": team, "email": email}, 0, "key")
    except keeptrusts.KeeptrustsError as err:
        raise AssertionError(f"key {name}: {err}") from err
    keys[name] = (issued["key"], issued["id"])
    return issued["key"]


def admin_actor(store, keys, actor, now):
    """An `admin` step's actor: None (the host), `{"key": "team/email"}` (what that key
    authenticates as now), or a principal."""
    if actor is None:
        return None
    if "key" in actor:
        status = store.authenticate_status(key_secret(store, keys, actor["key"]), "default", now)
        assert "principal" in status, f"the key {actor['key']} does not authenticate: {status['refused']}"
        return status["principal"]
    return actor


def admin_step(store, keys, ids, tickets, step, i):
    """An `admin` step: one command; returns a list of mismatches."""
    now = step.get("now_ms", 0)
    actor = admin_actor(store, keys, step.get("actor"), now)
    command = dict(step["command"])
    if isinstance(command.get("id"), str) and command["id"].startswith("$key:"):
        key_secret(store, keys, command["id"][len("$key:"):])
    for field in ("id", "team"):
        if field in command:
            command[field] = substitute(command[field], ids, tickets, keys)
    result, code = error_code(lambda: store.admin(actor, command, now, f"admin#{i}"))
    # a key the step made is known by its name from then on
    if isinstance(result, dict) and isinstance(result.get("key"), str) and "as" in step:
        keys[step["as"]] = (result["key"], result["id"])
    want = step["expect"].get("error")
    return [] if code == want else [f"{command['op']}: expected error {want}, got {code}"]


def authenticate_step(store, keys, step):
    """An `authenticate` step: what the key `team/email` is refused as now (None: accepted)."""
    status = store.authenticate_status(key_secret(store, keys, step["key"]), "default", step.get("now_ms", 0))
    got, want = status.get("refused"), step["expect"].get("refused")
    return [] if got == want else [f"authenticate: expected refusal {want}, got {got}"]


def exchange_report(engine, store, step, budget):
    """One request through the lifecycle, the host being the provider; the report every front
    door builds the same way (see keeptrusts-core/tests/conformance.rs)."""
    x = engine.begin(step["principal"], step["request"], store, step["context"], budget)
    provider = step["provider"]
    report = {"forwarded": None, "text": None, "usage_chunk": None}

    def finish(result, status):
        body = result.get("body") if result else None
        close = result["close"] if result and "close" in result else result
        cost = (close or {}).get("draft", {}).get("cost") or {}
        report.update(status=status, code=((body or {}).get("error") or {}).get("code"), body=body,
                      settled=close.get("actual") if close else None,
                      overrun=bool(cost.get("overrun")), unmetered=bool(cost.get("unmetered")),
                      event_status=close["draft"]["status"] if close else None)
        return report

    if x.refusal is not None:
        return finish(x.refusal, x.refusal["status"])
    report["forwarded"] = x.next_call()
    if "fail" in provider:
        x.failed()
        assert x.next_call() is None
        result = x.exhausted(provider["fail"])
        return finish(result, result["status"])
    if provider.get("client_gone"):
        return finish(x.abandon(), 499)
    if "stream" in provider:
        out = []
        for chunk in provider["stream"]:
            out.extend(x.push_chunk(chunk))
        end = x.finish_stream()
        out.extend(end["chunks"])
        report["text"] = "".join(c["choices"][0]["delta"].get("content", "") for c in out
                                 if c.get("choices") and "content" in c["choices"][0]["delta"])
        report["usage_chunk"] = next((c["usage"] for c in out if "usage" in c), None)
        error = next((c for c in out if "error" in c), None)
        status = end["close"]["draft"]["status"] if error else 200
        report.update(status=status, code=error["error"]["code"] if error else None, body=error,
                      settled=end["close"].get("actual"),
                      overrun=bool((end["close"]["draft"].get("cost") or {}).get("overrun")),
                      unmetered=bool((end["close"]["draft"].get("cost") or {}).get("unmetered")),
                      event_status=end["close"]["draft"]["status"])
        return report
    result = x.answer(provider["answer"])
    return finish(result, result["status"])


def report_mismatches(report, expect):
    out = []
    for key, want in expect.items():
        got = report.get(key)
        if key == "forwarded":
            ok = all(got.get(f) == v for f, v in want.items())
        elif key == "settled":
            ok = (None if got is None else Decimal(got)) == (None if want is None else Decimal(want))
        elif key == "body_excludes":
            ok = want not in json.dumps(report.get("body"))
        elif key == "called":
            ok = (report["forwarded"] is not None) == want
        else:
            ok = got == want
        if not ok:
            out.append(f"{key}: expected {want!r}, got {got!r}")
    return out


def error_code(call):
    try:
        return call(), None
    except keeptrusts.KeeptrustsError as err:
        return None, err.code


def store_step(store, step, last, ids, tickets):
    """Runs a wallet, ticket, event or dashboard step; returns a list of mismatches."""
    expect = step["expect"]
    now = step.get("now_ms", 0)
    op = step["op"]
    if op == "balance":
        w = store.wallet(step["wallet"], now)
        got = [Decimal(w[f]) for f in ("allocated", "spent", "reserved")] + [
            Decimal(w["allocated"]) - Decimal(w["spent"]) - Decimal(w["reserved"])]
        want = [Decimal(expect[f]) for f in ("allocated", "spent", "reserved", "available")]
        return [] if got == want else [f"{step['wallet']}: expected {want}, got {got}"]
    if op == "verify":
        report = store.verify(step["org"])
        got = (report["valid"], report["events"])
        want = (expect["valid"], expect["events"])
        return [] if got == want else [f"verify: expected {want}, got {got}"]
    if op == "allocate":
        result, code = error_code(lambda: store.allocate(step["actor"], step["allocation"], now))
    elif op == "complete":
        principal, decision, rid, model = last
        served = step["served"]
        if served is None:
            result, code = error_code(lambda: store.complete(principal, decision, rid, model, now_ms=now))
        else:
            result, code = error_code(lambda: store.complete(
                principal, decision, rid, model, served["target"], served["usage"], now))
    elif op == "resolve_ticket":
        ticket = substitute(step["ticket"], ids, tickets)
        result, code = error_code(lambda: store.resolve_ticket(
            step["reviewer"], ticket, step["resolution"], step.get("charge_to"), now))
    elif op == "dashboard":
        result, code = error_code(lambda: store.dashboard(step["viewer"], step["section"], step["team"]))
    else:
        return [f"unknown op {op}"]
    out = [] if code == expect["error"] else [f"{op}: expected error {expect['error']}, got {code}"]
    if op == "complete" and code is None:
        settlement = result.get("settlement")
        if "charged" in expect:
            charged = Decimal(settlement["charged"]) if settlement else None
            want = Decimal(expect["charged"]) if expect["charged"] is not None else None
            if charged != want:
                out.append(f"charged {charged}, expected {want}")
        if "replay" in expect and (settlement or {}).get("replay") != expect["replay"]:
            out.append(f"replay: expected {expect['replay']}")
        if "event" in expect and ("event" in result) != expect["event"]:
            out.append(f"event written: expected {expect['event']}")
    return out


def check(decision, expect, forwarded):
    out = []
    simple = {"verdict": "verdict", "status": "status", "reason": "reason", "chain": "chain",
              "audit": "audit", "escalation_id": "escalation_id"}
    for key, field in simple.items():
        if key in expect and decision.get(field) != expect[key]:
            out.append(f"{key}: expected {expect[key]!r}, got {decision.get(field)!r}")
    error = decision.get("error") or {}
    if "code" in expect and error.get("code", "none") != expect["code"]:
        out.append(f"code: expected {expect['code']}, got {error.get('code', 'none')}")
    if "policy" in expect and error.get("policy") != expect["policy"]:
        out.append(f"policy: expected {expect['policy']}, got {error.get('policy')}")
    if "entities" in expect:
        got = {}
        for result in decision["results"]:
            for entity, n in result.get("entities", {}).items():
                got[entity] = got.get(entity, 0) + n
        if got != expect["entities"]:
            out.append(f"entities: expected {expect['entities']}, got {got}")
    text = json.dumps(forwarded, ensure_ascii=False)
    for s in expect.get("forwarded_contains", []):
        if s not in text:
            out.append(f"forwarded lacks {s!r}")
    for s in expect.get("forwarded_excludes", []):
        if s in text:
            out.append(f"forwarded still holds {s!r}")
    return out


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[f"{f}:{c['name']}" for f, c in CASES])
def test_vector(case):
    if "expect_envelopes" in case:
        for row in case["expect_envelopes"]:
            got = keeptrusts.error_envelope(row["status"], row["code"], "m", row["request_id"])
            assert got == {"error": {"type": row["type"], "code": row["code"], "message": "m",
                                     "request_id": row["request_id"]}}, row
        return
    source = pack_source(case)
    if "expect_pack_error" in case:
        with pytest.raises(keeptrusts.PackError) as info:
            keeptrusts.Engine.from_yaml(source)
        first = info.value.errors[0]
        want = case["expect_pack_error"]
        assert info.value.code == want["code"]
        assert (first["code"], first["path"], first["line"], first["column"]) == (
            want["code"], want["path"], want["line"], want["column"])
        report = keeptrusts.lint(source)
        assert report["valid"] is False and report["errors"][0]["code"] == want["code"]
        return
    if "expect_warnings" in case:
        report = keeptrusts.lint(source)
        assert report["valid"] is True
        assert sorted(w["code"] for w in report["warnings"]) == case["expect_warnings"]
        return
    engine = keeptrusts.Engine.from_yaml(source)
    store = keeptrusts.MemoryStore()
    budget = case.get("budget", False)
    ids, tickets, last = [], [], None
    keys = {}  # `team/email` or an `as` name -> (secret, key id)
    for i, step in enumerate(case["steps"]):
        op = step["op"]
        if op in ("evaluate", "evaluate_output"):
            context = dict(step.get("context") or {})
            for field in ("escalation_id", "ticket_id"):
                if field in context:
                    context[field] = substitute(context[field], ids, tickets)
            context.setdefault("request_id", f"{case['name']}#{i}")
            context.setdefault("now_ms", 0)
            expect = dict(step["expect"])
            if "escalation_id" in expect:
                expect["escalation_id"] = substitute(expect["escalation_id"], ids, tickets)
            if op == "evaluate":
                decision = engine.evaluate(step["principal"], step["request"], store, context, budget)
                forwarded = decision.get("request") or step["request"]
                last = (step["principal"], decision, context["request_id"], step["request"].get("model"))
            else:
                decision = engine.evaluate_output(step["principal"], step["response"], context)
                forwarded = decision.get("response") or step["response"]
            mismatches = check(decision, expect, forwarded)
            if decision.get("escalation_id") and decision["escalation_id"] not in ids:
                ids.append(decision["escalation_id"])
            if decision.get("ticket_id"):
                tickets.append(decision["ticket_id"])
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)
        elif op == "exchange":
            mismatches = report_mismatches(exchange_report(engine, store, step, budget), step["expect"])
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)
        elif op == "admin":
            mismatches = admin_step(store, keys, ids, tickets, step, i)
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)
        elif op == "authenticate":
            mismatches = authenticate_step(store, keys, step)
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)
        elif op == "resolve_escalation":
            escalation_id = substitute(step["escalation"], ids, tickets)
            _, got = error_code(lambda: store.resolve_escalation(
                step["reviewer"], escalation_id, step["resolution"], step.get("now_ms", 0)))
            want = step["expect"]["error"]
            assert got == want, f"step {i}: resolve expected error {want}, got {got}"
        else:
            mismatches = store_step(store, step, last, ids, tickets)
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)


def test_there_are_enough_vectors():
    assert len(CASES) >= 40
