//! `kt quickstart`: the first run in one command. On an empty store it sets up the seed's org
//! (an owner; engineering, support and legal with one admin and one member each; wallets),
//! prints the keys once and the console's address, then runs `kt gateway run` on the example
//! pack. On a store that has teams already it only runs the gateway.

#![allow(clippy::indexing_slicing)] // `serde_json::Value["field"]` is `Null` when absent

use clap::{Args, FromArgMatches};
use keeptrusts_core::admin::{self, Command, Ctx};
use serde_json::json;

use crate::backend;
use crate::gateway;

/// `kt quickstart` options.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// The policy pack.
    #[arg(long, default_value = "examples/packs/gateway-quickstart.yaml")]
    pack: String,
    /// `sqlite:PATH` or `postgres://user@host:port/db`.
    #[arg(long, default_value = backend::DEFAULT_STORE)]
    store: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:41002")]
    listen: String,
    /// Organization id.
    #[arg(long, default_value = "default")]
    org_id: String,
}

/// The seed's org: (team, its members as (email, role)), and the team wallets (amount, monthly).
const ORG: [(&str, &[(&str, &str)]); 4] = [
    ("Platform", &[("root@yourco.com", "owner")]),
    (
        "Engineering",
        &[
            ("eng-lead@yourco.com", "admin"),
            ("dev@yourco.com", "member"),
        ],
    ),
    (
        "Support",
        &[
            ("support-lead@yourco.com", "admin"),
            ("agent@yourco.com", "member"),
        ],
    ),
    (
        "Legal",
        &[
            ("legal-lead@yourco.com", "admin"),
            ("counsel@yourco.com", "member"),
        ],
    ),
];
const WALLETS: [(&str, &str, bool); 3] = [
    ("engineering", "100", true),
    ("support", "100", false),
    ("legal", "1000", true),
];

/// Sets up an empty store, then runs the gateway. Exit status: as `kt gateway run`; 1 when the
/// store cannot be set up.
pub fn quickstart(a: &QuickstartArgs) -> u8 {
    // the gateway starts itself again (`MALLOC_ARENA_MAX`, see gateway.rs) with the same
    // arguments: the second start only runs the gateway
    const DONE: &str = "KT_QUICKSTART_DONE";
    let first = std::env::var_os(DONE).is_none();
    let outcome = if first { bootstrap(a) } else { Ok(None) };
    std::env::set_var(DONE, "1");
    match outcome {
        _ if !first => {}
        Ok(Some(keys)) => {
            println!(
                "keeptrusts: a new org on {} (keys are shown once — keep them):",
                a.store
            );
            for (team, email, role, key) in &keys {
                println!("  {role:<7} {email:<26} {team:<12} {key}");
            }
            println!("console: http://{}/console  (sign in with a key above; the owner's sees every team)", a.listen);
        }
        Ok(None) => {
            println!("keeptrusts: {} has teams already; nothing set up", a.store);
            println!("console: http://{}/console  (sign in with your key, or: kt console link --email you@yourco.com)", a.listen);
        }
        Err(e) => {
            eprintln!("kt quickstart: {e}");
            return 1;
        }
    }
    let cli = gateway::RunArgs::augment_args(clap::Command::new("run"));
    let matches = cli.try_get_matches_from([
        "run", "--pack", &a.pack, "--store", &a.store, "--listen", &a.listen, "--org", &a.org_id,
    ]);
    match matches.and_then(|m| gateway::RunArgs::from_arg_matches(&m)) {
        Ok(args) => gateway::run(&args),
        Err(e) => {
            eprintln!("kt quickstart: {e}");
            2
        }
    }
}

type Issued = Vec<(String, String, String, String)>;

/// The seed's org on an empty store, and the keys issued; `None` if the store has teams.
fn bootstrap(a: &QuickstartArgs) -> Result<Option<Issued>, String> {
    let store = backend::open(&a.store)?;
    if !store.teams().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let run = |command: serde_json::Value| -> Result<serde_json::Value, String> {
        let command: Command = serde_json::from_value(command).map_err(|e| e.to_string())?;
        let rid = keeptrusts_store::random_id("cli_").map_err(|e| e.to_string())?;
        let ctx = Ctx::new(
            None,
            &a.org_id,
            backend::now_ms(),
            &rid,
            backend::random32()?,
        );
        admin::execute(store.as_ref(), &ctx, &command).map_err(|e| e.to_string())
    };
    let mut keys = Vec::new();
    for (name, members) in ORG {
        let team = run(json!({"op": "create_team", "name": name}))?;
        let slug = team["slug"].as_str().unwrap_or_default().to_owned();
        for (email, role) in members {
            run(json!({"op": "set_member", "team": slug, "email": email, "role": role}))?;
            let k = run(
                json!({"op": "create_key", "team": slug, "email": email, "label": "quickstart"}),
            )?;
            keys.push((
                slug.clone(),
                (*email).to_owned(),
                (*role).to_owned(),
                k["key"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    for (team, amount, monthly) in WALLETS {
        let mut body = json!({"op": "allocate", "team": team, "amount": amount, "currency": "USD"});
        if monthly {
            body["period"] = json!("monthly");
        }
        run(body)?;
    }
    Ok(Some(keys))
}
