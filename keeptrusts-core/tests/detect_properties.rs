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

#[path = "support/scan_properties.rs"]
mod scan_properties;
use scan_properties::{chunk_size, glued_run, stand_apart};

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

/// Pieces of text without whitespace: CJK prose (with its cues, regions and punctuation),
/// base64, and values glued to them.
const GLUED: &[&str] = &[
    "jane.doe@example.com",
    "4111111111111111",
    "123-45-6789",
    "(415)555-0132",
    "+14155550132",
    "AKIAIOSFODNN7EXAMPLE",
    "sk-proj-aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "https://intranet.example.com/hr?id=42&x=y",
    "GB82WEST12345698765432",
    "192.168.10.77",
    "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7-----END PRIVATE KEY-----",
    "我叫王小明",
    "名前:山田太郎",
    "北京市朝阳区建国路88号",
    "東京都港区六本木6-10-1",
    "邮箱",
    "电话",
    "。",
    "，",
    "、",
    "「",
    "」",
];

/// A long run without whitespace: CJK prose, base64 (standard and URL-safe), hex, digit and
/// capital runs, glued values and random characters, past the stream's windows (4 KiB and more
/// without a break).
fn whitespace_free() -> impl Strategy<Value = String> {
    const HANZI: &str = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生王李张名前叫市区路号";
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
    let run = |alphabet: Vec<char>, max: usize| {
        (proptest::collection::vec(any::<u16>(), 1..64), 1usize..max).prop_map(move |(seed, n)| {
            (0..n)
                .map(|k| {
                    alphabet
                        [usize::from(seed[k % seed.len()]).wrapping_add(k * 31) % alphabet.len()]
                })
                .collect::<String>()
        })
    };
    let piece = prop_oneof![
        4 => run(HANZI.chars().collect(), 1500),
        2 => run(B64[..64].iter().map(|&c| char::from(c)).collect(), 3000),
        1 => run(B64[..62].iter().chain(b"-_").map(|&c| char::from(c)).collect(), 3000),
        1 => run("0123456789abcdef".chars().collect(), 3000),
        1 => run("0123456789".chars().collect(), 600),
        1 => run("ABCDEFGHIJKLMNOPQRSTUVWXYZ".chars().collect(), 600),
        4 => (0..GLUED.len()).prop_map(|i| GLUED[i].to_owned()),
        1 => "[^\\s]{1,40}",
    ];
    proptest::collection::vec(piece, 1..24).prop_map(|v| v.concat())
}

fn streamed(t: &str, cuts: &[usize], r: &Redactor) -> String {
    let mut stream = StreamRedactor::new(detector(), r);
    let mut out = String::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < t.len() {
        let mut end = (pos + cuts[k % cuts.len()]).min(t.len());
        while !t.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&stream.push(&t[pos..end]));
        // bounded hold-back: the most a stream holds, plus one chunk
        assert!(
            stream.held() <= keeptrusts_core::redact::STREAM_HOLD_MAX + (end - pos),
            "{} bytes held",
            stream.held()
        );
        pos = end;
        k += 1;
    }
    out.push_str(&stream.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn streaming_equals_whole_text_without_whitespace(
        t in whitespace_free(),
        cuts in proptest::collection::vec(1usize..700, 1..40),
    ) {
        let r = redactor(MarkerFormat::Label);
        let whole = r.redact(&t, &findings(&t));
        let out = streamed(&t, &cuts, &r);
        prop_assert!(out == whole, "streamed differs from whole ({} bytes)", t.len());
    }

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
        prop_assert_eq!(streamed(&t, &cuts, &r), whole);
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
            assert_eq!(streamed(t, &[chunk], &r), once, "chunk {chunk}: {t}");
        }
    }
}

/// Runs of numbers longer than any value, and values inside them (issue 20, round 2): the run
/// is read from its first group only, so redacting never leaves a shorter run that reads as
/// another value (fuzz seed `dev-values-shapes`: twenty `05` groups gave a phone of the last
/// six, then of the six before them on the second pass).
#[test]
fn runs_of_numbers_redact_idempotently() {
    let texts = [
        format!("{}SSN:", "05 ".repeat(20)),
        "0612 345 678 0612 345 678".to_owned(),
        "0612 345 678 0612-345-678".to_owned(),
        "Tel 12 34 56 78 90 12 34 56 78 90 12".to_owned(),
        "4111 1111 1111 1111 05 53 18 69 64 05 53 18 69 64".to_owned(),
        "1.2.3.4 0612 345 678, 12 555-123-4567".to_owned(),
    ];
    for t in &texts {
        for format in [MarkerFormat::Label, MarkerFormat::Mask, MarkerFormat::Hash] {
            let r = redactor(format);
            let once = r.redact(t, &findings(t));
            assert_eq!(r.redact(&once, &findings(&once)), once, "{format:?}: {t}");
        }
    }
    // a run longer than any phone holds none; the run's first group starts the value
    assert!(findings(&texts[0]).is_empty());
    assert!(findings(&texts[1]).is_empty());
    let phones = |t: &str| -> Vec<String> {
        findings(t)
            .iter()
            .map(|f| t[f.start..f.end].to_owned())
            .collect()
    };
    assert_eq!(phones("Tel: 0612 345 678"), ["0612 345 678"]);
    assert_eq!(phones("05 53 18 69 64"), ["05 53 18 69 64"]);
}

/// Every seed of the fuzz target `scan_redact` (its minimized crashes among them, named
/// `regression-…`) holds the target's properties: idempotent redaction when the values stand
/// apart, and streaming equal to whole-text redaction, for the text and for the text without
/// whitespace repeated past the stream's windows (a key after `"Authorization:` glued to a URL
/// was read with its context by a rescan starting at the `"` and without it by the whole text).
#[test]
fn fuzz_seeds_hold_the_fuzz_properties() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/scan_redact");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        seen += usize::from(holds_the_fuzz_properties(&path));
    }
    assert!(seen >= 70);
}

/// The fuzz target's properties on one input (its first byte the stream's chunk step, the rest
/// the text); false for an empty input.
fn holds_the_fuzz_properties(path: &std::path::Path) -> bool {
    let r = redactor(MarkerFormat::Label);
    let stream = |text: &str, size: usize| streamed(text, &[size], &r);
    let data = std::fs::read(path).unwrap();
    let Some((&step, rest)) = data.split_first() else {
        return false;
    };
    let name = path.display();
    let text = String::from_utf8_lossy(rest);
    let found = findings(&text);
    let once = r.redact(&text, &found);
    if stand_apart(&text, &found) {
        assert_eq!(
            r.redact(&once, &findings(&once)),
            once,
            "idempotent: {name}"
        );
    }
    let size = chunk_size(step);
    assert_eq!(stream(&text, size), once, "streaming: {name}");
    if let Some(run) = glued_run(&text) {
        let whole = r.redact(&run, &findings(&run));
        assert_eq!(stream(&run, size), whole, "streaming the glued run: {name}");
    }
    true
}

/// Texts the fuzz target found (2026-12-03; their full inputs are seeds named `regression-…`)
/// whose second pass found more than the first: what the first pass read must not change once
/// a neighbour is a marker.
#[test]
fn a_neighbour_turned_marker_changes_nothing_else() {
    let r = redactor(MarkerFormat::Label);
    for (text, want) in [
        // the version on the second line keeps the dotted quad after it a version, whether the
        // line before is an IP address or its marker
        ("4.9.3.96\n2.1.4;4.9.3.19", "[IP_ADDRESS]\n2.1.4;4.9.3.19"),
        (
            "host 10.20.30.41\nagent 2.1.4, 4.19.33.196",
            "host [IP_ADDRESS]\nagent 2.1.4, 4.19.33.196",
        ),
        // a version on an earlier line says nothing about this one
        (
            "pip 2.1.4\nhost 10.20.30.41",
            "pip 2.1.4\nhost [IP_ADDRESS]",
        ),
        // an address glued to an e-mail address is none, nor once that is a marker
        ("abab::i@e.mx", "abab::[EMAIL]"),
        (
            "ab:ab:ab:ab:ab:ab:abi@eprresa.mx",
            "ab:ab:ab:ab:ab:ab:[EMAIL]",
        ),
        ("host 2a00:1450:4001::200e up", "host [IP_ADDRESS] up"),
        ("mac 3c:22:fb:1a:2b:3c, ok", "mac [DEVICE_ID], ok"),
        // an account number followed by a card: the groups after it are not part of it
        (
            "account 00234567-8e 4294 0283 830427",
            "account [ACCOUNT_NUMBER] [CREDIT_CARD]",
        ),
        (
            "Your loan account 00-1234567-8e 4111 1111 1111 1111 12/27",
            "Your loan account [ACCOUNT_NUMBER] [CREDIT_CARD] 12/27",
        ),
        // (2026-12-04) a title after a value is a title, as after its marker: the number
        // before it is no unit's (`3.3 ms. First`)
        ("acct 59428 Dr Al", "acct [ACCOUNT_NUMBER] Dr [PERSON]"),
        // an identifier whose first group is too short for its kind is its longest run of
        // groups that is one, whatever follows
        ("iban de14 42e 0283 7808 12", "iban [BANK_ACCOUNT] 12"),
    ] {
        let once = r.redact(text, &findings(text));
        assert_eq!(once, want, "{text:?}");
        assert_eq!(
            r.redact(&once, &findings(&once)),
            once,
            "idempotent: {text:?}"
        );
    }
}

// ---------- every governed field (issue 19) ----------

mod fields {
    use super::*;
    use keeptrusts_core::exchange::{Begin, Exchange, StreamEnd};
    use keeptrusts_core::{
        ChatRequest, ChatResponse, Engine, MemoryEscalations, Principal, RequestContext, Stores,
    };
    use serde_json::{json, Value};

    /// Values every `pii-detector` finds on their own, between spaces.
    const VALUES: &[&str] = &[
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "AKIAIOSFODNN7EXAMPLE",
        "https://intranet.example.com/hr/records?id=42",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "(415) 555-0132",
    ];

    fn engine() -> &'static Engine {
        static E: OnceLock<Engine> = OnceLock::new();
        E.get_or_init(|| {
            Engine::from_yaml(
                "pack: { name: fields, version: \"1.0\" }\npolicies:\n  chain: [pii-detector]\npolicy:\n  pii-detector: { action: redact }\n",
            )
            .unwrap()
        })
    }

    fn principal() -> Principal {
        serde_json::from_value(
            json!({"user": "a@yourco.com", "team": "t", "role": "member",
            "authenticated": true}),
        )
        .unwrap()
    }

    /// Where a text goes in a request: every governed field, written out here (not taken from
    /// the engine's walk), so a field the walk forgets fails the property.
    fn place_in_request(place: usize, text: &str) -> Value {
        let args = json!({"q": text}).to_string();
        let mut r =
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
        let m = &mut r["messages"];
        match place {
            0 => m[0]["content"] = json!(text),
            1 => m[0]["content"] = json!([{"type": "text", "text": text}]),
            2 => m[0]["name"] = json!(text),
            3 => m.as_array_mut().unwrap().push(json!({"role": "assistant", "content": null,
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": args}}]})),
            4 => m.as_array_mut().unwrap().push(json!({"role": "assistant", "content": null,
                "function_call": {"name": "f", "arguments": args}})),
            5 => m.as_array_mut().unwrap().push(json!({"role": "assistant", "content": null, "refusal": text})),
            6 => m.as_array_mut().unwrap().push(json!({"role": "assistant",
                "content": [{"type": "refusal", "refusal": text}]})),
            7 => m.as_array_mut().unwrap().push(json!({"role": "system", "content": text})),
            8 => m.as_array_mut().unwrap().push(json!({"role": "tool", "tool_call_id": "1", "content": text})),
            9 => r["tools"] = json!([{"type": "function", "function": {"name": "f", "description": text}}]),
            10 => r["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters":
                {"type": "object", "properties": {"a": {"type": "object", "properties":
                    {"b": {"type": "string", "description": text}}}}}}}]),
            11 => r["functions"] = json!([{"name": "f", "description": text}]),
            12 => r["functions"] = json!([{"name": "f", "parameters": {"type": "object", "title": text}}]),
            13 => r["prediction"] = json!({"type": "content", "content": text}),
            14 => r["prediction"] = json!({"type": "content", "content": [{"type": "text", "text": text}]}),
            15 => r["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "s",
                "description": text, "schema": {"type": "object"}}}),
            16 => r["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "s",
                "schema": {"type": "object", "properties": {"x": {"type": "string", "description": text}}}}}),
            17 => r["user"] = json!(text),
            _ => r["metadata"] = json!({"note": text}),
        }
        r
    }

    const REQUEST_PLACES: usize = 19;

    /// Where a text goes in an answer (every governed field, and logprobs).
    fn place_in_answer(place: usize, text: &str) -> Value {
        let args = json!({"q": text}).to_string();
        let mut choice = json!({"index": 0, "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop"});
        let m = &mut choice["message"];
        match place {
            0 => m["content"] = json!(text),
            1 => m["refusal"] = json!(text),
            2 => {
                m["tool_calls"] = json!([{"id": "1", "type": "function", "function": {"name": "f", "arguments": args}}])
            }
            3 => m["function_call"] = json!({"name": "f", "arguments": args}),
            4 => {
                m["audio"] = json!({"id": "a", "data": "AAAA", "expires_at": 1, "transcript": text})
            }
            5 => m["content"] = json!([{"type": "text", "text": text}]),
            _ => {
                let tokens: Vec<Value> = text
                    .split_inclusive(' ')
                    .map(|t| json!({"token": t, "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": -0.5}]}))
                    .collect();
                choice["logprobs"] = json!({"content": tokens});
            }
        }
        json!({"id": "c", "object": "chat.completion", "choices": [choice],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    }

    const ANSWER_PLACES: usize = 7;

    fn begin(request: &ChatRequest, stores: &Stores<'_>) -> Box<Exchange> {
        match Exchange::begin(
            engine(),
            None,
            &principal(),
            request,
            &RequestContext::new("r", 0),
            stores,
        )
        .unwrap()
        {
            Begin::Forward(x) => x,
            Begin::Answer(a) => panic!("refused: {:?}", a.body),
        }
    }

    /// Some text around the value (never touching it, and no words: a word such as `order` or
    /// `id` before a number says it is not personal, which is the detector's to decide, not a
    /// field's).
    fn words() -> impl Strategy<Value = String> {
        "[ ,.;!?\u{4e00}-\u{4e20}]{0,30}"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn a_detected_value_in_any_request_field_never_reaches_the_provider(
            place in 0..REQUEST_PLACES, v in 0..VALUES.len(), before in words(), after in words(),
        ) {
            let value = VALUES[v];
            let text = format!("{before} {value} {after}");
            let request: ChatRequest = serde_json::from_value(place_in_request(place, &text)).unwrap();
            let store = MemoryEscalations::new();
            let stores = Stores::new(&store);
            let mut x = begin(&request, &stores);
            let sent = serde_json::to_string(&x.next_call().unwrap().request).unwrap();
            prop_assert!(!sent.contains(value), "place {}: {}", place, sent);
        }

        #[test]
        fn a_detected_value_in_any_answer_field_never_reaches_the_client(
            place in 0..ANSWER_PLACES, v in 0..VALUES.len(), before in words(), after in words(),
        ) {
            let value = VALUES[v];
            let text = format!("{before} {value} {after}");
            let store = MemoryEscalations::new();
            let stores = Stores::new(&store);
            let request = ChatRequest::user("gpt-4o-mini", "hi");
            let mut x = begin(&request, &stores);
            x.next_call().unwrap();
            let response: ChatResponse = serde_json::from_value(place_in_answer(place, &text)).unwrap();
            let a = x.answer(&response);
            let body = a.body.to_string();
            prop_assert!(!body.contains(value), "place {}: {}", place, body);
            prop_assert_eq!(place == ANSWER_PLACES - 1, a.dropped == vec!["logprobs".to_owned()]);
        }

        #[test]
        fn a_detected_value_in_any_streamed_field_never_reaches_the_client(
            field in 0usize..3, v in 0..VALUES.len(), before in words(), after in words(),
            cuts in proptest::collection::vec(1usize..12, 1..20),
        ) {
            let value = VALUES[v];
            let text = format!("{before} {value} {after}");
            let store = MemoryEscalations::new();
            let stores = Stores::new(&store);
            let mut request = ChatRequest::user("gpt-4o-mini", "hi");
            request.extra.insert("stream".into(), json!(true));
            let mut x = begin(&request, &stores);
            x.next_call().unwrap();
            let mut out = Vec::new();
            let (mut pos, mut k) = (0, 0);
            while pos < text.len() {
                let mut end = (pos + cuts[k % cuts.len()]).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                let piece = &text[pos..end];
                let delta = match field {
                    0 => json!({"content": piece}),
                    1 => json!({"refusal": piece}),
                    _ => json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                };
                out.extend(x.push_chunk(&json!({"id": "c", "choices": [{"index": 0, "delta": delta,
                    "logprobs": {"content": [{"token": piece, "logprob": -1.0}]}}]})));
                pos = end;
                k += 1;
            }
            let (rest, _) = x.finish_chunks(StreamEnd::Complete);
            out.extend(rest);
            let sent = serde_json::to_string(&out).unwrap();
            prop_assert!(!sent.contains(value), "field {}: {}", field, sent);
            // the value is redacted, not lost: its marker reaches the client in the same field
            let key = ["content", "refusal", "arguments"][field];
            let joined: String = out.iter().filter_map(|c| {
                let d = &c["choices"][0]["delta"];
                d.get(key).or_else(|| d.pointer("/tool_calls/0/function/arguments")).and_then(Value::as_str)
            }).collect();
            prop_assert!(joined.contains('[') && joined.contains(after.trim_end()), "{}", joined);
        }
    }
}

/// Found by `streaming_equals_whole_text_without_whitespace` on 2026-12-03 (`docs/detection.md`):
/// a URL glued to CJK text runs to its 2,048-byte cap and ends inside a JWT; the whole-text scan
/// reads on from the URL's end and finds nothing more, while a later stream window's left context
/// started inside the URL (longer than the stream's context), found the JWT from its start and
/// redacted its tail. The left context now starts at the URL's end.
#[test]
fn a_capped_url_ending_inside_a_jwt_streams_like_the_whole_text() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/known");
    let t = std::fs::read_to_string(format!("{dir}/stream-url-over-jwt.txt")).unwrap();
    let cuts = [
        397, 673, 67, 316, 445, 175, 523, 448, 526, 511, 346, 676, 190, 658, 367, 568, 426, 227,
        634, 552, 612, 476, 492, 287, 227, 99, 263,
    ];
    let r = redactor(MarkerFormat::Label);
    assert_eq!(streamed(&t, &cuts, &r), r.redact(&t, &findings(&t)));
}
