//! One scan of a benchmark input, for instruction counts and profiles that the machine's load
//! does not disturb (`valgrind --tool=callgrind --toggle-collect='*measured*'`), and a dump of
//! every finding for comparing two builds' detection byte for byte.
//!
//! `detect_once prose|technical|dense [reps]`: scans the 1 MiB input of `benches/detect.rs`
//! `reps` times (after one small warm-up scan that builds the word lists).
//! `detect_once dump`: prints every finding, after overlap resolution, for the three 1 MiB
//! inputs, each corpus text alone, and the 1 MiB adversarial inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector, Finding};

fn corpus() -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/detection/corpus.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The corpus texts that `pick` selects, joined and repeated to `size` bytes, as the bench does.
fn corpus_text(c: &[serde_json::Value], pick: impl Fn(&serde_json::Value) -> bool) -> String {
    let size = 1 << 20;
    let parts: Vec<String> = c
        .iter()
        .filter(|v| pick(v))
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    let one = parts.join("\n\n");
    let mut out = String::with_capacity(size + one.len());
    while out.len() < size {
        out.push_str(&one);
        out.push_str("\n\n");
    }
    out
}

fn repeat_to(unit: &str, size: usize) -> String {
    let mut s = String::with_capacity(size + unit.len());
    while s.len() < size {
        s.push_str(unit);
    }
    s
}

fn adversarial() -> Vec<String> {
    vec![
        repeat_to(
            &format!(
                "{}{}{}{}{} ",
                "7".repeat(4096),
                "@".repeat(2048),
                "(".repeat(1024) + &")".repeat(1024),
                "a:b:".repeat(512),
                "-".repeat(512) + "sk-" + &"1-".repeat(256)
            ),
            1 << 20,
        ),
        repeat_to(
            &format!(
                "{}{}{}{}{}{}{} ",
                "市".repeat(1024),
                "我叫是".repeat(512),
                "Name: ".repeat(256),
                "Best regards,\n".repeat(128),
                "Anna.".repeat(512),
                "12 Main Street, ".repeat(128),
                "北京市朝阳区".repeat(128)
            ),
            1 << 20,
        ),
        repeat_to(
            &format!(
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
            ),
            1 << 20,
        ),
    ]
}

#[inline(never)]
fn measured(d: &BuiltinDetector, text: &str) -> usize {
    let mut v = Vec::new();
    d.scan(black_box(text), &mut v);
    resolve_overlaps(&mut v);
    v.len()
}

fn findings(d: &BuiltinDetector, text: &str) -> Vec<Finding> {
    let mut v = Vec::new();
    d.scan(text, &mut v);
    resolve_overlaps(&mut v);
    v
}

fn main() {
    let d = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let c = corpus();
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "dense".into());
    let inputs = |name: &str| match name {
        "prose" => corpus_text(&c, |v| v["genre"] == "prose"),
        "technical" => corpus_text(&c, |v| v["genre"] == "technical"),
        "dense" => corpus_text(&c, |v| v["kind"] != "pii_free"),
        other => panic!("unknown input {other}"),
    };
    if what == "dump" {
        let mut texts: Vec<(String, String)> = ["prose", "technical", "dense"]
            .iter()
            .map(|n| ((*n).to_owned(), inputs(n)))
            .collect();
        for (k, v) in c.iter().enumerate() {
            texts.push((
                format!("corpus {k}"),
                v["text"].as_str().unwrap().to_owned(),
            ));
        }
        for (k, t) in adversarial().into_iter().enumerate() {
            texts.push((format!("adversarial {k}"), t));
        }
        for (name, t) in &texts {
            let f = findings(&d, t);
            println!("== {name}: {} findings", f.len());
            for x in f {
                println!(
                    "{:?} {} {} {} {:?}",
                    x.entity, x.start, x.end, x.confidence, x.custom
                );
            }
        }
        return;
    }
    let reps: usize = args.next().map_or(1, |r| r.parse().unwrap());
    let text = inputs(&what);
    black_box(findings(&d, "warm up: jane@example.com").len());
    let mut n = 0;
    for _ in 0..reps {
        n += measured(&d, &text);
    }
    println!("{what}: {} bytes, {n} findings", text.len());
}
