"""Python-specific behaviour: exceptions and codes, threads sharing an engine, non-ASCII text."""

import pathlib
import threading

import pytest

import keeptrusts

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACK = ROOT / "examples" / "packs" / "per-team-targeting.yaml"
SUPPORT = {"user": "agent@yourco.com", "team": "support", "role": "member", "authenticated": True}


def test_exceptions_carry_codes_and_diagnostics():
    with pytest.raises(keeptrusts.PackError) as info:
        keeptrusts.Engine.from_yaml('pack: {name: x, version: "1"}\npolicies: {chain: [rbca]}\n')
    err = info.value
    assert isinstance(err, keeptrusts.KeeptrustsError)
    assert err.code == "E001"
    assert err.errors[0]["path"] == "policies.chain[0]"
    assert err.errors[0]["suggestion"] == "rbac"

    engine = keeptrusts.Engine.from_file(PACK)
    with pytest.raises(keeptrusts.RequestError) as info:
        engine.evaluate(SUPPORT, {"model": "gpt-4o", "messages": []}, keeptrusts.MemoryStore())
    assert info.value.code == "invalid_request"

    with pytest.raises(keeptrusts.InvalidArgument):
        engine.evaluate({"role": "emperor"}, {"messages": []}, keeptrusts.MemoryStore())

    with pytest.raises(keeptrusts.AdminError) as info:
        keeptrusts.MemoryStore().resolve_escalation(SUPPORT, "esc_missing", "approve", 0)
    assert info.value.code == "not_found"


def test_threads_share_one_engine():
    engine = keeptrusts.Engine.from_file(PACK)
    store = keeptrusts.MemoryStore()
    errors = []

    def work(n):
        try:
            for i in range(50):
                d = engine.evaluate(SUPPORT, {"model": "gpt-4o", "messages": [
                    {"role": "user", "content": f"mail user{n}.{i}@example.com"}]}, store,
                    {"request_id": f"t{n}-{i}", "now_ms": i}, budget=False)
                assert d["verdict"] == "redact"
                assert f"user{n}.{i}@example.com" not in str(d["request"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_non_ascii_text_is_redacted_in_place():
    engine = keeptrusts.Engine.from_file(PACK)
    d = engine.evaluate(SUPPORT, {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "日本語 🙂 mail jane@example.com ✓"}]})
    assert d["request"]["messages"][0]["content"] == "日本語 🙂 mail [EMAIL] ✓"


def test_effective_chain_and_lint():
    engine = keeptrusts.Engine.from_file(PACK)
    assert engine.effective_chain({"team": "legal"}) == [
        "pii-detector", "hipaa-phi-detector", "human-oversight", "audit-logger"]
    assert engine.named_teams() == ["engineering", "support", "legal"]
    assert keeptrusts.lint(PACK.read_text())["valid"] is True
