//! Packs written to hurt (issue 11): each limit refuses the pack as a whole with `E007` (or
//! `E003` for a regex too large to compile), names where, and keeps the process healthy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use keeptrusts_core::pack::{
    self, MAX_CHAIN_ENTRIES, MAX_CUSTOM_PATTERNS, MAX_DOCUMENT_BYTES, MAX_TARGETING_LIST,
};
use keeptrusts_core::Engine;

const HEAD: &str = "pack: { name: hostile, version: \"1.0\" }\n";

fn first_error(src: &str) -> (String, String, String) {
    let err = pack::parse(src).expect_err("the pack is refused");
    let e = &err.errors[0];
    (e.code.clone(), e.path.clone(), e.message.clone())
}

#[test]
fn a_document_over_the_size_limit() {
    let src = format!(
        "{HEAD}# {}\npolicies: {{ chain: [rbac] }}\n",
        "x".repeat(MAX_DOCUMENT_BYTES)
    );
    let (code, _, message) = first_error(&src);
    assert_eq!(code, "E007");
    assert!(message.contains("bytes"), "{message}");
    assert!(Engine::from_yaml(&src).is_err());
}

#[test]
fn a_chain_over_the_entry_limit() {
    let chain = vec!["audit-logger"; MAX_CHAIN_ENTRIES + 1].join(", ");
    let (code, path, message) = first_error(&format!("{HEAD}policies: {{ chain: [{chain}] }}\n"));
    assert_eq!((code.as_str(), path.as_str()), ("E007", "policies.chain"));
    assert!(
        message.contains(&MAX_CHAIN_ENTRIES.to_string()),
        "{message}"
    );
}

#[test]
fn a_targeting_list_over_the_limit() {
    let teams: Vec<String> = (0..=MAX_TARGETING_LIST).map(|i| format!("t{i}")).collect();
    let src = format!(
        "{HEAD}policies:\n  chain:\n    - rbac:\n        targeting: {{ scope: team, teams: [{}] }}\n",
        teams.join(", ")
    );
    let (code, path, _) = first_error(&src);
    assert_eq!(code, "E007");
    assert!(path.ends_with("targeting.teams"), "{path}");
}

#[test]
fn too_many_custom_patterns_and_a_regex_too_large() {
    let pats: Vec<String> = (0..=MAX_CUSTOM_PATTERNS)
        .map(|i| format!("      - {{ name: p{i}, pattern: 'x{i}' }}"))
        .collect();
    let src = format!(
        "{HEAD}policies: {{ chain: [pii-detector] }}\npolicy:\n  pii-detector:\n    detect_patterns:\n{}\n",
        pats.join("\n")
    );
    let (code, path, _) = first_error(&src);
    assert_eq!(code, "E007");
    assert!(path.contains("detect_patterns"), "{path}");

    // a pattern whose compiled program exceeds the regex size limit
    let src = format!(
        "{HEAD}policies: {{ chain: [pii-detector] }}\npolicy:\n  pii-detector:\n    detect_patterns:\n      - {{ name: big, pattern: '(\\w{{50}}){{200}}' }}\n"
    );
    let (code, path, message) = first_error(&src);
    assert_eq!(code, "E003");
    assert!(path.ends_with("detect_patterns[0].pattern"), "{path}");
    assert!(message.contains("invalid regex"), "{message}");
}

#[test]
fn alias_bombs_and_deep_nesting() {
    // a billion laughs: every level doubles ten times
    let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    src.push_str(HEAD);
    let (code, _, message) = first_error(&src);
    assert_eq!(code, "E007");
    assert!(message.contains("nodes"), "{message}");

    let deep = format!("{HEAD}x: {}1{}\n", "[".repeat(200), "]".repeat(200));
    let (code, _, message) = first_error(&deep);
    assert_eq!(code, "E007");
    assert!(message.contains("deeper"), "{message}");
}
