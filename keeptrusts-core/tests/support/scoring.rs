//! Exact-span scoring of the built-in detector on a JSON-lines corpus, shared by the corpus
//! tests: per-type and micro precision, recall and F1, the character leak (bytes of true values
//! no finding covers) and the share of PII-free documents flagged, both also per type.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};

use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector};
use serde::Deserialize;

/// Reads a corpus file of `conformance/detection/`.
pub fn load(name: &str) -> Vec<Doc> {
    let path = format!(
        "{}/../conformance/detection/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[derive(Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Deserialize)]
pub struct Doc {
    pub id: String,
    pub kind: String,
    /// `tuned` or `heldout` (the development corpus only).
    #[serde(default)]
    pub split: String,
    /// The round of issue 20 that wrote the document (the development corpus only): 1 for
    /// names, addresses and e-mail, 2 for numbers, dates, phones, devices, secrets and cards.
    #[serde(default)]
    pub round: u8,
    pub text: String,
    pub spans: Vec<Span>,
}

#[derive(Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
    /// bytes of true values of this type, and those no finding covers
    bytes: usize,
    leaked: usize,
    /// PII-free documents with a finding of this type
    flagged: usize,
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

#[derive(Debug)]
pub struct Score {
    pub f1: f64,
    pub leak: f64,
    pub flagged: f64,
}

pub fn score(docs: &[&Doc], detector: &BuiltinDetector, name: &str, details: bool) -> Score {
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
            let types: HashSet<&str> = found.iter().map(|f| f.entity.as_str()).collect();
            for t in types {
                per_type.entry(t.to_owned()).or_default().flagged += 1;
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
            let leaked = (s.start..s.end)
                .filter(|&i| !found.iter().any(|f| f.start <= i && i < f.end))
                .count();
            pii_bytes += s.end - s.start;
            leaked_bytes += leaked;
            let c = per_type.entry(s.kind.clone()).or_default();
            c.bytes += s.end - s.start;
            c.leaked += leaked;
        }
    }
    let (p, r, f1) = prf(&micro);
    let leak = leaked_bytes as f64 / pii_bytes.max(1) as f64;
    let flagged = flagged_free as f64 / free.max(1) as f64;
    println!("\n{name}: {} documents, {free} PII-free", docs.len());
    println!("| type | support | precision | recall | F1 | leak | PII-free flagged |");
    println!("|---|---|---|---|---|---|---|");
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "–".to_owned()
        } else {
            format!("{:.1} %", a as f64 * 100.0 / b as f64)
        }
    };
    for (t, c) in &per_type {
        let (p, r, f) = prf(c);
        println!(
            "| {t} | {} | {p:.3} | {r:.3} | {f:.3} | {} | {} |",
            c.tp + c.fn_,
            pct(c.leaked, c.bytes),
            if c.flagged == 0 {
                "–".to_owned()
            } else {
                c.flagged.to_string()
            }
        );
    }
    println!(
        "| **micro** | {} | {p:.3} | {r:.3} | **{f1:.3}** | {} | {flagged_free} of {free} |",
        micro.tp + micro.fn_,
        pct(leaked_bytes, pii_bytes)
    );
    println!(
        "character leak {:.2} %; PII-free flagged {:.2} % ({flagged_free} of {free})",
        leak * 100.0,
        flagged * 100.0
    );
    Score { f1, leak, flagged }
}
