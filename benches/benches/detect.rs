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
    ] {
        let text = if name == "adversarial" {
            adversarial(mb << 20)
        } else {
            adversarial_i18n(mb << 20)
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

criterion_group!(benches, bench);
criterion_main!(benches);
