//! `kt scan` and `kt redact` as a scoring harness or a shell script runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn kt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kt runs");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn scan_reports_spans_in_bytes_or_chars() {
    let line = r#"{"id":"t1","text":"café jane@example.com"}"#;
    let bytes = kt(&["scan"], line.as_bytes());
    assert!(bytes.status.success());
    let v: Value = serde_json::from_slice(&bytes.stdout).unwrap();
    assert_eq!(v["id"], "t1");
    assert_eq!(
        v["spans"][0],
        serde_json::json!({"start": 6, "end": 22, "type": "EMAIL"})
    );
    let chars = kt(&["scan", "--offsets", "char"], line.as_bytes());
    let v: Value = serde_json::from_slice(&chars.stdout).unwrap();
    assert_eq!(
        v["spans"][0],
        serde_json::json!({"start": 5, "end": 21, "type": "EMAIL"})
    );
}

#[test]
fn scan_answers_every_good_line_and_names_the_bad_ones() {
    let input = "{\"id\":1,\"text\":\"SSN 123-45-6789\"}\n{oops\n{\"id\":3}\n{\"id\":4,\"text\":\"nothing here\"}\n";
    let o = kt(&["scan"], input.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["spans"][0]["type"], "US_SSN");
    assert_eq!(lines[1]["spans"], serde_json::json!([]));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("line 2:") && err.contains("line 3:"), "{err}");
}

/// Input of several batches, split among the cores: every line answered in its order, the bad
/// ones named by their numbers in order, CRLF line ends read as line ends.
#[test]
fn scan_answers_large_input_in_order() {
    let n = 250_000;
    let mut input = String::new();
    for i in 0..n {
        match i {
            7 => input.push_str("{oops\n"),
            120_001 => input.push_str("{\"id\":120001}\r\n"),
            _ => input.push_str(&format!(
                "{{\"id\":{i},\"text\":\"mail user{i}@example.org now\"}}\r\n"
            )),
        }
    }
    assert!(input.len() > 2 * (4 << 20), "more than two batches");
    let o = kt(&["scan"], input.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut ids = Vec::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_u64().unwrap();
        let email = format!("user{id}@example.org");
        assert_eq!(
            v["spans"],
            serde_json::json!([{"start": 5, "end": 5 + email.len(), "type": "EMAIL"}]),
            "{line}"
        );
        ids.push(id);
    }
    let want: Vec<u64> = (0..n as u64).filter(|&i| i != 7 && i != 120_001).collect();
    assert!(ids == want, "answers out of order or missing");
    let err = String::from_utf8(o.stderr).unwrap();
    let (a, b) = (
        err.find("line 8:").unwrap(),
        err.find("line 120002:").unwrap(),
    );
    assert!(a < b, "{err}");
}

#[test]
fn scan_rejects_an_unknown_entity_type() {
    let o = kt(&["scan", "--entities", "EMAIL,SOCIAL"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr)
        .unwrap()
        .contains("`SOCIAL` is not an entity type"));
}

#[test]
fn redact_streams_large_input_and_matches_the_marker_formats() {
    let unit = "Dear Mr. Smith, call (415) 555-0132 or write to ana.lopez@example.org today. ";
    let text = unit.repeat(20_000); // ~1.5 MB, read in 64 KiB chunks
    let o = kt(&["redact"], text.as_bytes());
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out,
        "Dear Mr. [PERSON], call [PHONE] or write to [EMAIL] today. ".repeat(20_000)
    );
    let masked = kt(&["redact", "--format", "mask"], b"SSN 123-45-6789");
    assert_eq!(String::from_utf8(masked.stdout).unwrap(), "SSN ***********");
    let h1 = kt(
        &["redact", "--format", "hash", "--hash-key", "k"],
        b"a@b.co",
    );
    let h2 = kt(
        &["redact", "--format", "hash", "--hash-key", "k"],
        b"a@b.co",
    );
    assert_eq!(h1.stdout, h2.stdout);
    assert!(String::from_utf8(h1.stdout).unwrap().starts_with("[EMAIL:"));
}

#[test]
fn redact_refuses_invalid_utf8() {
    let o = kt(&["redact"], b"ok \xff\xfe");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("not UTF-8"));
}
