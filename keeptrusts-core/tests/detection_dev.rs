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

use keeptrusts_core::detect::builtin::BuiltinDetector;

#[path = "support/scoring.rs"]
mod scoring;
use scoring::{load, score, Doc};

#[test]
fn dev_corpus_scores() {
    let docs = load("dev.jsonl");
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
