//! `--bootstrap seed|owner` (`kt gateway run`, and `kt quickstart` through it).
//! On a store with no team yet it creates the first owner (and, for `seed`, the seed's org: teams
//! engineering, support and legal with an admin and a member each, and their wallets) through the
//! same administrative commands the CLI and the admin API run, and the gateway prints the keys
//! once. A store that has teams is served as it is.

use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::wallet::{AllocateMode, Allocation, Period};
use keeptrusts_core::{Role, Storage};
use rust_decimal::Decimal;

use crate::backend;

/// What `--bootstrap` makes on an empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bootstrap {
    /// The first owner only (team `platform`, `root@yourco.com`).
    Owner,
    /// The owner, and the seed's teams engineering, support and legal, an admin and a member
    /// each, and monthly wallets.
    Seed,
}

/// One person made, with the key issued for them (shown once).
#[derive(Debug, Clone)]
pub struct Issued {
    pub role: Role,
    pub email: String,
    pub team: String,
    pub key: String,
}

/// The seed's teams: name, admin, member, monthly allocation (USD).
const SEED: [(&str, &str, &str, i64); 3] = [
    ("Engineering", "eng-lead@yourco.com", "dev@yourco.com", 500),
    (
        "Support",
        "support-lead@yourco.com",
        "agent@yourco.com",
        100,
    ),
    ("Legal", "legal-lead@yourco.com", "counsel@yourco.com", 1000),
];

/// Creates what `mode` makes, if the store has no team yet; `Ok(None)` when it has some
/// (nothing is changed).
///
/// # Errors
/// A store or administrative failure, with what was being made.
pub fn run(store: &dyn Storage, org: &str, mode: Bootstrap) -> Result<Option<Vec<Issued>>, String> {
    if !store.teams().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let exec = |command: &Command| -> Result<serde_json::Value, String> {
        let random = backend::random32()?;
        let rid = keeptrusts_store::random_id("boot_").map_err(|e| e.to_string())?;
        let ctx = Ctx::new(None, org, backend::now_ms(), &rid, random);
        admin::execute(store, &ctx, command).map_err(|e| e.to_string())
    };
    let mut people = vec![("Platform", "root@yourco.com", Role::Owner)];
    if mode == Bootstrap::Seed {
        for (team, lead, member, _) in SEED {
            people.push((team, lead, Role::Admin));
            people.push((team, member, Role::Member));
        }
    }
    let mut made = Vec::new();
    for (name, email, role) in people {
        let team = keeptrusts_core::identity::slugify(name);
        if !made.iter().any(|i: &Issued| i.team == team) {
            exec(&Command::CreateTeam {
                name: name.to_owned(),
                description: None,
            })
            .map_err(|e| format!("creating team {name}: {e}"))?;
        }
        exec(&Command::SetMember {
            team: team.clone(),
            email: email.to_owned(),
            role,
        })
        .map_err(|e| format!("adding {email} to {team}: {e}"))?;
        let issued = exec(&Command::CreateKey(NewKey {
            team: team.clone(),
            email: email.to_owned(),
            consumer_group: None,
            label: Some("bootstrap".into()),
            expires_at: None,
        }))
        .map_err(|e| format!("issuing a key for {email}: {e}"))?;
        made.push(Issued {
            role,
            email: email.to_owned(),
            team,
            key: issued
                .get("key")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    if mode == Bootstrap::Seed {
        for (name, _, _, amount) in SEED {
            exec(&Command::Allocate(Allocation {
                team: Some(keeptrusts_core::identity::slugify(name)),
                user: None,
                org: None,
                amount: Decimal::from(amount),
                currency: "USD".into(),
                period: Some(Period::Monthly),
                mode: Some(AllocateMode::Set),
                user_team: None,
            }))
            .map_err(|e| format!("allocating the {name} wallet: {e}"))?;
        }
    }
    Ok(Some(made))
}

/// What the gateway prints once after a bootstrap: who was made and their keys (the console's
/// address follows when the gateway listens).
pub fn report(made: &[Issued]) -> String {
    let mut out = String::from(
        "kt gateway: bootstrapped an empty store. These keys are shown once: keep them now (sign in to the console with one).\n",
    );
    for i in made {
        out.push_str(&format!(
            "  {:<7} {:<24} {:<12} {}\n",
            format!("{:?}", i.role).to_lowercase(),
            i.email,
            i.team,
            i.key
        ));
    }
    out.trim_end().to_owned()
}
