//! Runs the shared conformance vectors (`conformance/vectors/*.json`) against the Rust API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::{Path, PathBuf};

use keeptrusts_core::escalation::{resolve, Resolution};
use keeptrusts_core::golden::{check, Expectation};
use keeptrusts_core::pack;
use keeptrusts_core::{
    ChatRequest, ChatResponse, Engine, MemoryEscalations, Principal, RequestContext, Stores,
};
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

fn substitute(v: &mut Value, ids: &[String]) {
    if let Some(s) = v.as_str() {
        let rep = match s {
            "$first" => ids.first(),
            "$last" => ids.last(),
            _ => return,
        };
        *v = Value::String(rep.cloned().unwrap_or_else(|| "none".into()));
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
    let store = MemoryEscalations::new();
    let stores = Stores::new(&store);
    let mut ids: Vec<String> = Vec::new();
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
                        if let Some(e) = c.get_mut("escalation_id") {
                            substitute(e, &ids);
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
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
                if !mismatches.is_empty() {
                    return Err(fail(mismatches.join("; ")));
                }
            }
            "resolve_escalation" => {
                substitute(&mut step["escalation"], &ids);
                let reviewer: Principal = serde_json::from_value(step["reviewer"].clone()).unwrap();
                let resolution: Resolution =
                    serde_json::from_value(step["resolution"].clone()).unwrap();
                let now = step["now_ms"].as_i64().unwrap_or(0);
                let got = resolve(
                    &store,
                    &reviewer,
                    step["escalation"].as_str().unwrap(),
                    resolution,
                    now,
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
            other => return Err(fail(format!("unknown op {other}"))),
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
