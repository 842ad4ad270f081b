//! Detector throughput (issue 3): one thread, `Throughput::Bytes`. Targets: ≥ 250 MB/s on
//! PII-free prose, ≥ 100 MB/s on PII-dense text, and linear time on a 10 MB adversarial input.
//! Inputs are built from the evaluation corpus, each concatenated to about 1 MB: its PII-free
//! prose, its PII-free technical text (dense with version strings, hashes, timestamps, order
//! numbers and other hard negatives), and its documents with PII.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keeptrusts_benches::{adversarial, adversarial_i18n, adversarial_values, corpus_text};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector};
use keeptrusts_core::redact::{Redactor, StreamRedactor};

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
