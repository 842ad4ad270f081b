//! Hostile and broken input at the gateway (issue 11): each case asserts the status, the error
//! code, and that the wallet ledger and the audit chain are intact afterwards (nothing reserved
//! left behind, spent equal to what was settled, `kt events verify` clean).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

mod common;
use common::{chat, http, ledger, post_json, stop, Env};

fn code(r: &common::Reply) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn bad_bodies_are_refused_with_codes_and_charge_nothing() {
    let env = Env::new("hard-bodies");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&["--max-body-bytes", "1048576"]);
    let post = |body: &[u8]| http(&addr, "POST", "/v1/chat/completions", Some(&key), &[], body);

    for (body, what) in [
        (
            &b"{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\""[..],
            "truncated JSON",
        ),
        (b"{not json at all", "malformed JSON"),
        (b"[1, 2, 3]", "an array"),
        (
            b"{\"model\": \"gpt-4o-mini\", \"messages\": []}",
            "no messages",
        ),
        (
            b"{\"model\": \"gpt-4o-mini\", \"messages\": \"hello\"}",
            "messages of the wrong type",
        ),
        (b"\xff\xfe{\"model\": \"gpt-4o-mini\"}", "invalid UTF-8"),
    ] {
        let r = post(body);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(code(&r), "invalid_request", "{what}");
    }
    // invalid UTF-8 inside a string
    let mut body =
        b"{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\", \"content\": \""
            .to_vec();
    body.extend_from_slice(b"caf\xe9\"}]}");
    let r = post(&body);
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_request"));
    // nesting deeper than the JSON parser's limit
    let deep = format!(
        "{{\"model\": \"gpt-4o-mini\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\", \"x\": {}{}}}]}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let r = post(deep.as_bytes());
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_request"));
    // unknown fields are not an error: they are passed on to the provider
    let r = post(br#"{"model": "gpt-4o-mini", "seed": 7, "x_custom": {"a": [1, 2]}, "messages": [{"role": "user", "content": "hi", "name": "ana"}]}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    // a body over --max-body-bytes: 413 before it is read in full
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 50 << 20);
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..50 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(text.contains("request_too_large"));

    stop(&mut gw);
    // one request went through; nothing else was reserved, charged or lost, and every refusal
    // is on the chain with its code
    let (spent, reserved, events) = ledger(&env);
    assert_eq!(reserved, 0.0);
    assert!(spent > 0.0);
    let all = common::events(&env);
    let served = all.iter().filter(|e| e["status"] == 200).count();
    assert_eq!(served, 1);
    assert_eq!(events - served, 9, "one event per refused body");
    assert!(all
        .iter()
        .filter(|e| e["status"] != 200)
        .all(|e| e["cost"].is_null() && e["verdict"] == "block"));
    assert!(all.iter().any(|e| e["reason"] == "request_too_large"));
}

#[test]
fn huge_headers_and_slow_clients_are_cut_off() {
    let env = Env::new("hard-clients");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&["--client-timeout", "1"]);
    // headers far beyond hyper's limit
    let big = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(1 << 20)
    );
    let reply = raw(&addr, big.as_bytes());
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "huge headers: {}",
        &reply[..reply.len().min(120)]
    );
    // a client that sends half its headers and stalls is disconnected after --client-timeout
    let started = Instant::now();
    let reply = raw(&addr, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "header timeout"
    );
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    // a client that announces a body and sends only part of it gets 408
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":");
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"));
    // the gateway still serves
    let r = chat(&addr, Some(&key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    stop(&mut gw);
    // the request served and the one timed out in its body (the others never had a request)
    let (_, reserved, events) = ledger(&env);
    assert_eq!((reserved, events), (0.0, 2));
    assert!(common::events(&env)
        .iter()
        .any(|e| e["reason"] == "request_timeout"));
}

/// A provider that misbehaves: `hang` reads the request and never answers, `garbage` answers 200
/// with something that is not JSON, `drop` starts an SSE stream (chunked), sends one event and
/// closes the connection in the middle of the body.
fn bad_provider(mode: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = conn.read(&mut buf);
                match mode {
                    "hang" => std::thread::sleep(Duration::from_secs(30)),
                    "garbage" => {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n<html>oops<");
                    }
                    // an endless answer: a JSON body, or an SSE line, that never ends
                    "huge" | "longline" => {
                        let kind = if mode == "huge" {
                            "application/json"
                        } else {
                            "text/event-stream"
                        };
                        let _ = conn.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes());
                        let _ = conn.write_all(b"6\r\ndata: \r\n");
                        let piece = vec![b'a'; 65536];
                        for _ in 0..1024 {
                            let head = format!("{:x}\r\n", piece.len());
                            if conn.write_all(head.as_bytes()).is_err()
                                || conn.write_all(&piece).is_err()
                                || conn.write_all(b"\r\n").is_err()
                            {
                                return;
                            }
                        }
                    }
                    _ => {
                        let ev = serde_json::json!({"choices": [{"index": 0, "delta": {"content": "Hello there, "}}]});
                        let data = format!("data: {ev}\n\n");
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
                        let _ =
                            conn.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
                        let _ = conn.flush();
                        std::thread::sleep(Duration::from_millis(100));
                        // half a chunk, then the connection goes away
                        let _ = conn.write_all(b"40\r\ndata: {\"choi");
                        let _ = conn.flush();
                        let _ = conn.shutdown(std::net::Shutdown::Both);
                    }
                }
            });
        }
    });
    addr
}

fn pack_for(env: &Env, provider: &str) -> std::path::PathBuf {
    let pack = env.write_pack(&format!("pack: {{ name: bad, version: \"1.0\" }}\npolicies: {{ chain: [pii-detector, audit-logger] }}\nproviders:\n  targets:\n    - id: flaky\n      provider: openai-compatible\n      base_url: http://{provider}/v1\n      model: gpt-4o-mini\n"));
    pack
}

#[test]
fn answers_beyond_the_size_limits_are_refused_without_buffering_them() {
    for (mode, stream) in [("huge", false), ("longline", true)] {
        let env = Env::new(&format!("hard-{mode}"));
        let key = env.support_team();
        let pack = pack_for(&env, &bad_provider(mode));
        let (mut gw, addr) = env.gateway_with(&pack, &[]);
        let body = serde_json::json!({"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": "hello"}]});
        let r = post_json(&addr, "/v1/chat/completions", &key, &body, &[]);
        if stream {
            assert!(
                r.body.contains("longer than") && r.body.contains("upstream_error"),
                "{mode}: {}",
                &r.body[..r.body.len().min(600)]
            );
        } else {
            assert_eq!(r.status, 502, "{mode}: {}", r.body);
            assert_eq!(code(&r), "upstream_too_large");
            assert!(r.body.contains("`flaky`"), "{}", r.body);
        }
        stop(&mut gw);
        let (_, reserved, events) = ledger(&env);
        assert_eq!((reserved, events), (0.0, 1), "{mode}");
    }
}

#[test]
fn an_unreachable_provider_is_named_by_its_target_id_never_its_url() {
    let env = Env::new("hard-unreachable");
    let key = env.support_team();
    // a port nobody listens on
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let provider = closed.local_addr().unwrap().to_string();
    drop(closed);
    let pack = pack_for(&env, &provider);
    let (mut gw, addr) = env.gateway_with(&pack, &[]);
    let r = chat(&addr, Some(&key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("`flaky`"), "{}", r.body);
    assert!(
        !r.body.contains(&provider),
        "the provider's address reached the client: {}",
        r.body
    );
    assert!(!r.body.contains("http://"), "{}", r.body);
    stop(&mut gw);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(log.contains(&provider), "the log keeps the detail: {log}");
}

#[test]
fn a_provider_that_hangs_charges_nothing_and_garbage_after_200_charges_the_bound() {
    for mode in ["hang", "garbage"] {
        let env = Env::new(&format!("hard-{mode}"));
        let key = env.support_team();
        let pack = pack_for(&env, &bad_provider(mode));
        let (mut gw, addr) = env.gateway_with(&pack, &["--upstream-timeout", "1"]);
        let started = Instant::now();
        let r = chat(&addr, Some(&key), "gpt-4o-mini", "hello", &[]);
        assert_eq!(r.status, 502, "{mode}: {}", r.body);
        assert_eq!(code(&r), "upstream_error", "{mode}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode}: the timeout holds"
        );
        stop(&mut gw);
        // nothing stays reserved and the failure is on the chain; a provider that never
        // answered is not charged, one that answered 200 may bill: its whole bound is charged
        // (an answer without usable usage is never free)
        let (spent, reserved, events) = ledger(&env);
        assert_eq!((reserved, events), (0.0, 1), "{mode}");
        if mode == "hang" {
            assert_eq!(spent, 0.0);
        } else {
            assert!(spent > 0.0, "garbage after 200 is charged its bound");
            let e = common::events(&env).remove(0);
            assert_eq!(e["status"], 502);
            assert_eq!(e["cost"]["unmetered"], true);
        }
    }
}

#[test]
fn a_client_that_goes_away_mid_request_is_charged_its_bound_and_audited() {
    let env = Env::new("hard-gone");
    let key = env.support_team();
    let pack = pack_for(&env, &bad_provider("hang"));
    let (mut gw, addr) = env.gateway_with(&pack, &["--upstream-timeout", "60"]);
    // the request is reserved and forwarded to a provider that never answers; the client
    // closes its connection while it waits
    let body = r#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}"#;
    let mut s = TcpStream::connect(&addr).unwrap();
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(s);
    // the gateway stops at once (nothing is left in flight) rather than after the provider's
    // 60 s timeout
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    stop(&mut gw);
    assert!(started.elapsed() < Duration::from_secs(20));
    // the provider had the request and may bill it: the whole bound is charged, nothing stays
    // reserved, and the event says why
    let (spent, reserved, events) = ledger(&env);
    assert_eq!((reserved, events), (0.0, 1));
    assert!(spent > 0.0);
    let e = common::events(&env).remove(0);
    assert_eq!(
        (e["status"].as_u64(), e["reason"].as_str()),
        (Some(499), Some("client_closed"))
    );
    assert_eq!(e["cost"]["settled"], e["cost"]["estimated"]);
}

#[test]
fn a_stream_that_breaks_mid_way_ends_with_an_error_event_and_settles_what_was_sent() {
    let env = Env::new("hard-drop");
    let key = env.support_team();
    let pack = pack_for(&env, &bad_provider("drop"));
    let (mut gw, addr) = env.gateway_with(&pack, &["--upstream-timeout", "2"]);
    let body = serde_json::json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]});
    let r = post_json(&addr, "/v1/chat/completions", &key, &body, &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Hello there"), "{}", r.body);
    assert!(r.body.contains("upstream_error"), "{}", r.body);
    stop(&mut gw);
    let (spent, reserved, events) = ledger(&env);
    assert_eq!(reserved, 0.0);
    assert!(spent > 0.0, "what was streamed is charged");
    assert_eq!(events, 1);
}

#[test]
fn a_store_that_stops_answering_loses_nothing_and_each_call_is_charged_once() {
    let env = Env::new("hard-store");
    let key = env.support_team();
    let (mut gw, addr) = env.gateway(&[]);
    // a first request caches the key and holds a float on the wallet
    let r = chat(&addr, Some(&key), "gpt-4o-mini", "hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let (spent_before, _, _) = ledger(&env);
    // another process takes the database's write lock and holds it
    let db = env.store.trim_start_matches("sqlite:").to_owned();
    let mut locker = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(float(sys.argv[2]))\nc.execute('ROLLBACK')",
            &db,
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 7];
    locker
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    // served from the float, which is durably held: its settlement and event wait for the store
    let a = chat(
        &addr,
        Some(&key),
        "gpt-4o-mini",
        "hello",
        &[("X-Request-Id", "retry-me")],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    locker.wait().unwrap();
    // the same client id again is another call to the provider: its own id, charged and audited
    let b = chat(
        &addr,
        Some(&key),
        "gpt-4o-mini",
        "hello",
        &[("X-Request-Id", "retry-me")],
    );
    assert_eq!(b.status, 200, "{}", b.body);
    let id = |r: &common::Reply| {
        r.headers
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert!(id(&a).starts_with("retry-me.") && id(&b).starts_with("retry-me."));
    assert_ne!(id(&a), id(&b));
    stop(&mut gw);
    let (spent, reserved, events) = ledger(&env);
    assert_eq!(reserved, 0.0);
    assert!(
        (spent - 3.0 * spent_before).abs() < 1e-12,
        "three calls, three charges: {spent} vs {spent_before}"
    );
    assert_eq!(events, 3);
}
