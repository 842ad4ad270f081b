"""Scanning 1 MB from Python, against the Rust criterion figure (benches/benches/detect.rs).

Builds the same inputs as the criterion bench (the detection corpus's PII-free prose and its
documents with PII, joined and repeated to 1 MiB) and reports MiB/s of `keeptrusts.scan`, which
includes everything a Python caller pays: taking the str, the scan, the conversion of offsets to
character indices and building the span dicts. Run it against a release build:

    pip install ./bindings-python && python bindings-python/bench/scan_bench.py
"""
import json
import pathlib
import time

import keeptrusts

ROOT = pathlib.Path(__file__).resolve().parents[2]


def corpus_text(pick, size=1 << 20):
    parts = []
    for line in (ROOT / "conformance" / "detection" / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        if pick(doc):
            parts.append(doc["text"])
    one = "\n\n".join(parts)
    out, n = [], 0
    while n < size:
        out.append(one + "\n\n")
        n += len(one.encode()) + 2
    return "".join(out)


def measure(text, seconds=3.0):
    size = len(text.encode())
    keeptrusts.scan(text)  # warm up
    runs, start = 0, time.perf_counter()
    best = float("inf")
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        keeptrusts.scan(text)
        best = min(best, time.perf_counter() - t)
        runs += 1
    total = time.perf_counter() - start
    return size / (total / runs) / (1 << 20), size / best / (1 << 20), runs


if __name__ == "__main__":
    for name, pick in (("pii_free_prose_1MB", lambda d: d.get("genre") == "prose"),
                       ("pii_free_technical_1MB", lambda d: d.get("genre") == "technical"),
                       ("pii_dense_1MB", lambda d: d["kind"] != "pii_free")):
        text = corpus_text(pick)
        mean, best, runs = measure(text)
        print(f"{name}: {mean:.1f} MiB/s mean, {best:.1f} MiB/s best ({runs} runs, {len(keeptrusts.scan(text))} spans)")
