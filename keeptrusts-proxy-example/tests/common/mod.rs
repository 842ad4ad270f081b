//! Helpers shared by the gateway's end-to-end tests: a fresh SQLite store set up with the `kt`
//! CLI, `kt gateway run` on a free port, plain HTTP/1.1 requests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Env {
    pub dir: PathBuf,
    pub store: String,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("kt-gw-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = format!("sqlite:{}", dir.join("kt.db").display());
        Env { dir, store }
    }

    pub fn kt(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_kt"))
            .args(args)
            .args(["--store", &self.store])
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.kt(args);
        assert_eq!(code, 0, "kt {args:?}: {err}");
        out
    }

    pub fn key(&self, team: &str, email: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&key_args(team, email, &["--json"]))).unwrap();
        v["key"].as_str().unwrap().to_owned()
    }

    /// Adds `email` to `team` (as `role`, else the default member role) with `kt team
    /// add-member`.
    pub fn add_member(&self, team: &str, email: &str, role: Option<&str>) {
        let mut args = vec!["team", "add-member", "--team", team, "--email", email];
        if let Some(role) = role {
            args.extend(["--role", role]);
        }
        self.ok(&args);
    }

    /// [`Env::add_member`], then a key for the new member.
    pub fn member_key(&self, team: &str, email: &str, role: Option<&str>) -> String {
        self.add_member(team, email, role);
        self.key(team, email)
    }

    /// `kt wallet allocate --team TEAM --amount AMOUNT` (USD, no period).
    pub fn allocate(&self, team: &str, amount: &str) {
        self.ok(&["wallet", "allocate", "--team", team, "--amount", amount]);
    }

    /// Writes `text` as `pack.yaml` in the environment's folder; returns its path.
    pub fn write_pack(&self, text: &str) -> PathBuf {
        let p = self.dir.join("pack.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `kt gateway run --pack PACK` on a free port, for a pack it must refuse: (exit code,
    /// stdout, stderr).
    pub fn gateway_run(&self, pack: &Path) -> (i32, String, String) {
        let pack = pack.to_str().unwrap();
        self.kt(&["gateway", "run", "--pack", pack, "--listen", "127.0.0.1:0"])
    }

    /// A team `support` with the member agent@yourco.com and 5.00 USD; returns the member's key.
    pub fn support_team(&self) -> String {
        self.ok(&["team", "create", "--name", "Support"]);
        let key = self.member_key("support", "agent@yourco.com", None);
        self.allocate("support", "5");
        key
    }

    pub fn gateway(&self, extra: &[&str]) -> (Child, String) {
        self.gateway_with(
            &root().join("examples/packs/gateway-quickstart.yaml"),
            extra,
        )
    }

    pub fn gateway_with(&self, pack: &Path, extra: &[&str]) -> (Child, String) {
        self.gateway_env(pack, extra, &[])
    }

    /// [`Env::gateway_with`], with environment variables for the gateway (secrets).
    pub fn gateway_env(
        &self,
        pack: &Path,
        extra: &[&str],
        vars: &[(&str, &str)],
    ) -> (Child, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kt"))
            .envs(vars.iter().copied())
            .args([
                "gateway",
                "run",
                "--pack",
                pack.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--store",
                &self.store,
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // its whole log goes to gateway.log in the test's directory
        let mut log = std::fs::File::create(self.dir.join("gateway.log")).unwrap();
        let addr = loop {
            let line = lines
                .next()
                .expect("the gateway prints its address")
                .unwrap();
            let _ = writeln!(log, "{line}");
            if let Some(a) = line.strip_prefix("kt gateway: listening on http://") {
                break a.to_owned();
            }
        };
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        (child, addr)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Type: application/json\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut r = rest;
        while let Some((size, tail)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            r = &tail[n + 2..];
        }
        out
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers: head.to_owned(),
        body,
    }
}

/// [`http`] with `key` as the bearer key and no other header.
pub fn call(addr: &str, method: &str, path: &str, key: &str, body: &[u8]) -> Reply {
    http(addr, method, path, Some(key), &[], body)
}

/// `GET path` with `key`.
pub fn get(addr: &str, path: &str, key: &str) -> Reply {
    call(addr, "GET", path, key, b"")
}

/// POSTs `body` as JSON to `path` with `key` as the bearer key.
pub fn post_json(
    addr: &str,
    path: &str,
    key: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    http(
        addr,
        "POST",
        path,
        Some(key),
        headers,
        body.to_string().as_bytes(),
    )
}

/// The `data:` payloads of an SSE body, parsed.
pub fn sse(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

/// What a streamed chat completion sent in `field` of its deltas (`content`, `refusal`),
/// joined.
pub fn streamed(body: &str, field: &str) -> String {
    sse(body)
        .iter()
        .filter_map(|v| v["choices"][0]["delta"][field].as_str().map(str::to_owned))
        .collect()
}

pub fn chat(
    addr: &str,
    key: Option<&str>,
    model: &str,
    text: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]});
    http(
        addr,
        "POST",
        "/v1/chat/completions",
        key,
        headers,
        body.to_string().as_bytes(),
    )
}

/// The PostgreSQL server from `KEEPTRUSTS_TEST_POSTGRES_URL` (`.ci/run` sets it). Without it
/// a test fails, unless `KEEPTRUSTS_SKIP_POSTGRES=1` makes skipping a decision: a missing server
/// never passes silently.
pub fn pg_url() -> Option<String> {
    let url = std::env::var("KEEPTRUSTS_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        assert!(
            std::env::var("KEEPTRUSTS_SKIP_POSTGRES").as_deref() == Ok("1"),
            "KEEPTRUSTS_TEST_POSTGRES_URL is not set (KEEPTRUSTS_SKIP_POSTGRES=1 skips the PostgreSQL tests)"
        );
        eprintln!("KEEPTRUSTS_SKIP_POSTGRES=1: a PostgreSQL test not run");
    }
    url
}

/// Runs `sql` with `psql` on `url`; a failure fails the test with psql's message.
pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql {sql}: {err}");
}

/// An [`Env`] named `name` whose store is database `db`, made afresh on `url`'s server.
pub fn pg_env(url: &str, name: &str, db: &str) -> Env {
    psql(url, &format!("DROP DATABASE IF EXISTS {db}"));
    psql(url, &format!("CREATE DATABASE {db}"));
    let (server, _) = url.rsplit_once('/').expect("a URL ending in /DATABASE");
    let mut env = Env::new(name);
    env.store = format!("{server}/{db}");
    env
}

/// `kt key create --team TEAM --email EMAIL` and then `extra`.
pub fn key_args<'a>(team: &'a str, email: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["key", "create", "--team", team, "--email", email];
    args.extend_from_slice(extra);
    args
}

/// An org of three teams: `owner_team` (its owner `owner`), `Support` (the admin lead@, the
/// members ana@ and bo@, and 5.00 USD) and `Legal` (the member counsel@); returns the keys of the
/// owner, lead, ana, bo and counsel.
pub fn org(env: &Env, owner_team: &str, owner: &str) -> [String; 5] {
    for name in [owner_team, "Support", "Legal"] {
        env.ok(&["team", "create", "--name", name]);
    }
    let slug = owner_team.to_lowercase();
    let members = [
        (slug.as_str(), owner, "owner"),
        ("support", "lead@yourco.com", "admin"),
        ("support", "ana@yourco.com", "member"),
        ("support", "bo@yourco.com", "member"),
        ("legal", "counsel@yourco.com", "member"),
    ];
    for (team, email, role) in members {
        env.add_member(team, email, Some(role));
    }
    env.allocate("support", "5");
    members.map(|(team, email, _)| env.key(team, email))
}

/// SIGTERM, then wait: the gateway finishes what is in flight (settlements included).
pub fn stop(gw: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status();
    let status = gw.wait().unwrap();
    assert!(status.success(), "a clean shutdown exits 0: {status}");
}

/// (spent, reserved) of the support wallet, and the number of events if the chain verifies.
pub fn ledger(env: &Env) -> (f64, f64, usize) {
    let v: Value = serde_json::from_str(&env.ok(&["wallet", "balance", "--json"])).unwrap();
    let w = v
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wallet"] == "team:support")
        .unwrap()
        .clone();
    let num = |x: &Value| {
        x.as_str()
            .map_or_else(|| x.as_f64().unwrap(), |s| s.parse().unwrap())
    };
    (num(&w["spent"]), num(&w["reserved"]), request_events(env))
}

/// How many events of the chain are requests (not administrative actions), once it verifies.
pub fn request_events(env: &Env) -> usize {
    let verified = env.ok(&["events", "verify"]);
    assert!(
        verified.starts_with("ok: "),
        "the chain verifies: {verified}"
    );
    events(env).len()
}

/// What a fake provider received: the request line and headers (lowercase) and the JSON body.
pub struct Received {
    pub head: String,
    pub body: Value,
}

/// Reads one HTTP/1.1 request from `conn`: its head, lower-cased, and the body its
/// `content-length` announces. `None` if the peer closes before the whole request came.
pub fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    let mut more = |req: &mut Vec<u8>| {
        let n = conn.read(&mut buf).unwrap_or(0);
        req.extend_from_slice(&buf[..n]);
        n > 0
    };
    let start = loop {
        if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if !more(&mut req) {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&req[..start]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while req.len() < start + len {
        if !more(&mut req) {
            return None;
        }
    }
    Some((head, req[start..start + len].to_vec()))
}

/// A provider on a local port: `answer` gets each request (after it is recorded in the returned
/// list) and writes the whole HTTP response itself (so it can stream, pause or misbehave).
pub fn provider(
    answer: impl Fn(&mut TcpStream, &Received) + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = std::sync::Arc::new(answer);
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = std::sync::Arc::clone(&answer);
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                let Some((head, body)) = read_request(&mut conn) else {
                    return;
                };
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock().unwrap().push(body.clone());
                answer(&mut conn, &Received { head, body });
            });
        }
    });
    (addr, seen)
}

/// Writes a JSON answer.
pub fn respond_json(conn: &mut TcpStream, status: u16, v: &Value) {
    let b = v.to_string();
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    );
}

/// Writes an SSE stream of these events, then `[DONE]`.
pub fn respond_sse(conn: &mut TcpStream, events: &[Value]) {
    let _ = conn.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    for ev in events {
        let _ = conn.write_all(format!("data: {ev}\n\n").as_bytes());
        let _ = conn.flush();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = conn.write_all(b"data: [DONE]\n\n");
}

/// The request events `kt events export` prints, oldest first (administrative actions left out).
pub fn events(env: &Env) -> Vec<Value> {
    all_events(env)
        .into_iter()
        .filter(|e| e.get("admin").is_none())
        .collect()
}

/// Every event `kt events export` prints, oldest first.
pub fn all_events(env: &Env) -> Vec<Value> {
    env.ok(&["events", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The output limit a body allows (unbounded when it sets none).
pub fn limit(b: &Value) -> u64 {
    b["max_tokens"]
        .as_u64()
        .or_else(|| b["max_completion_tokens"].as_u64())
        .unwrap_or(100_000)
}

pub fn said(b: &Value) -> String {
    b["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A provider that bills the most each body allows: one token per byte of its messages (the
/// worst tokenizer there is) and every output token it may produce, for every choice. What it
/// does is chosen by the prompt: `no-usage`, `overbill`, `fail-first` (the first model fails),
/// `tool-stream`; `down` makes every call fail.
pub fn max_biller(
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    provider(move |conn: &mut TcpStream, r: &Received| {
        let b = &r.body;
        let text = said(b);
        let n = b["n"].as_u64().unwrap_or(1);
        let prompt = b["messages"].to_string().len() as u64;
        let mut completion = limit(b) * n;
        if down.load(std::sync::atomic::Ordering::SeqCst)
            || (text.contains("fail-first") && b["model"] == "m-cheap")
        {
            respond_json(
                conn,
                500,
                &serde_json::json!({"error": {"message": "overloaded"}}),
            );
            return;
        }
        if text.contains("overbill") {
            completion += 100_000;
        }
        let usage = serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion});
        if b["stream"] == true {
            let chunk = |delta: Value, finish: Value| serde_json::json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            let mut evs = if text.contains("tool-stream") {
                vec![
                    chunk(
                        serde_json::json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]}),
                        Value::Null,
                    ),
                    chunk(
                        serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"email\": \"ann@exa"}}]}),
                        Value::Null,
                    ),
                    chunk(
                        serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": "mple.com\"}"}}]}),
                        Value::Null,
                    ),
                    chunk(serde_json::json!({}), serde_json::json!("tool_calls")),
                ]
            } else {
                vec![
                    chunk(serde_json::json!({"content": "Hello "}), Value::Null),
                    chunk(serde_json::json!({"content": "there"}), Value::Null),
                    chunk(serde_json::json!({}), serde_json::json!("stop")),
                ]
            };
            // only when asked, as OpenAI does
            if b["stream_options"]["include_usage"] == true {
                evs.push(
                    serde_json::json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7}}),
                );
            }
            respond_sse(conn, &evs);
            return;
        }
        let mut answer = serde_json::json!({"id": "c", "object": "chat.completion", "model": b["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Reply to ann@example.com"}, "finish_reason": "stop"}]});
        if !text.contains("no-usage") {
            answer["usage"] = usage;
        }
        respond_json(conn, 200, &answer);
    })
}
