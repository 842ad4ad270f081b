//! Scores the built-in detector on the hand-written development corpus of issue 20
//! (`conformance/detection/dev.jsonl`, built by `scripts/build-dev-corpus.py`), the tuned split
//! and the held-out split apart. The held-out split is never tuned on; it is held to issue 20's
//! targets (exact micro F1 ≥ 0.90, character leak ≤ 5 %, PII-free documents flagged ≤ 3 %), so a
//! change that loses ground there fails.
//!
//! `KT_DETECTION_REPORT=1 cargo test -p keeptrusts-core --test detection_dev -- --nocapture`
//! prints both tables and, for the tuned split only, every miss and false positive
//! (`KT_DETECTION_HELDOUT=1` prints the held-out split's too: read them to report what is missed,
//! not to tune on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};

use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector};
use serde::Deserialize;

#[derive(Deserialize)]
struct Span {
    start: usize,
    end: usize,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Doc {
    id: String,
    kind: String,
    split: String,
    text: String,
    spans: Vec<Span>,
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

fn prf(c: &Counts) -> (f64, f64, f64) {
    let p = if c.tp + c.fp == 0 {
        1.0
    } else {
        c.tp as f64 / (c.tp + c.fp) as f64
    };
    let r = if c.tp + c.fn_ == 0 {
        1.0
    } else {
        c.tp as f64 / (c.tp + c.fn_) as f64
    };
    let f = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    (p, r, f)
}

struct Score {
    f1: f64,
    leak: f64,
    flagged: f64,
}

fn score(docs: &[&Doc], detector: &BuiltinDetector, name: &str, details: bool) -> Score {
    let mut per_type: BTreeMap<String, Counts> = BTreeMap::new();
    let mut micro = Counts::default();
    let (mut pii_bytes, mut leaked_bytes) = (0usize, 0usize);
    let (mut free, mut flagged_free) = (0usize, 0usize);
    for doc in docs {
        let mut found = Vec::new();
        detector.scan(&doc.text, &mut found);
        resolve_overlaps(&mut found);
        let got: HashSet<(usize, usize, &str)> = found
            .iter()
            .map(|f| (f.start, f.end, f.entity.as_str()))
            .collect();
        let want: HashSet<(usize, usize, &str)> = doc
            .spans
            .iter()
            .map(|s| (s.start, s.end, s.kind.as_str()))
            .collect();
        if doc.kind == "pii_free" {
            free += 1;
            if !found.is_empty() {
                flagged_free += 1;
            }
        }
        for w in &want {
            let c = per_type.entry(w.2.to_owned()).or_default();
            if got.contains(w) {
                c.tp += 1;
                micro.tp += 1;
            } else {
                c.fn_ += 1;
                micro.fn_ += 1;
                if details {
                    println!("MISS {} {} {:?}", doc.id, w.2, &doc.text[w.0..w.1]);
                }
            }
        }
        for g in &got {
            if !want.contains(g) {
                per_type.entry(g.2.to_owned()).or_default().fp += 1;
                micro.fp += 1;
                if details {
                    println!("FP   {} {} {:?}", doc.id, g.2, &doc.text[g.0..g.1]);
                }
            }
        }
        for s in &doc.spans {
            pii_bytes += s.end - s.start;
            leaked_bytes += (s.start..s.end)
                .filter(|&i| !found.iter().any(|f| f.start <= i && i < f.end))
                .count();
        }
    }
    let (p, r, f1) = prf(&micro);
    let leak = leaked_bytes as f64 / pii_bytes.max(1) as f64;
    let flagged = flagged_free as f64 / free.max(1) as f64;
    println!("\n{name}: {} documents, {free} PII-free", docs.len());
    println!("| type | support | precision | recall | F1 |");
    println!("|---|---|---|---|---|");
    for (t, c) in &per_type {
        let (p, r, f) = prf(c);
        println!("| {t} | {} | {p:.3} | {r:.3} | {f:.3} |", c.tp + c.fn_);
    }
    println!(
        "| **micro** | {} | {p:.3} | {r:.3} | **{f1:.3}** |",
        micro.tp + micro.fn_
    );
    println!(
        "character leak {:.2} %; PII-free flagged {:.2} % ({flagged_free} of {free})",
        leak * 100.0,
        flagged * 100.0
    );
    Score { f1, leak, flagged }
}

#[test]
fn dev_corpus_scores() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/detection/dev.jsonl"
    );
    let data = std::fs::read_to_string(path).unwrap();
    let docs: Vec<Doc> = data
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let detector = BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap();
    let report = std::env::var("KT_DETECTION_REPORT").is_ok();
    let tuned: Vec<&Doc> = docs.iter().filter(|d| d.split == "tuned").collect();
    let heldout: Vec<&Doc> = docs.iter().filter(|d| d.split == "heldout").collect();
    assert!(tuned.len() >= 40 && heldout.len() >= 40);
    let t = score(&tuned, &detector, "tuned", report);
    let h = score(
        &heldout,
        &detector,
        "held-out",
        std::env::var("KT_DETECTION_HELDOUT").is_ok(),
    );
    // issue 20's targets on the held-out split; the tuned split must stay near where it was
    assert!(h.f1 >= 0.90, "held-out micro F1 {:.3} < 0.90", h.f1);
    assert!(
        h.leak <= 0.05,
        "held-out leak {:.2} % > 5 %",
        h.leak * 100.0
    );
    assert!(
        h.flagged <= 0.03,
        "held-out flagged {:.2} % > 3 %",
        h.flagged * 100.0
    );
    assert!(t.f1 >= 0.95, "tuned micro F1 {:.3} < 0.95", t.f1);
    assert!(t.leak <= 0.02 && t.flagged <= 0.03);
}
