"""Runs the shared conformance vectors (conformance/vectors/*.json) through the Python API."""

import json
import pathlib

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


def substitute(value, ids):
    if value == "$first":
        return ids[0] if ids else "none"
    if value == "$last":
        return ids[-1] if ids else "none"
    return value


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
    store = keeptrusts.MemoryEscalations()
    ids = []
    for i, step in enumerate(case["steps"]):
        op = step["op"]
        if op in ("evaluate", "evaluate_output"):
            context = dict(step.get("context") or {})
            if "escalation_id" in context:
                context["escalation_id"] = substitute(context["escalation_id"], ids)
            context.setdefault("request_id", f"{case['name']}#{i}")
            expect = dict(step["expect"])
            if "escalation_id" in expect:
                expect["escalation_id"] = substitute(expect["escalation_id"], ids)
            if op == "evaluate":
                decision = engine.evaluate(step["principal"], step["request"], store, context)
                forwarded = decision.get("request") or step["request"]
            else:
                decision = engine.evaluate_output(step["principal"], step["response"], context)
                forwarded = decision.get("response") or step["response"]
            mismatches = check(decision, expect, forwarded)
            if decision.get("escalation_id") and decision["escalation_id"] not in ids:
                ids.append(decision["escalation_id"])
            assert not mismatches, f"step {i}: " + "; ".join(mismatches)
        elif op == "resolve_escalation":
            reviewer = step["reviewer"]
            escalation_id = substitute(step["escalation"], ids)
            want = step["expect"]["error"]
            try:
                store.resolve(reviewer, escalation_id, step["resolution"], step.get("now_ms", 0))
                got = None
            except keeptrusts.AdminError as err:
                got = err.code
            assert got == want, f"step {i}: resolve expected error {want}, got {got}"
        else:
            pytest.fail(f"unknown op {op}")


def test_there_are_enough_vectors():
    assert len(CASES) >= 40
