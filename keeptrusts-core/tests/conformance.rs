//! Runs the shared conformance vectors (`conformance/vectors/*.json`) against the Rust API.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use keeptrusts_core::admin;
use keeptrusts_core::dashboard::{self, Query};
use keeptrusts_core::directory::authenticate;
use keeptrusts_core::escalation::Resolution;
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::exchange::{Begin, Exchange, StreamEnd};
use keeptrusts_core::golden::{check, Expectation};
use keeptrusts_core::pack;
use keeptrusts_core::pricing::Usage;
use keeptrusts_core::wallet::Allocation;
use keeptrusts_core::{
    AdminError, ChatRequest, ChatResponse, Decision, Engine, MemoryStore, Principal,
    RequestContext, Stores, WalletKey, WalletStore,
};
use rust_decimal::Decimal;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pack_source(case: &Value) -> String {
    if let Some(y) = case["pack_yaml"].as_str() {
        return y.to_owned();
    }
    let name = case["pack"].as_str().expect("case names a pack");
    std::fs::read_to_string(root().join("examples/packs").join(format!("{name}.yaml"))).unwrap()
}

#[derive(Default)]
struct Ids {
    escalations: Vec<String>,
    tickets: Vec<String>,
    /// `team/email` → (secret, key id) of the keys `admin` and `authenticate` steps use.
    keys: HashMap<String, (String, String)>,
}

fn substitute(v: &mut Value, ids: &Ids) {
    if let Some(s) = v.as_str() {
        let rep = match s {
            "$first" => ids.escalations.first(),
            "$last" => ids.escalations.last(),
            "$ticket" => ids.tickets.last(),
            _ => match s.strip_prefix("$key:") {
                Some(name) => ids.keys.get(name).map(|(_, id)| id),
                None => return,
            },
        };
        *v = Value::String(rep.cloned().unwrap_or_else(|| "none".into()));
    }
}

/// The secret of the key `team/email` (issued by the host on first use).
fn key_secret(store: &MemoryStore, ids: &mut Ids, name: &str) -> Result<String, String> {
    if let Some((secret, _)) = ids.keys.get(name) {
        return Ok(secret.clone());
    }
    let (team, email) = name.split_once('/').ok_or("a key is named `team/email`")?;
    let n = u8::try_from(ids.keys.len() + 1).unwrap();
    let ctx = admin::Ctx::new(None, "default", 0, "key", [n; 32]);
    let new: admin::NewKey =
        serde_json::from_value(serde_json::json!({"team": team, "email": email})).unwrap();
    let issued = admin::create_key(store, &ctx, &new).map_err(|e| format!("key {name}: {e}"))?;
    ids.keys.insert(
        name.to_owned(),
        (issued.key.clone(), issued.info.key.id.clone()),
    );
    Ok(issued.key)
}

/// An `admin` step's actor: `null` (the host), `{"key": "team/email"}` (what that key
/// authenticates as now), or a principal.
fn admin_actor(
    store: &MemoryStore,
    ids: &mut Ids,
    actor: &Value,
    now: i64,
) -> Result<Option<Principal>, String> {
    if actor.is_null() {
        return Ok(None);
    }
    if let Some(name) = actor["key"].as_str() {
        let secret = key_secret(store, ids, name)?;
        return authenticate(store, &secret, "default", now)
            .unwrap()
            .map(Some)
            .map_err(|r| format!("the key {name} does not authenticate: {}", r.code()));
    }
    Ok(Some(serde_json::from_value(actor.clone()).unwrap()))
}

/// An `admin` step: one command; `Err` is a mismatch.
fn run_admin_step(
    store: &MemoryStore,
    ids: &mut Ids,
    step: &mut Value,
    i: usize,
) -> Result<(), String> {
    let now = step["now_ms"].as_i64().unwrap_or(0);
    let actor = admin_actor(store, ids, &step["actor"], now)?;
    if let Some(name) = step["command"]["id"]
        .as_str()
        .and_then(|s| s.strip_prefix("$key:"))
    {
        key_secret(store, ids, name)?;
    }
    for field in ["id", "team"] {
        if let Some(v) = step["command"].get_mut(field) {
            substitute(v, ids);
        }
    }
    let command: admin::Command = serde_json::from_value(step["command"].clone())
        .map_err(|e| format!("bad command {}: {e}", step["command"]))?;
    let rid = format!("admin#{i}");
    let ctx = admin::Ctx::new(actor.as_ref(), "default", now, &rid, [i as u8; 32]);
    let got = admin::execute(store, &ctx, &command);
    if let Ok(v) = &got {
        // a key the step made is known by its name from then on
        if let (Some(secret), Some(name)) = (v["key"].as_str(), step["as"].as_str()) {
            ids.keys.insert(
                name.to_owned(),
                (secret.to_owned(), v["id"].as_str().unwrap().to_owned()),
            );
        }
    }
    let got = got.err().map(|e| e.code().to_owned());
    let want = step["expect"]["error"].as_str().map(str::to_owned);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{}: expected error {want:?}, got {got:?}",
            step["command"]["op"]
        ))
    }
}

/// An `authenticate` step: what the key `team/email` is refused as now (`null`: accepted).
fn run_authenticate_step(store: &MemoryStore, ids: &mut Ids, step: &Value) -> Result<(), String> {
    let now = step["now_ms"].as_i64().unwrap_or(0);
    let secret = key_secret(store, ids, step["key"].as_str().unwrap())?;
    let got = authenticate(store, &secret, "default", now)
        .unwrap()
        .err()
        .map(|r| r.code().to_owned());
    let want = step["expect"]["refused"].as_str().map(str::to_owned);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "authenticate: expected refusal {want:?}, got {got:?}"
        ))
    }
}

/// One request through the lifecycle (`exchange`): the host is the provider (no router), as for
/// the middlewares. Returns the report every front door builds the same way: status, code, the
/// first forwarded request, the streamed text and usage chunk, and the closing's settlement.
fn exchange_report(
    engine: &Engine,
    stores: &Stores<'_>,
    store: &MemoryStore,
    step: &Value,
) -> Value {
    let principal: Principal = serde_json::from_value(step["principal"].clone()).unwrap();
    let request: ChatRequest = serde_json::from_value(step["request"].clone()).unwrap();
    let ctx: RequestContext = serde_json::from_value(step["context"].clone()).unwrap();
    let provider = &step["provider"];
    let mut report = serde_json::json!({"forwarded": null, "text": null, "usage_chunk": null});
    let mut x = match Exchange::begin(engine, None, &principal, &request, &ctx, stores).unwrap() {
        Begin::Answer(a) => {
            return finish_report(report, &a.body, a.status, &a.close, store, ctx.now_ms)
        }
        Begin::Forward(x) => x,
    };
    let call = x.next_call().unwrap();
    report["forwarded"] = serde_json::to_value(&call.request).unwrap();
    if provider.get("fail").is_some() {
        x.failed();
        assert!(x.next_call().is_none());
        let a = x.exhausted(provider["fail"].as_str().unwrap_or("failed"));
        return finish_report(report, &a.body, a.status, &a.close, store, ctx.now_ms);
    }
    if provider.get("client_gone").is_some() {
        let c = x.abandon().unwrap();
        return finish_report(report, &Value::Null, 499, &c, store, ctx.now_ms);
    }
    if let Some(chunks) = provider["stream"].as_array() {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(x.push_chunk(c));
        }
        let (rest, done) = x.finish_chunks(StreamEnd::Complete);
        out.extend(rest);
        report["text"] = Value::String(
            out.iter()
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                .collect(),
        );
        report["usage_chunk"] = out
            .iter()
            .find(|c| c.get("usage").is_some())
            .map_or(Value::Null, |c| c["usage"].clone());
        let error = out.iter().find(|c| c.get("error").is_some()).cloned();
        let status = done.error.as_ref().map_or(200, |e| e.2);
        return finish_report(
            report,
            &error.unwrap_or(Value::Null),
            status,
            &done.close,
            store,
            ctx.now_ms,
        );
    }
    let response: ChatResponse = serde_json::from_value(provider["answer"].clone()).unwrap();
    let a = x.answer(&response);
    finish_report(report, &a.body, a.status, &a.close, store, ctx.now_ms)
}

/// Writes the closing and completes the report.
fn finish_report(
    mut report: Value,
    body: &Value,
    status: u16,
    close: &event::Closing,
    store: &MemoryStore,
    now: i64,
) -> Value {
    close.clone().commit(store, Some(store), now).unwrap();
    report["status"] = status.into();
    report["code"] = body["error"]["code"].clone();
    report["body"] = body.clone();
    report["settled"] = serde_json::to_value(close.actual).unwrap();
    let cost = close.draft.cost.as_ref();
    report["overrun"] = cost.is_some_and(|c| c.overrun).into();
    report["unmetered"] = cost.is_some_and(|c| c.unmetered).into();
    report["event_status"] = close.draft.status.into();
    report
}

/// Compares a report with a step's `expect`: `forwarded` as a subset, `settled` as a decimal,
/// `body_excludes` as text the body must not contain, the rest as equal JSON.
fn report_mismatches(report: &Value, expect: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (k, want) in expect.as_object().unwrap() {
        let got = &report[k];
        let ok = match k.as_str() {
            "forwarded" => want.as_object().unwrap().iter().all(|(f, v)| &got[f] == v),
            "settled" => dec(got) == dec(want),
            "body_excludes" => !report["body"].to_string().contains(want.as_str().unwrap()),
            "called" => report["forwarded"].is_null() != want.as_bool().unwrap(),
            _ => got == want,
        };
        if !ok {
            out.push(format!("{k}: expected {want}, got {got}"));
        }
    }
    out
}

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().map(|s| s.parse().unwrap())
}

/// The last evaluation: what `complete` closes.
struct Evaluated {
    principal: Principal,
    request_id: String,
    model: Option<String>,
    decision: Decision,
}

/// Runs a wallet, ticket, event or dashboard step; `Err` is a mismatch.
fn run_store_step(
    store: &MemoryStore,
    step: &Value,
    last: Option<&Evaluated>,
    ids: &Ids,
) -> Result<(), String> {
    let now = step["now_ms"].as_i64().unwrap_or(0);
    let expect = &step["expect"];
    let want_error = expect["error"].as_str().map(str::to_owned);
    let error_check = |got: Option<String>| {
        if got == want_error {
            Ok(())
        } else {
            Err(format!("expected error {want_error:?}, got {got:?}"))
        }
    };
    match step["op"].as_str().unwrap() {
        "allocate" => {
            let actor: Principal = serde_json::from_value(step["actor"].clone()).unwrap();
            let ctx = admin::Ctx::new(Some(&actor), "default", now, "allocate", [0; 32]);
            let got = serde_json::from_value::<Allocation>(step["allocation"].clone())
                .map_err(|e| AdminError::Invalid(e.to_string()))
                .and_then(|a| admin::allocate(store, &ctx, &a))
                .err()
                .map(|e| e.code().to_owned());
            error_check(got)
        }
        "balance" => {
            let key: WalletKey = step["wallet"].as_str().unwrap().parse().unwrap();
            let w = WalletStore::get(store, &key, now)
                .unwrap()
                .ok_or_else(|| format!("no wallet {key}"))?;
            let got = [w.allocated, w.spent, w.reserved, w.available()];
            let want =
                ["allocated", "spent", "reserved", "available"].map(|f| dec(&expect[f]).unwrap());
            if got == want {
                Ok(())
            } else {
                Err(format!("{key}: expected {want:?}, got {got:?}"))
            }
        }
        "complete" => {
            let e = last.ok_or("complete before any evaluate")?;
            let served = if step["served"].is_null() {
                None
            } else {
                let usage: Usage = serde_json::from_value(step["served"]["usage"].clone()).unwrap();
                Some((step["served"]["target"].as_str().unwrap(), usage))
            };
            match event::complete(
                store,
                &e.principal,
                &e.decision,
                &e.request_id,
                e.model.as_deref(),
                served,
                now,
            ) {
                Err(err) => error_check(Some(err.code().to_owned())),
                Ok(c) => {
                    error_check(None)?;
                    let charged = c.settlement.as_ref().map(|s| s.charged);
                    if expect.get("charged").is_some() && charged != dec(&expect["charged"]) {
                        return Err(format!(
                            "charged {charged:?}, expected {}",
                            expect["charged"]
                        ));
                    }
                    if let Some(r) = expect["replay"].as_bool() {
                        if c.settlement.as_ref().map(|s| s.replay) != Some(r) {
                            return Err(format!("replay: expected {r}"));
                        }
                    }
                    if let Some(ev) = expect["event"].as_bool() {
                        if c.event.is_some() != ev {
                            return Err(format!("event written: expected {ev}"));
                        }
                    }
                    Ok(())
                }
            }
        }
        "resolve_ticket" => {
            let mut t = step["ticket"].clone();
            substitute(&mut t, ids);
            let id = t.as_str().unwrap();
            let reviewer: Principal = serde_json::from_value(step["reviewer"].clone()).unwrap();
            let rid = format!("resolve_ticket@{now}:{id}");
            let ctx = admin::Ctx::new(Some(&reviewer), "default", now, &rid, [0; 32]);
            let approve = step["resolution"].as_str() == Some("approve");
            let got = admin::resolve_ticket(store, &ctx, id, approve, step["charge_to"].as_str())
                .err()
                .map(|e| e.code().to_owned());
            error_check(got)
        }
        "verify" => {
            let org = step["org"].as_str().unwrap();
            let opts = event::VerifyOptions {
                now: 0,
                default_days: 365,
                expect_head: None,
            };
            let report = event::check(store, org, &opts).unwrap();
            let got = (report.valid, report.events as u64);
            let want = (
                expect["valid"].as_bool().unwrap(),
                expect["events"].as_u64().unwrap(),
            );
            if got == want {
                Ok(())
            } else {
                Err(format!("verify: expected {want:?}, got {got:?}"))
            }
        }
        "dashboard" => {
            let viewer: Principal = serde_json::from_value(step["viewer"].clone()).unwrap();
            let query: Query = serde_json::from_value(serde_json::json!({
                "team": step["team"], "section": step["section"]
            }))
            .unwrap();
            let events = EventStore::list(store, "default").unwrap();
            let got = dashboard::view(&viewer, &query, &events)
                .err()
                .map(|e| e.code().to_owned());
            error_check(got)
        }
        other => Err(format!("unknown op {other}")),
    }
}

fn forwarded_checks(forwarded: &Value, expect: &Value) -> Vec<String> {
    let text = forwarded.to_string();
    let mut out = Vec::new();
    for s in expect["forwarded_contains"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if !text.contains(s.as_str().unwrap()) {
            out.push(format!("forwarded lacks {s}"));
        }
    }
    for s in expect["forwarded_excludes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if text.contains(s.as_str().unwrap()) {
            out.push(format!("forwarded still holds {s}"));
        }
    }
    out
}

fn run_case(case: &Value) -> Result<(), String> {
    if let Some(rows) = case.get("expect_envelopes") {
        for row in rows.as_array().unwrap() {
            let status = row["status"].as_u64().unwrap() as u16;
            let (code, rid) = (
                row["code"].as_str().unwrap(),
                row["request_id"].as_str().unwrap(),
            );
            let got = keeptrusts_core::decision::error_envelope(status, code, "m", rid);
            let want = serde_json::json!({"error": {"type": row["type"], "code": code,
                "message": "m", "request_id": rid}});
            if got != want {
                return Err(format!("{status}: expected {want}, got {got}"));
            }
        }
        return Ok(());
    }
    let src = pack_source(case);
    if let Some(exp) = case.get("expect_pack_error") {
        let err = match pack::parse(&src) {
            Ok(_) => return Err("pack was accepted".into()),
            Err(e) => e,
        };
        let first = &err.errors[0];
        let got = (
            first.code.as_str(),
            first.path.as_str(),
            first.line,
            first.column,
        );
        let want = (
            exp["code"].as_str().unwrap(),
            exp["path"].as_str().unwrap(),
            exp["line"].as_u64().unwrap() as u32,
            exp["column"].as_u64().unwrap() as u32,
        );
        return if got == want {
            Ok(())
        } else {
            Err(format!("expected {want:?}, got {got:?} ({first})"))
        };
    }
    if let Some(exp) = case.get("expect_warnings") {
        let parsed = pack::parse(&src).map_err(|e| format!("pack rejected: {e}"))?;
        let mut got: Vec<&str> = parsed.warnings.iter().map(|w| w.code.as_str()).collect();
        got.sort_unstable();
        let want: Vec<&str> = exp
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        return if got == want {
            Ok(())
        } else {
            Err(format!("warnings: expected {want:?}, got {got:?}"))
        };
    }
    let engine = Engine::from_yaml(&src).map_err(|e| format!("pack rejected: {e}"))?;
    let store = MemoryStore::new();
    let mut stores = Stores::new(&store);
    if case["budget"].as_bool() == Some(true) {
        stores = stores.with_budget(&store, &store);
    }
    let mut ids = Ids::default();
    let mut last: Option<Evaluated> = None;
    let name = case["name"].as_str().unwrap();
    for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
        let mut step = step.clone();
        let fail = |m: String| format!("step {i}: {m}");
        let op_name = step["op"].as_str().unwrap().to_owned();
        match op_name.as_str() {
            op @ ("evaluate" | "evaluate_output") => {
                let principal: Principal =
                    serde_json::from_value(step["principal"].clone()).unwrap();
                let mut ctx = match step.get_mut("context") {
                    Some(c) => {
                        for field in ["escalation_id", "ticket_id"] {
                            if let Some(e) = c.get_mut(field) {
                                substitute(e, &ids);
                            }
                        }
                        serde_json::from_value::<RequestContext>(c.clone()).unwrap()
                    }
                    None => RequestContext::new("", 0),
                };
                if ctx.request_id.is_empty() {
                    ctx.request_id = format!("{name}#{i}");
                }
                if let Some(e) = step["expect"].get_mut("escalation_id") {
                    substitute(e, &ids);
                }
                let mut expect_json = step["expect"].clone();
                let obj = expect_json.as_object_mut().unwrap();
                obj.remove("forwarded_contains");
                obj.remove("forwarded_excludes");
                let expect: Expectation = serde_json::from_value(expect_json).unwrap();
                let (decision, forwarded) = if op == "evaluate" {
                    let request: ChatRequest =
                        serde_json::from_value(step["request"].clone()).unwrap();
                    let d = engine
                        .evaluate(&principal, &request, &ctx, &stores)
                        .map_err(|e| fail(format!("evaluate failed: {e}")))?;
                    let fwd = serde_json::to_value(d.request.as_ref().unwrap_or(&request)).unwrap();
                    last = Some(Evaluated {
                        principal: principal.clone(),
                        request_id: ctx.request_id.clone(),
                        model: request.model.clone(),
                        decision: d.clone(),
                    });
                    (d, fwd)
                } else {
                    let response: ChatResponse =
                        serde_json::from_value(step["response"].clone()).unwrap();
                    let d = engine
                        .evaluate_output(&principal, &response, &ctx)
                        .map_err(|e| fail(format!("evaluate_output failed: {e}")))?;
                    let fwd =
                        serde_json::to_value(d.response.as_ref().unwrap_or(&response)).unwrap();
                    (d, fwd)
                };
                let mut mismatches = check(&decision, &expect);
                mismatches.extend(forwarded_checks(&forwarded, &step["expect"]));
                if let Some(id) = &decision.escalation_id {
                    if !ids.escalations.contains(id) {
                        ids.escalations.push(id.clone());
                    }
                }
                if let Some(id) = &decision.ticket_id {
                    ids.tickets.push(id.clone());
                }
                if !mismatches.is_empty() {
                    return Err(fail(mismatches.join("; ")));
                }
            }
            "admin" => run_admin_step(&store, &mut ids, &mut step, i).map_err(fail)?,
            "authenticate" => run_authenticate_step(&store, &mut ids, &step).map_err(fail)?,
            "resolve_escalation" => {
                substitute(&mut step["escalation"], &ids);
                let reviewer: Principal = serde_json::from_value(step["reviewer"].clone()).unwrap();
                let resolution: Resolution =
                    serde_json::from_value(step["resolution"].clone()).unwrap();
                let now = step["now_ms"].as_i64().unwrap_or(0);
                let rid = format!("resolve_escalation#{i}");
                let ctx = admin::Ctx::new(Some(&reviewer), "default", now, &rid, [0; 32]);
                let got = admin::resolve_escalation(
                    &store,
                    &ctx,
                    step["escalation"].as_str().unwrap(),
                    resolution,
                )
                .err()
                .map(|e| e.code().to_owned());
                let want = step["expect"]["error"].as_str().map(str::to_owned);
                if got != want {
                    return Err(fail(format!(
                        "resolve: expected error {want:?}, got {got:?}"
                    )));
                }
            }
            "exchange" => {
                let report = exchange_report(&engine, &stores, &store, &step);
                let mismatches = report_mismatches(&report, &step["expect"]);
                if !mismatches.is_empty() {
                    return Err(fail(mismatches.join("; ")));
                }
            }
            _ => run_store_step(&store, &step, last.as_ref(), &ids).map_err(fail)?,
        }
    }
    Ok(())
}

#[test]
fn conformance_vectors() {
    let dir = root().join("conformance/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            total += 1;
            if let Err(e) = run_case(case) {
                failures.push(format!(
                    "{} / {}: {e}",
                    file.file_name().unwrap().to_string_lossy(),
                    case["name"].as_str().unwrap()
                ));
            }
        }
    }
    assert!(total >= 40, "only {total} conformance cases");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
