//! Detector throughput (issue 3): one thread, `Throughput::Bytes`. Targets: ≥ 250 MB/s on
//! PII-free prose, ≥ 100 MB/s on PII-dense text, and linear time on a 10 MB adversarial input.
//! Inputs are built from the evaluation corpus, each concatenated to about 1 MB: its PII-free
//! prose, its PII-free technical text (dense with version strings, hashes, timestamps, order
//! numbers and other hard negatives), and its documents with PII.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector};
use keeptrusts_core::redact::{Redactor, StreamRedactor};

/// The corpus texts that `pick` selects, joined and repeated to `size` bytes.
pub fn corpus_text(pick: impl Fn(&serde_json::Value) -> bool, size: usize) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/detection/corpus.jsonl"
    );
    let data = std::fs::read_to_string(path).unwrap();
    let mut parts = Vec::new();
    for line in data.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if pick(&v) {
            parts.push(v["text"].as_str().unwrap().to_owned());
        }
    }
    let one = parts.join("\n\n");
    let mut out = String::with_capacity(size + one.len());
    while out.len() < size {
        out.push_str(&one);
        out.push_str("\n\n");
    }
    out
}

/// Long digit runs, repeated `@`, nested brackets, colons and dashes: 10 MB.
pub fn adversarial(size: usize) -> String {
    let unit = format!(
        "{}{}{}{}{} ",
        "7".repeat(4096),
        "@".repeat(2048),
        "(".repeat(1024) + &")".repeat(1024),
        "a:b:".repeat(512),
        "-".repeat(512) + "sk-" + &"1-".repeat(256)
    );
    let mut s = String::with_capacity(size + unit.len());
    while s.len() < size {
        s.push_str(&unit);
    }
    s
}

/// The shapes the issue 20 handlers look at, repeated: CJK cue and region characters (叫, 是,
/// 市), cue labels without names, closing lines without names, capitalized e-mail-like runs,
/// street numbers with place words: 10 MB.
pub fn adversarial_i18n(size: usize) -> String {
    let unit = format!(
        "{}{}{}{}{}{}{} ",
        "市".repeat(1024),
        "我叫是".repeat(512),
        "Name: ".repeat(256),
        "Best regards,\n".repeat(128),
        "Anna.".repeat(512),
        "12 Main Street, ".repeat(128),
        "北京市朝阳区".repeat(128)
    );
    let mut s = String::with_capacity(size + unit.len());
    while s.len() < size {
        s.push_str(&unit);
    }
    s
}

/// The shapes the issue 20 value rules look at (round 2), repeated: MAC-like hex pairs, `key: `
/// and `Bearer ` without tokens, vendor-key prefixes without bodies, CJK years and phone cues,
/// mixed-case base64 with `/` and `+`, card-like groups of four, trunk-prefixed digit groups:
/// 10 MB.
pub fn adversarial_values(size: usize) -> String {
    let unit = format!(
        "{}{}{}{}{}{}{}{}{} ",
        "ab:".repeat(512),
        "0a-".repeat(512),
        "key: ".repeat(256),
        "Bearer ".repeat(256),
        "sk_live_".repeat(128),
        "1985年".repeat(256),
        "电话".repeat(256),
        "Ab1+/".repeat(512),
        "4111 ".repeat(256) + &"05 ".repeat(256)
    );
    let mut s = String::with_capacity(size + unit.len());
    while s.len() < size {
        s.push_str(&unit);
    }
    s
}

fn bench(c: &mut Criterion) {
    let detector = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let mut group = c.benchmark_group("detect");
    for (name, text) in [
        (
            "pii_free_prose_1MB",
            corpus_text(|v| v["genre"] == "prose", 1 << 20),
        ),
        (
            "pii_free_technical_1MB",
            corpus_text(|v| v["genre"] == "technical", 1 << 20),
        ),
        (
            "pii_dense_1MB",
            corpus_text(|v| v["kind"] != "pii_free", 1 << 20),
        ),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut v = Vec::new();
                detector.scan(black_box(&text), &mut v);
                resolve_overlaps(&mut v);
                black_box(v.len())
            });
        });
    }
    group.sample_size(10);
    for (name, mb) in [
        ("adversarial", 1usize),
        ("adversarial", 10),
        ("adversarial_i18n", 1),
        ("adversarial_i18n", 10),
        ("adversarial_values", 1),
        ("adversarial_values", 10),
    ] {
        let text = match name {
            "adversarial" => adversarial(mb << 20),
            "adversarial_i18n" => adversarial_i18n(mb << 20),
            _ => adversarial_values(mb << 20),
        };
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new(name, format!("{mb}MB")), &text, |b, t| {
            b.iter(|| {
                let mut v = Vec::new();
                detector.scan(black_box(t), &mut v);
                resolve_overlaps(&mut v);
                black_box(v.len())
            });
        });
    }
    group.finish();
}

/// CJK prose without whitespace (punctuation every few dozen characters), deterministic.
pub fn cjk_prose(size: usize) -> String {
    let hanzi: Vec<char> =
        "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生"
            .chars()
            .collect();
    let mut s = String::with_capacity(size + 4);
    let mut x = 7u64;
    while s.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % 64) as usize;
        s.push(if k == 0 {
            '。'
        } else {
            hanzi[k % hanzi.len()]
        });
    }
    s
}

/// Standard base64 of deterministic bytes, one line.
pub fn base64_blob(size: usize) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = 11u64;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(A[(x % 64) as usize])
        })
        .collect()
}

/// The stream redactor (issue 19): 1 MiB pushed in 16-byte chunks, as an SSE answer arrives;
/// whitespace-free CJK prose and base64 used to be quadratic (576 KB took 13 s).
fn bench_stream(c: &mut Criterion) {
    let detector = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let redactor = Redactor::new(None, Vec::new(), [0; 32]);
    let mut group = c.benchmark_group("stream");
    group.sample_size(10);
    for (name, text) in [
        ("cjk_1MB_16B_chunks", cjk_prose(1 << 20)),
        ("base64_1MB_16B_chunks", base64_blob(1 << 20)),
        (
            "prose_1MB_16B_chunks",
            corpus_text(|v| v["genre"] == "prose", 1 << 20),
        ),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut s = StreamRedactor::new(&detector, &redactor);
                let mut out = 0;
                let mut pos = 0;
                while pos < text.len() {
                    let mut end = (pos + 16).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    out += s.push(black_box(&text[pos..end])).len();
                    pos = end;
                }
                out += s.finish().len();
                black_box(out)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_stream);
criterion_main!(benches);
