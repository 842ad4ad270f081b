//! Properties of detection and redaction (issue 3): spans lie inside the text on char
//! boundaries; redaction is idempotent; no detected value survives redaction; streaming
//! redaction equals whole-text redaction for any chunking. Inputs: documents of the evaluation
//! corpus and the development corpus, joined in random groups, with random Unicode noise spliced in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector, EntityType, Finding};
use keeptrusts_core::pack::spec::{MarkerFormat, RedactionOptions};
use keeptrusts_core::redact::{Redactor, StreamRedactor};
use proptest::prelude::*;
use std::sync::OnceLock;

fn corpus() -> &'static Vec<String> {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| {
        // the generated corpus and the hand-written development corpus (issue 20)
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/detection/");
        ["corpus.jsonl", "dev.jsonl"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(format!("{dir}{f}"))
                    .unwrap()
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        v["text"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

fn detector() -> &'static BuiltinDetector {
    static D: OnceLock<BuiltinDetector> = OnceLock::new();
    D.get_or_init(|| BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).unwrap())
}

fn findings(text: &str) -> Vec<Finding> {
    let mut v = Vec::new();
    detector().scan(text, &mut v);
    resolve_overlaps(&mut v);
    v
}

fn redactor(format: MarkerFormat) -> Redactor {
    let o = RedactionOptions {
        marker_format: Some(format),
        ..Default::default()
    };
    Redactor::new(Some(&o), Vec::new(), [9; 32])
}

/// A text: some corpus documents joined, with noise spliced in between them.
fn text() -> impl Strategy<Value = String> {
    let n = corpus().len();
    (
        proptest::collection::vec(0..n, 1..8),
        proptest::collection::vec("\\PC{0,24}", 1..8),
    )
        .prop_map(|(docs, noise)| {
            let mut s = String::new();
            for (i, d) in docs.iter().enumerate() {
                s.push_str(&corpus()[*d]);
                s.push_str(noise.get(i).map_or(" ", String::as_str));
                s.push('\n');
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn spans_are_inside_the_text_on_char_boundaries(t in text()) {
        let mut raw = Vec::new();
        detector().scan(&t, &mut raw);
        for f in &raw {
            prop_assert!(f.start < f.end && f.end <= t.len());
            prop_assert!(t.is_char_boundary(f.start) && t.is_char_boundary(f.end));
        }
        let resolved = findings(&t);
        for w in resolved.windows(2) {
            prop_assert!(w[0].end <= w[1].start, "resolved findings do not overlap");
        }
    }

    #[test]
    fn redaction_is_idempotent_and_leaves_no_value(t in text()) {
        for format in [MarkerFormat::Label, MarkerFormat::Mask, MarkerFormat::Hash] {
            let r = redactor(format);
            let fs = findings(&t);
            let once = r.redact(&t, &fs);
            let twice = r.redact(&once, &findings(&once));
            prop_assert_eq!(&once, &twice, "{:?}", format);
            // every detected occurrence is gone (the same characters elsewhere, without the
            // context that made them a finding, may stay)
            for f in &fs {
                let value = &t[f.start..f.end];
                let detected = fs.iter().filter(|g| &t[g.start..g.end] == value).count();
                if value.len() >= 6 {
                    prop_assert!(
                        once.matches(value).count() + detected <= t.matches(value).count(),
                        "{:?} survived {:?}", value, format
                    );
                }
            }
        }
    }

    #[test]
    fn streaming_equals_whole_text(t in text(), cuts in proptest::collection::vec(1usize..700, 1..40)) {
        let r = redactor(MarkerFormat::Label);
        let whole = r.redact(&t, &findings(&t));
        let mut stream = StreamRedactor::new(detector(), &r);
        let mut out = String::new();
        let mut pos = 0;
        let mut k = 0;
        while pos < t.len() {
            let mut end = (pos + cuts[k % cuts.len()]).min(t.len());
            while !t.is_char_boundary(end) {
                end += 1;
            }
            out.push_str(&stream.push(&t[pos..end]));
            pos = end;
            k += 1;
        }
        out.push_str(&stream.finish());
        prop_assert_eq!(out, whole);
    }
}

#[test]
fn all_types_cover_every_builtin_entity() {
    let all = BuiltinDetector::all_types();
    assert!(all.contains(&EntityType::Npi) && all.contains(&EntityType::Jwt));
    assert!(!all.contains(&EntityType::Custom));
}

/// Every document of the development corpus, alone and all joined: redaction is idempotent and
/// streaming in small chunks equals whole-text redaction (names after cues on the line above,
/// whole addresses over several lines, CJK cues).
#[test]
fn dev_documents_redact_idempotently_and_stream_the_same() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/detection/");
    let docs: Vec<String> = std::fs::read_to_string(format!("{dir}dev.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_owned()
        })
        .collect();
    let joined = docs.join("\n");
    let r = redactor(MarkerFormat::Label);
    for t in docs.iter().chain([&joined]) {
        let once = r.redact(t, &findings(t));
        assert_eq!(r.redact(&once, &findings(&once)), once, "{t}");
        for chunk in [1, 3, 7, 64, 300] {
            let mut stream = StreamRedactor::new(detector(), &r);
            let mut out = String::new();
            let mut pos = 0;
            while pos < t.len() {
                let mut end = (pos + chunk).min(t.len());
                while !t.is_char_boundary(end) {
                    end += 1;
                }
                out.push_str(&stream.push(&t[pos..end]));
                pos = end;
            }
            out.push_str(&stream.finish());
            assert_eq!(out, once, "chunk {chunk}: {t}");
        }
    }
}
