//! Any text through the detectors: never panics; spans are on char boundaries inside the text;
//! no detected occurrence of a value (six bytes or more) survives redaction; redaction is
//! idempotent (for values delimited by whitespace or punctuation); streaming
//! redaction with a chunking taken from the input equals whole-text redaction, for the text and
//! for the text without its whitespace repeated past the stream's windows (one run of CJK,
//! base64 or glued values, 6 KiB or more); the stream's hold-back stays bounded.
#![no_main]

use std::sync::OnceLock;

use keeptrusts_core::detect::builtin::BuiltinDetector;
use keeptrusts_core::detect::{resolve_overlaps, Detector, LONGEST_VALUE};
use keeptrusts_core::redact::{pieces, Redactor, StreamRedactor, STREAM_WINDOW};
use libfuzzer_sys::fuzz_target;

#[path = "../../keeptrusts-core/tests/support/scan_properties.rs"]
mod scan_properties;
use scan_properties::{chunk_size, glued_run, stand_apart};

fn detector() -> &'static BuiltinDetector {
    static D: OnceLock<BuiltinDetector> = OnceLock::new();
    D.get_or_init(|| BuiltinDetector::new(&BuiltinDetector::all_types(), &[], &[]).expect("builds"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let d = detector();
    let mut found = Vec::new();
    d.scan(&text, &mut found);
    for f in &found {
        assert!(f.start < f.end && f.end <= text.len());
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    resolve_overlaps(&mut found);
    let r = Redactor::new(None, Vec::new(), [1; 32]);
    let once = r.redact(&text, &found);
    // every detected occurrence is gone (the same characters elsewhere, without the context
    // that made them a finding, may stay)
    for f in &found {
        let v = &text[f.start..f.end];
        let detected = found.iter().filter(|g| &text[g.start..g.end] == v).count();
        assert!(
            v.len() < 6 || once.matches(v).count() + detected <= text.matches(v).count(),
            "{v:?} survived"
        );
    }
    // idempotent when every value stands apart from its neighbours
    if stand_apart(&text, &found) {
        let mut again = Vec::new();
        d.scan(&once, &mut again);
        resolve_overlaps(&mut again);
        assert_eq!(r.redact(&once, &again), once, "redaction is idempotent");
    }
    // stream in chunks of 1 + step bytes (moved forward to char boundaries)
    let size = chunk_size(step);
    assert_eq!(stream(&text, size, &r), once, "streaming equals whole text");
    // the same text without whitespace, repeated into one run longer than the stream's windows
    // (the left context then starts inside the run, the release cuts at char boundaries)
    if let Some(run) = glued_run(&text) {
        let mut found = Vec::new();
        d.scan(&run, &mut found);
        resolve_overlaps(&mut found);
        let once = r.redact(&run, &found);
        assert_eq!(
            stream(&run, size, &r),
            once,
            "streaming a run without whitespace equals whole text"
        );
    }
});

/// `text` through a stream redactor in chunks of `size` bytes; asserts the hold-back bound after
/// every push: the window, or a value still held back (the longest built-in value, the window
/// and the 4 KiB a rescan may wait for).
fn stream(text: &str, size: usize, r: &Redactor) -> String {
    let mut s = StreamRedactor::new(detector(), r);
    let mut out = String::new();
    for piece in pieces(text, size) {
        out.push_str(&s.push(piece));
        assert!(
            s.held() <= LONGEST_VALUE + STREAM_WINDOW + 4096 + piece.len(),
            "{} bytes held back",
            s.held()
        );
    }
    out.push_str(&s.finish());
    out
}
