//! `kt policy lint` / `kt pack validate` / `kt policy test` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("kt runs")
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kt-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lint_accepts_the_example_packs_and_prints_team_chains() {
    for pack in [
        "multi-team-governance",
        "per-team-targeting",
        "rbac",
        "consumer-groups",
    ] {
        let o = kt(&[
            "policy",
            "lint",
            "--file",
            &format!("examples/packs/{pack}.yaml"),
        ]);
        assert_eq!(o.status.code(), Some(0), "{pack}: {}", stderr(&o));
        assert!(stdout(&o).contains("valid pack"), "{pack}");
    }
    let o = kt(&[
        "policy",
        "lint",
        "--file",
        "examples/packs/per-team-targeting.yaml",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("team engineering: rbac -> audit-logger"),
        "{out}"
    );
    assert!(
        out.contains("team support: rbac -> pii-detector -> audit-logger"),
        "{out}"
    );
    assert!(
        out.contains(
            "team legal: pii-detector -> hipaa-phi-detector -> human-oversight -> audit-logger"
        ),
        "{out}"
    );
    assert!(out.contains("everyone else: audit-logger"), "{out}");

    let o = kt(&[
        "pack",
        "validate",
        "--file",
        "examples/packs/per-team-targeting.yaml",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(
        v["chains"]["engineering"],
        serde_json::json!(["rbac", "audit-logger"])
    );
    assert_eq!(
        v["chains"]["support"],
        serde_json::json!(["rbac", "pii-detector", "audit-logger"])
    );
    assert_eq!(
        v["chains"]["legal"],
        serde_json::json!([
            "pii-detector",
            "hipaa-phi-detector",
            "human-oversight",
            "audit-logger"
        ])
    );
    assert_eq!(v["default_chain"], serde_json::json!(["audit-logger"]));
}

#[test]
fn lint_rejects_every_malformed_vector_with_code_path_and_position() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("conformance/vectors/pack_errors.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let Some(exp) = case.get("expect_pack_error") else {
            continue;
        };
        let name = case["name"].as_str().unwrap();
        let file = temp_file("pack.yaml", case["pack_yaml"].as_str().unwrap());
        let file_s = file.to_str().unwrap();
        let (code, path, line, col) = (
            exp["code"].as_str().unwrap(),
            exp["path"].as_str().unwrap(),
            exp["line"].as_u64().unwrap(),
            exp["column"].as_u64().unwrap(),
        );

        let o = kt(&["policy", "lint", "--file", file_s]);
        assert_eq!(o.status.code(), Some(2), "{name}: exit status");
        let first = stderr(&o).lines().next().unwrap_or_default().to_owned();
        let located = if path.is_empty() {
            format!("{file_s}:{line}:{col}: error[{code}]")
        } else {
            format!("{file_s}:{line}:{col}: error[{code}] {path}:")
        };
        assert!(
            first.starts_with(&located),
            "{name}: expected `{located}`, got `{first}`"
        );

        let o = kt(&["policy", "lint", "--file", file_s, "--json"]);
        assert_eq!(o.status.code(), Some(2), "{name}: exit status (json)");
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["valid"], false);
        let e = &v["errors"][0];
        assert_eq!(e["code"], code, "{name}");
        assert_eq!(e["path"], path, "{name}");
        assert_eq!(e["line"], line, "{name}");
        assert_eq!(e["column"], col, "{name}");
        assert_eq!(e["severity"], "error", "{name}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} malformed packs");
}

#[test]
fn lint_suggests_the_key_meant() {
    let file = temp_file(
        "pack.yaml",
        "pack: { name: x, version: \"1.0\" }\npolicies:\n  chain: [pii-detector]\npolicy:\n  pii-detector:\n    marker_fromat: label\n",
    );
    let o = kt(&["policy", "lint", "--file", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("unknown key `marker_fromat`"), "{err}");
    assert!(err.contains("expected one of `action`"), "{err}");
}

#[test]
fn lint_of_a_missing_file_is_exit_1() {
    let o = kt(&["policy", "lint", "--file", "no/such/pack.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read no/such/pack.yaml"));
}

#[test]
fn lint_warns_about_teams_the_data_does_not_know() {
    let o = kt(&[
        "policy",
        "lint",
        "--file",
        "examples/packs/per-team-targeting.yaml",
        "--known-teams",
        "engineering,support",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty());
    assert!(warnings.iter().all(|w| w["code"] == "W002"));
    assert!(warnings
        .iter()
        .all(|w| w["message"].as_str().unwrap().contains("`legal`")));
}

const TARGETING: &str = "examples/packs/per-team-targeting.yaml";

/// `kt policy test --file PACK --cases CASES` and then `extra`.
fn policy_test(pack: &str, cases: &str, extra: &[&str]) -> Output {
    let mut args = vec!["policy", "test", "--file", pack, "--cases", cases];
    args.extend_from_slice(extra);
    kt(&args)
}

#[test]
fn policy_test_runs_the_golden_cases() {
    for pack in [
        "multi-team-governance",
        "per-team-targeting",
        "rbac",
        "consumer-groups",
    ] {
        let cases = format!("examples/packs/cases/{pack}");
        let o = policy_test(&format!("examples/packs/{pack}.yaml"), &cases, &[]);
        assert_eq!(o.status.code(), Some(0), "{pack}: {}", stdout(&o));
        assert!(stdout(&o).contains(" passed, 0 failed"), "{pack}");
    }
}

#[test]
fn policy_test_reports_a_failing_case_and_exits_1() {
    let cases = temp_file(
        "cases.yaml",
        "- name: wrong on purpose\n  principal: { team: support, role: member, authenticated: true }\n  request: { model: gpt-4o, messages: [{ role: user, content: \"a@b.io\" }] }\n  expect: { verdict: allow, status: 200 }\n",
    );
    let o = policy_test(TARGETING, cases.to_str().unwrap(), &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["failed"], 1);
    assert_eq!(v["cases"][0]["verdict"], "redact");
    assert!(v["cases"][0]["mismatches"][0]
        .as_str()
        .unwrap()
        .contains("verdict: expected allow, got redact"));
}

#[test]
fn policy_test_rejects_a_malformed_case_file_with_its_position() {
    let cases = temp_file(
        "cases.yaml",
        "- name: typo\n  principal: { team: support }\n  request: { messages: [] }\n  expct: { verdict: allow }\n",
    );
    let o = policy_test(TARGETING, cases.to_str().unwrap(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":4:3: error[E002] [0].expct:"),
        "{}",
        stderr(&o)
    );
}
