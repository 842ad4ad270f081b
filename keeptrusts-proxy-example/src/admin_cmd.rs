//! `kt team|key|wallet|ticket|escalation|events|dashboard`: the store, from the shell. The CLI
//! is trusted (whoever can open the store file or database is its operator) and acts as an
//! owner; `--as` records who approved. Exit status: 0, 2 for a bad argument or a refused
//! change (with the reason), 1 when the store cannot be opened or fails.

use std::sync::Arc;

use clap::{Args, Subcommand};
use keeptrusts_core::dashboard::{self, Query, Section};
use keeptrusts_core::directory::{add_member, create_key, create_team};
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::wallet::ticket::{self, TicketResolution};
use keeptrusts_core::wallet::{self, AllocateMode, Period};
use keeptrusts_core::{
    escalation, AdminError, EscalationStore, Principal, Resolution, Role, TicketStore,
};
use rust_decimal::Decimal;

use crate::backend;
use keeptrusts_core::Storage;

/// Where the store is, and how to print.
#[derive(Debug, Args)]
pub struct Common {
    /// `sqlite:PATH` or `postgres://user@host:port/db`.
    #[arg(long, global = true, default_value = backend::DEFAULT_STORE)]
    store: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Organization id (whose event chain).
    #[arg(long, global = true, default_value = "default")]
    org_id: String,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team (its slug is derived from the name).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Add a member to a team, or change their role.
    AddMember {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        /// member, admin or owner
        #[arg(long, default_value = "member")]
        role: String,
        #[command(flatten)]
        common: Common,
    },
    /// List teams and members.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue an API key for a member (printed once).
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        consumer_group: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List keys (ids only; secrets are never stored).
    List {
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Set (or with --top-up, add to) a wallet's allocation.
    Allocate {
        #[arg(long, group = "wallet")]
        team: Option<String>,
        #[arg(long, group = "wallet")]
        user: Option<String>,
        #[arg(long, group = "wallet")]
        org: Option<String>,
        #[arg(long)]
        amount: Decimal,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// `monthly` resets spending at each UTC month start.
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        top_up: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Every wallet with allocated, spent, reserved and available amounts.
    Balance {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResolveCommand {
    /// List (newest first).
    List {
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Approve; the client's retry then goes through once.
    Approve {
        id: String,
        /// Tickets: the wallet to charge (`team:legal`); default the ticket's team wallet.
        #[arg(long)]
        charge_to: Option<String>,
        /// Who approves (recorded).
        #[arg(long = "as", default_value = "cli@localhost")]
        actor: String,
        #[command(flatten)]
        common: Common,
    },
    /// Deny.
    Deny {
        id: String,
        #[arg(long = "as", default_value = "cli@localhost")]
        actor: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The last events.
    Tail {
        #[arg(long, default_value_t = 20)]
        n: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Every event as JSON lines.
    Export {
        #[command(flatten)]
        common: Common,
    },
    /// Verify the hash chain. Exit status 3 if it was tampered with.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Remove events past their retention (the chain stays verifiable).
    Prune {
        /// Retention for events without an audit stamp.
        #[arg(long, default_value_t = 365)]
        default_days: u32,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The user whose view to show (their role comes from their membership).
    #[arg(long = "as")]
    viewer: String,
    #[arg(long)]
    team: String,
    /// overview, events, spend, escalations or usage
    #[arg(long, default_value = "overview")]
    section: String,
    #[command(flatten)]
    common: Common,
}

fn open(c: &Common) -> Result<Arc<dyn Storage>, u8> {
    backend::open(&c.store).map_err(|e| {
        eprintln!("kt: {e}");
        1
    })
}

fn cli_actor(user: &str) -> Principal {
    Principal::new(user, "-", Role::Owner)
}

fn report(e: &AdminError) -> u8 {
    eprintln!("kt: {e} ({})", e.code());
    match e {
        AdminError::Store(_) => 1,
        _ => 2,
    }
}

/// Prints to stdout; a closed pipe (`kt key create | head -1`) is not an error.
fn print<T: serde::Serialize>(c: &Common, v: &T, text: impl FnOnce() -> String) {
    use std::io::Write;
    let out = if c.json {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        text()
    };
    let _ = writeln!(std::io::stdout(), "{out}");
}

fn parse_role(s: &str) -> Result<Role, u8> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        eprintln!("kt: --role `{s}`: expected member, admin or owner");
        2
    })
}

fn done(r: Result<(), u8>) -> u8 {
    r.err().unwrap_or(0)
}

pub fn team(cmd: &TeamCommand) -> u8 {
    done((|| match cmd {
        TeamCommand::Create {
            name,
            description,
            common,
        } => {
            let s = open(common)?;
            let t = create_team(
                s.as_ref(),
                None,
                name,
                description.as_deref(),
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            print(common, &t, || {
                format!("created team {} ({})", t.slug, t.name)
            });
            Ok(())
        }
        TeamCommand::AddMember {
            team,
            email,
            role,
            common,
        } => {
            let role = parse_role(role)?;
            let s = open(common)?;
            let m = add_member(s.as_ref(), None, team, email, role, backend::now_ms())
                .map_err(|e| report(&e))?;
            print(common, &m, || {
                format!("{} is now {} of {}", m.user, m.role.as_str(), m.team)
            });
            Ok(())
        }
        TeamCommand::List { common } => {
            let s = open(common)?;
            let teams = s.teams().map_err(|e| report(&e.into()))?;
            let members = s.members(None).map_err(|e| report(&e.into()))?;
            let v = serde_json::json!({"teams": teams, "members": members});
            print(common, &v, || {
                let mut out = String::new();
                for t in &teams {
                    out.push_str(&format!("{}  {}\n", t.slug, t.name));
                    for m in members.iter().filter(|m| m.team == t.slug) {
                        out.push_str(&format!("  {} ({})\n", m.user, m.role.as_str()));
                    }
                }
                out.trim_end().to_owned()
            });
            Ok(())
        }
    })())
}

pub fn key(cmd: &KeyCommand) -> u8 {
    done((|| match cmd {
        KeyCommand::Create {
            team,
            email,
            consumer_group,
            common,
        } => {
            let s = open(common)?;
            let random = backend::random32().map_err(|e| {
                eprintln!("kt: {e}");
                1
            })?;
            let (secret, key) = create_key(
                s.as_ref(),
                None,
                team,
                email,
                consumer_group.as_deref(),
                &random,
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            let v = serde_json::json!({"key": secret, "id": key.id, "team": key.team, "user": key.user,
                "consumer_group": key.consumer_group});
            print(common, &v, || {
                format!(
                    "{secret}\n(key {} for {} in {}; shown once — store it now)",
                    key.id, key.user, key.team
                )
            });
            Ok(())
        }
        KeyCommand::List { team, common } => {
            let s = open(common)?;
            let keys = s.keys(team.as_deref()).map_err(|e| report(&e.into()))?;
            let rows: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| serde_json::json!({"id": k.id, "team": k.team, "user": k.user,
                    "consumer_group": k.consumer_group, "created_at": k.created_at, "revoked": k.revoked}))
                .collect();
            print(common, &rows, || {
                keys.iter()
                    .map(|k| format!("{}  {}  {}", k.id, k.team, k.user))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    })())
}

pub fn wallet(cmd: &WalletCommand) -> u8 {
    done((|| match cmd {
        WalletCommand::Allocate {
            team,
            user,
            org,
            amount,
            currency,
            period,
            top_up,
            common,
        } => {
            if [team, user, org].iter().filter(|x| x.is_some()).count() != 1 {
                eprintln!("kt: name exactly one of --team, --user, --org");
                return Err(2);
            }
            let period: Option<Period> = match period {
                None => None,
                Some(p) => Some(
                    serde_json::from_value(serde_json::Value::String(p.clone())).map_err(|_| {
                        eprintln!("kt: --period `{p}`: expected monthly");
                        2
                    })?,
                ),
            };
            let s = open(common)?;
            let mode = if *top_up {
                AllocateMode::TopUp
            } else {
                AllocateMode::Set
            };
            // the same path as the admin API: a team named by its display name is that team
            let allocation = wallet::Allocation {
                team: team.clone(),
                user: user.clone(),
                org: org.clone(),
                amount: *amount,
                currency: currency.clone(),
                period,
                mode: Some(mode),
                user_team: None,
            };
            let w = allocation
                .apply(s.as_ref(), &cli_actor("cli@localhost"), backend::now_ms())
                .map_err(|e| report(&e))?;
            print(common, &w, || {
                format!(
                    "{} allocated {} {}",
                    w.key,
                    w.allocated,
                    w.currency.as_str()
                )
            });
            Ok(())
        }
        WalletCommand::Balance { common } => {
            let s = open(common)?;
            let all = keeptrusts_core::WalletStore::list(s.as_ref(), backend::now_ms())
                .map_err(|e| report(&e.into()))?;
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|w| serde_json::json!({"wallet": w.key.to_string(), "currency": w.currency.as_str(),
                    "allocated": w.allocated, "spent": w.spent, "reserved": w.reserved, "available": w.available()}))
                .collect();
            print(common, &rows, || {
                all.iter()
                    .map(|w| {
                        format!(
                            "{}  allocated {}  spent {}  reserved {}  available {} {}",
                            w.key,
                            w.allocated,
                            w.spent,
                            w.reserved,
                            w.available(),
                            w.currency.as_str()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    })())
}

pub fn ticket(cmd: &ResolveCommand) -> u8 {
    done((|| match cmd {
        ResolveCommand::List { team, common } => {
            let s = open(common)?;
            let list =
                TicketStore::list(s.as_ref(), team.as_deref()).map_err(|e| report(&e.into()))?;
            print(common, &list, || {
                list.iter()
                    .map(|t| {
                        format!(
                            "{}  {:?}  {}  {} {}  {}",
                            t.id,
                            t.status,
                            t.team.as_deref().unwrap_or("-"),
                            t.estimate,
                            t.currency.as_str(),
                            t.user.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        ResolveCommand::Approve {
            id,
            charge_to,
            actor,
            common,
        } => {
            let s = open(common)?;
            let approval = TicketResolution::approve(s.as_ref(), id, charge_to.as_deref())
                .map_err(|e| report(&e))?;
            let t = ticket::resolve(
                s.as_ref(),
                &cli_actor(actor),
                id,
                &approval,
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            print(common, &t, || {
                format!("approved {}: the retry goes through once", t.id)
            });
            Ok(())
        }
        ResolveCommand::Deny { id, actor, common } => {
            let s = open(common)?;
            let t = ticket::resolve(
                s.as_ref(),
                &cli_actor(actor),
                id,
                &TicketResolution::Deny,
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            print(common, &t, || format!("denied {}", t.id));
            Ok(())
        }
    })())
}

pub fn escalation(cmd: &ResolveCommand) -> u8 {
    done((|| match cmd {
        ResolveCommand::List { team, common } => {
            let s = open(common)?;
            let list = EscalationStore::list(s.as_ref(), team.as_deref())
                .map_err(|e| report(&e.into()))?;
            print(common, &list, || {
                list.iter()
                    .map(|e| {
                        format!(
                            "{}  {:?}  {}  {}",
                            e.id,
                            e.status,
                            e.team.as_deref().unwrap_or("-"),
                            e.user.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        ResolveCommand::Approve {
            id, actor, common, ..
        } => {
            let s = open(common)?;
            let e = escalation::resolve(
                s.as_ref(),
                &cli_actor(actor),
                id,
                Resolution::Approve,
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            print(common, &e, || {
                format!("approved {}: the retry goes through once", e.id)
            });
            Ok(())
        }
        ResolveCommand::Deny { id, actor, common } => {
            let s = open(common)?;
            let e = escalation::resolve(
                s.as_ref(),
                &cli_actor(actor),
                id,
                Resolution::Deny,
                backend::now_ms(),
            )
            .map_err(|e| report(&e))?;
            print(common, &e, || format!("denied {}", e.id));
            Ok(())
        }
    })())
}

pub fn events(cmd: &EventsCommand) -> u8 {
    done((|| match cmd {
        EventsCommand::Tail { n, common } => {
            let s = open(common)?;
            let all =
                EventStore::list(s.as_ref(), &common.org_id).map_err(|e| report(&e.into()))?;
            let tail: Vec<_> = all.iter().skip(all.len().saturating_sub(*n)).collect();
            print(common, &tail, || {
                tail.iter()
                    .map(|e| {
                        format!(
                            "#{} {} {} {} {} {}",
                            e.seq,
                            e.body.request_id,
                            e.body.team.as_deref().unwrap_or("-"),
                            e.body.verdict.as_str(),
                            e.body.status,
                            e.body.model.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        EventsCommand::Export { common } => {
            let s = open(common)?;
            for e in EventStore::list(s.as_ref(), &common.org_id).map_err(|e| report(&e.into()))? {
                use std::io::Write;
                if writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string(&e).unwrap_or_default()
                )
                .is_err()
                {
                    break;
                }
            }
            Ok(())
        }
        EventsCommand::Verify { common } => {
            let s = open(common)?;
            let all =
                EventStore::list(s.as_ref(), &common.org_id).map_err(|e| report(&e.into()))?;
            let anchor = s.anchor(&common.org_id).map_err(|e| report(&e.into()))?;
            match event::verify(&all, anchor.as_ref()) {
                Ok(()) => {
                    print(
                        common,
                        &serde_json::json!({"ok": true, "events": all.len()}),
                        || format!("ok: {} events, chain intact", all.len()),
                    );
                    Ok(())
                }
                Err(t) => {
                    eprintln!("kt: the event chain was tampered with: {t:?}");
                    Err(3)
                }
            }
        }
        EventsCommand::Prune {
            default_days,
            common,
        } => {
            let s = open(common)?;
            let n = EventStore::prune(s.as_ref(), &common.org_id, backend::now_ms(), *default_days)
                .map_err(|e| report(&e.into()))?;
            print(common, &serde_json::json!({"pruned": n}), || {
                format!("pruned {n} events")
            });
            Ok(())
        }
    })())
}

pub fn dashboard(a: &DashboardArgs) -> u8 {
    done((|| {
        let section: Section = serde_json::from_value(serde_json::Value::String(a.section.clone()))
            .map_err(|_| {
                eprintln!(
                    "kt: --section `{}`: expected overview, events, spend, escalations or usage",
                    a.section
                );
                2
            })?;
        let s = open(&a.common)?;
        let membership = s
            .members(None)
            .map_err(|e| report(&e.into()))?
            .into_iter()
            .filter(|m| m.user == a.viewer)
            .max_by_key(|m| (m.role, m.team == a.team));
        let Some(m) = membership else {
            eprintln!("kt: `{}` is not a member of any team", a.viewer);
            return Err(2);
        };
        let viewer = Principal::new(&a.viewer, &m.team, m.role);
        let events =
            EventStore::list(s.as_ref(), &a.common.org_id).map_err(|e| report(&e.into()))?;
        let q = Query {
            team: a.team.clone(),
            section,
            filter: Default::default(),
            granularity: Default::default(),
        };
        let v = dashboard::view(&viewer, &q, &events).map_err(|e| report(&e))?;
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        Ok(())
    })())
}
