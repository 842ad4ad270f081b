//! A newcomer's first run: `kt gateway run --bootstrap seed` on an empty store, the store options
//! before the subcommand, dashboards as text, an example in every `--help`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, missing_docs)]

use std::process::Command;

mod common;
use common::{chat, stop, Env};

fn kt(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kt"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bootstrap_seed_makes_the_seeds_org_once_and_its_keys_work() {
    let env = Env::new("first-run");
    let (mut gw, addr) = env.gateway(&["--bootstrap", "seed"]);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(log.contains("shown once"), "{log}");
    assert!(
        log.contains(&format!("console: http://{addr}/console")),
        "{log}"
    );
    let key_of = |email: &str| -> String {
        log.lines()
            .find(|l| l.contains(email))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("{email}: {log}"))
            .to_owned()
    };
    let ask = |email: &str, text: &str| {
        let key = key_of(email);
        chat(&addr, Some(&key), "gpt-4o-mini", text, &[])
    };
    // support's member is redacted by support's chain and charged to support's wallet
    let r = ask("agent@yourco.com", "mail jane@example.com");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("[EMAIL]"), "{}", r.body);
    // legal's member needs a review
    let r = ask("counsel@yourco.com", "review this");
    assert_eq!(r.status, 409, "{}", r.body);
    stop(&mut gw);
    let teams = env.ok(&["team", "list"]);
    for t in ["platform", "engineering", "support", "legal"] {
        assert!(teams.contains(t), "{teams}");
    }
    assert!(teams.contains("root@yourco.com (owner)"), "{teams}");
    assert!(teams.contains("support-lead@yourco.com (admin)"), "{teams}");
    let balance = env.ok(&["wallet", "balance"]);
    assert!(balance.contains("team:legal  allocated 1000"), "{balance}");
    // a second start changes nothing
    let (mut gw, _) = env.gateway(&["--bootstrap", "seed"]);
    stop(&mut gw);
    let log = std::fs::read_to_string(env.dir.join("gateway.log")).unwrap();
    assert!(
        log.contains("already has teams; nothing was created"),
        "{log}"
    );
    assert_eq!(env.ok(&["team", "list"]), teams);
}

#[test]
fn store_options_come_before_or_after_the_subcommand_and_dashboards_print_tables() {
    let env = Env::new("first-run-cli");
    let (code, _, err) = kt(&["--store", &env.store, "team", "create", "--name", "Support"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = kt(&["--store", &env.store, "--json", "team", "list"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["teams"][0]["slug"], "support", "{out}");
    env.add_member("support", "a@yourco.com", None);
    let section = |name| {
        [
            "dashboard",
            "--as",
            "a@yourco.com",
            "--team",
            "support",
            "--section",
            name,
        ]
    };
    let text = env.ok(&section("usage"));
    assert!(text.contains("(no usage yet"), "{text}");
    let mut args = section("spend").to_vec();
    args.extend(["--json", "--store", &env.store]);
    let (code, json, err) = kt(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["section"], "spend");
    let text = env.ok(&section("spend"));
    assert!(text.starts_with("total spent: 0"), "{text}");
    assert!(text.contains("model  spent"), "{text}");
}

/// The commands a `--help` text lists under `Commands:`, without `help`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let (_, top, _) = kt(&["--help"]);
    let commands = commands_in(&top);
    assert!(commands.len() >= 10, "{top}");
    let mut missing = Vec::new();
    for c in &commands {
        let (_, help, _) = kt(&[c, "--help"]);
        let subs = commands_in(&help);
        if subs.is_empty() && !help.contains("Example:") {
            missing.push(c.clone());
        }
        for s in subs {
            let (_, help, _) = kt(&[c, &s, "--help"]);
            if !help.contains("Example:\n  kt ") {
                missing.push(format!("{c} {s}"));
            }
        }
    }
    assert!(missing.is_empty(), "no example in the help of: {missing:?}");
}
