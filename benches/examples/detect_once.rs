//! One scan of a benchmark input, for instruction counts and profiles that the machine's load
//! does not disturb (`valgrind --tool=callgrind --toggle-collect='*measured*'`), and a dump of
//! every finding for comparing two builds' detection byte for byte.
//!
//! `detect_once prose|technical|dense [reps]`: scans the 1 MiB input of `benches/detect.rs`
//! `reps` times (after one small warm-up scan that builds the word lists).
//! `detect_once dump`: prints every finding, after overlap resolution, for the three 1 MiB
//! inputs, each corpus text alone, and the 1 MiB adversarial inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;

use keeptrusts_benches::{adversarial, adversarial_i18n, adversarial_values, corpus, corpus_text};
use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector, Finding};

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
        "prose" => corpus_text(|v| v["genre"] == "prose", 1 << 20),
        "technical" => corpus_text(|v| v["genre"] == "technical", 1 << 20),
        "dense" => corpus_text(|v| v["kind"] != "pii_free", 1 << 20),
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
        let adversarial = [adversarial, adversarial_i18n, adversarial_values];
        for (k, t) in adversarial.iter().map(|f| f(1 << 20)).enumerate() {
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
