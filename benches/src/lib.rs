//! The benchmarks live in `benches/`; this library holds the inputs they share with the
//! `detect_once` example (instruction counts and finding dumps of the same texts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The documents of `conformance/detection/corpus.jsonl`.
pub fn corpus() -> Vec<serde_json::Value> {
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

/// The corpus texts that `pick` selects, joined and repeated to `size` bytes.
pub fn corpus_text(pick: impl Fn(&serde_json::Value) -> bool, size: usize) -> String {
    let parts: Vec<String> = corpus()
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
    repeat_to(&unit, size)
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
    repeat_to(&unit, size)
}

/// The shapes the issue 20 value rules look at (round 2), repeated: MAC-like hex pairs, `key: `
/// and `Bearer ` without tokens, vendor-key prefixes without bodies, CJK years and phone cues,
/// mixed-case base64 with `/` and `+`, card-like groups of four, trunk-prefixed digit groups:
/// 10 MB.
pub fn adversarial_values(size: usize) -> String {
    let unit = format!(
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
    );
    repeat_to(&unit, size)
}

/// `unit` repeated until the text holds at least `size` bytes.
fn repeat_to(unit: &str, size: usize) -> String {
    let mut s = String::with_capacity(size + unit.len());
    while s.len() < size {
        s.push_str(unit);
    }
    s
}
