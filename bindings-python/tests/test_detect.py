"""Detection and redaction from Python: character offsets, formats, errors."""
import threading

import pytest

import keeptrusts


def test_scan_uses_python_character_offsets():
    text = "Café ☕ — mail ana.lopez@example.org or call (415) 555-0132"
    spans = keeptrusts.scan(text)
    assert [s["type"] for s in spans] == ["EMAIL", "PHONE"]
    assert [text[s["start"]:s["end"]] for s in spans] == ["ana.lopez@example.org", "(415) 555-0132"]


def test_scan_with_emoji_and_cjk():
    text = "😀😀 客户邮箱 li.wei@example.cn"
    (span,) = keeptrusts.scan(text)
    assert text[span["start"]:span["end"]] == "li.wei@example.cn"


def test_entities_limit_the_types():
    text = "SSN 123-45-6789, mail a@b.co"
    assert [s["type"] for s in keeptrusts.scan(text, entities=["EMAIL"])] == ["EMAIL"]


def test_unknown_entity_is_invalid_argument():
    with pytest.raises(keeptrusts.InvalidArgument) as e:
        keeptrusts.scan("x", entities=["SOCIAL"])
    assert e.value.code == "invalid_argument"


def test_redact_formats():
    text = "SSN 123-45-6789, mail a@b.co"
    assert keeptrusts.redact(text) == "SSN [US_SSN], mail [EMAIL]"
    assert keeptrusts.redact(text, format="mask") == "SSN ***********, mail ******"
    h1 = keeptrusts.redact(text, format="hash", hash_key="k")
    assert h1 == keeptrusts.redact(text, format="hash", hash_key="k")
    assert h1 != keeptrusts.redact(text, format="hash", hash_key="other")
    with pytest.raises(keeptrusts.InvalidArgument):
        keeptrusts.redact(text, format="sparkle")


def test_scanning_from_threads():
    text = "mail a@b.co " * 2000
    out = []
    threads = [threading.Thread(target=lambda: out.append(len(keeptrusts.scan(text)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [2000] * 4


def test_spans_read_like_dicts():
    (span,) = keeptrusts.scan("mail a@b.co")
    assert (span.start, span.end, span.type) == (5, 11, "EMAIL")
    assert span == {"start": 5, "end": 11, "type": "EMAIL"}
    assert dict(span) == {"start": 5, "end": 11, "type": "EMAIL"}
    assert repr(span) == "{'start': 5, 'end': 11, 'type': 'EMAIL'}"
    with pytest.raises(KeyError):
        span["colour"]
