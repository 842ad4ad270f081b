//! Scores the built-in detector on the hand-written development corpus of issue 20
//! (`conformance/detection/dev.jsonl`, built by `scripts/build-dev-corpus.py`), the tuned split
//! and the held-out split of rounds 1 to 3 apart, round 4's (a second author's) and round 5's (a
//! third author's) apart again (and round 2's held-out documents, marked `seen`: they were in
//! view while round 2's unit tests were written). The held-out split is never tuned on; it is
//! held to issue 20's F1 target and to floors at its current leak and flagged share, so a change
//! that loses ground there fails.
//!
//! `KT_DETECTION_REPORT=1 cargo test -p keeptrusts-core --test detection_dev -- --nocapture`
//! prints both tables and, for the tuned split only, every miss and false positive
//! (`KT_DETECTION_HELDOUT=1` prints the held-out split's too: read them to report what is missed,
//! not to tune on; `KT_DETECTION_SEEN=1` those of the seen split).
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
    let split = |name: &str| -> Vec<&Doc> { docs.iter().filter(|d| d.split == name).collect() };
    // rounds 1 to 3 (one author), and round 4 (a second author who saw neither the detector nor
    // the documents before) apart
    let of = |name: &str, rounds: &[u8]| -> Vec<&Doc> {
        docs.iter()
            .filter(|d| d.split == name && rounds.contains(&d.round))
            .collect()
    };
    let (tuned, heldout) = (of("tuned", &[1, 2, 3]), of("heldout", &[1, 2, 3]));
    assert!(tuned.len() >= 40 && heldout.len() >= 40);
    let t = score(&tuned, &detector, "tuned", report);
    let h = score(
        &heldout,
        &detector,
        "held-out",
        std::env::var("KT_DETECTION_HELDOUT").is_ok(),
    );
    if report {
        // round 2's held-out documents, in view while its unit tests were written
        score(
            &split("seen"),
            &detector,
            "seen (round 2's held-out)",
            std::env::var("KT_DETECTION_SEEN").is_ok(),
        );
        // each round of issue 20 apart, for the figures in docs/detection.md
        for round in [1, 2, 3, 4, 5] {
            for (name, label) in [
                ("tuned", "tuned"),
                ("heldout", "held-out"),
                ("seen", "seen"),
            ] {
                let part: Vec<&Doc> = docs
                    .iter()
                    .filter(|d| d.split == name && d.round == round)
                    .collect();
                if !part.is_empty() {
                    // round 4's and round 5's tuned misses with `KT_DETECTION_ROUND4=1`,
                    // `KT_DETECTION_ROUND5=1`
                    let details = round >= 4
                        && name == "tuned"
                        && std::env::var(format!("KT_DETECTION_ROUND{round}")).is_ok();
                    score(
                        &part,
                        &detector,
                        &format!("round {round}, {label}"),
                        details,
                    );
                }
            }
        }
    }
    // issue 20's F1 and leak targets hold on the held-out split of rounds 1 to 3 (0.951, 2.4 %
    // since the census lists); its flagged target (3 %) does not yet: it flags 2 of its 39
    // PII-free documents (5.1 %, docs/detection.md). These floors are where the split stands,
    // so a change that loses ground fails; the tuned split must stay near where it was.
    assert!(h.f1 >= 0.90, "held-out micro F1 {:.3} < 0.90", h.f1);
    assert!(
        h.leak <= 0.05,
        "held-out leak {:.2} % > 5 %",
        h.leak * 100.0
    );
    assert!(
        h.flagged <= 0.055,
        "held-out flagged {:.2} % > 5.5 %",
        h.flagged * 100.0
    );
    assert!(t.f1 >= 0.95, "tuned micro F1 {:.3} < 0.95", t.f1);
    assert!(t.leak <= 0.02 && t.flagged <= 0.03);
    // rounds 4 and 5, a second and a third author's documents (round 5 names and addresses
    // first): far from issue 20's targets (docs/detection.md); floors where each half stands,
    // so a change that loses ground fails. (round, split, F1 at least, leak and flagged at most)
    for (round, name, f1, leak, flagged) in [
        (4, "tuned", 0.91, 0.16, 0.0),
        (4, "heldout", 0.78, 0.28, 0.12),
        (5, "tuned", 0.83, 0.15, 0.0),
        (5, "heldout", 0.76, 0.24, 0.10),
    ] {
        let label = format!("round {round}, {name} (floors)");
        let got = score(&of(name, &[round]), &detector, &label, false);
        assert!(
            got.f1 >= f1 && got.leak <= leak && got.flagged <= flagged,
            "{label}: {got:?}"
        );
    }
}
