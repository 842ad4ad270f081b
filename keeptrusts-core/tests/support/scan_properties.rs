//! Pieces of the scan-and-redact properties shared by the fuzz target
//! (`fuzz/fuzz_targets/scan_redact.rs`) and the test that replays its finds
//! (`tests/detect_properties.rs`), so the two check one rule.
#![allow(dead_code)]

use keeptrusts_core::detect::Finding;

/// Whether every finding stands apart from its neighbours (whitespace, punctuation or the
/// text's edge on both sides): the condition under which redaction is idempotent. Values glued
/// into one run (`+1-446-842910-8-446-842-9081`) may expose, once one is replaced, a shape the
/// longer run hid (documented in `docs/detection.md`).
pub fn stand_apart(text: &str, found: &[Finding]) -> bool {
    let apart =
        |c: Option<&u8>| c.is_none_or(|&c| c.is_ascii_whitespace() || b",;:!?\"'()".contains(&c));
    let b = text.as_bytes();
    found
        .iter()
        .all(|f| apart(b.get(f.end)) && (f.start == 0 || apart(b.get(f.start - 1))))
}

/// `text` without its whitespace, repeated into one run longer than the stream's windows
/// (6 KiB or more, at most 64 copies); `None` when nothing is left.
pub fn glued_run(text: &str) -> Option<String> {
    let glued: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (!glued.is_empty()).then(|| glued.repeat((6 * 1024 / glued.len() + 1).min(64)))
}

/// The stream's chunk size an input's first byte `step` gives.
pub fn chunk_size(step: u8) -> usize {
    1 + usize::from(step) * 4
}
