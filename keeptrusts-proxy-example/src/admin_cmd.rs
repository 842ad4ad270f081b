//! `kt team|key|wallet|ticket|escalation|events|dashboard`: the store, from the shell. The CLI
//! is trusted (whoever can open the store file or database is its operator) and acts as an
//! owner; `--as` records who approved. Exit status: 0, 2 for a bad argument or a refused
//! change (with the reason), 1 when the store cannot be opened or fails.

use std::sync::Arc;

use clap::{Args, Subcommand};
use keeptrusts_core::admin::{self, Command, Ctx, NewKey, TeamChange};
use keeptrusts_core::dashboard::{self, Query, Section};
use keeptrusts_core::event::{self, EventStore};
use keeptrusts_core::wallet::{self, AllocateMode, Period};
use keeptrusts_core::{AdminError, EscalationStore, Principal, Role, TicketStore};
use rust_decimal::Decimal;

use crate::backend;
use keeptrusts_core::Storage;

mod dashboards;
mod events;
pub use dashboards::{dashboard, DashboardArgs};
pub use events::{events, EventsCommand};
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
    #[command(
        after_help = "Example:\n  kt team create --name \"Customer Support\" --description \"Tier 1 and 2\""
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Add a member to a team, or change their role.
    #[command(
        after_help = "Example:\n  kt team add-member --team support --email agent@yourco.com --role admin"
    )]
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
    /// Remove a member from a team (their keys for it stop at once).
    #[command(
        after_help = "Example:\n  kt team remove-member --team support --email agent@yourco.com"
    )]
    RemoveMember {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Rename, describe, archive or restore a team (its slug stays).
    #[command(after_help = "Example:\n  kt team update --team support --name \"Support EMEA\"")]
    Update {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Archive: the team's keys stop authenticating; members and wallets stay on record.
        #[arg(long, conflicts_with = "restore")]
        archive: bool,
        #[arg(long)]
        restore: bool,
        #[command(flatten)]
        common: Common,
    },
    /// One team and its members.
    #[command(after_help = "Example:\n  kt team show --team support")]
    Show {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        common: Common,
    },
    /// List teams and members.
    #[command(after_help = "Example:\n  kt team list --json")]
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Make a user an admin of every team (not of owners or the org wallet).
    #[command(after_help = "Example:\n  kt org add-admin --email platform-lead@yourco.com")]
    AddAdmin {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// Withdraw an org admin.
    #[command(after_help = "Example:\n  kt org remove-admin --email platform-lead@yourco.com")]
    RemoveAdmin {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: Common,
    },
    /// The org admins.
    #[command(after_help = "Example:\n  kt org admins")]
    Admins {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue an API key for a member (printed once).
    #[command(
        after_help = "Example:\n  kt key create --team support --email agent@yourco.com --label laptop --expires-in 90d"
    )]
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        consumer_group: Option<String>,
        /// What the key is for (`ci`, `laptop`).
        #[arg(long)]
        label: Option<String>,
        /// Expiry from now: `30d`, `12h`, `90m`, `3600s`.
        #[arg(long, value_parser = backend::parse_duration)]
        expires_in: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// List keys: id, team, user, label, status, last use (secrets are never stored).
    #[command(after_help = "Example:\n  kt key list --team support")]
    List {
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key: every gateway sharing the store refuses it within a second.
    #[command(after_help = "Example:\n  kt key revoke kt_1a2b3c4d")]
    Revoke {
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Replace a key by a new one (printed once) and revoke the old one.
    #[command(after_help = "Example:\n  kt key rotate kt_1a2b3c4d")]
    Rotate {
        id: String,
        /// Expiry of the new key from now (default: as long as the old one had).
        #[arg(long, value_parser = backend::parse_duration)]
        expires_in: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Set (or with --top-up, add to) a wallet's allocation.
    #[command(
        after_help = "Example:\n  kt wallet allocate --team support --amount 100 --period monthly"
    )]
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
    #[command(after_help = "Example:\n  kt wallet balance --json")]
    Balance {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResolveCommand {
    /// List (newest first).
    #[command(
        after_help = "Example:\n  kt ticket list --team support      (or: kt escalation list)"
    )]
    List {
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Approve; the client's retry then goes through once.
    #[command(
        after_help = "Example:\n  kt ticket approve tkt_req_… --charge-to team:support      (or: kt escalation approve esc_req_…)"
    )]
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
    #[command(
        after_help = "Example:\n  kt ticket deny tkt_req_…      (or: kt escalation deny esc_req_…)"
    )]
    Deny {
        id: String,
        #[arg(long = "as", default_value = "cli@localhost")]
        actor: String,
        #[command(flatten)]
        common: Common,
    },
}

fn open(c: &Common) -> Result<Arc<dyn Storage>, u8> {
    backend::open(&c.store).map_err(|e| {
        eprintln!("kt: {e}");
        1
    })
}

/// The command line's reviewer: an owner named by `--as` (recorded on the ticket or
/// escalation and in its event).
fn cli_actor(user: &str) -> Principal {
    Principal::new(user, "-", Role::Owner)
}

fn parse_head(s: &str) -> Result<keeptrusts_core::event::Head, String> {
    s.parse()
}

/// Runs one administrative command on the store, as the host (`actor: None`) or as `--as`.
fn exec(c: &Common, actor: Option<&Principal>, command: &Command) -> Result<serde_json::Value, u8> {
    let s = open(c)?;
    let fail = |e: String| {
        eprintln!("kt: {e}");
        1
    };
    let random = backend::random32().map_err(fail)?;
    let rid = keeptrusts_store::random_id("cli_").map_err(|e| fail(e.to_string()))?;
    let ctx = Ctx::new(actor, &c.org_id, backend::now_ms(), &rid, random);
    admin::execute(s.as_ref(), &ctx, command).map_err(|e| report(&e))
}

/// A field of a JSON answer (`null` when absent).
fn at<'a>(v: &'a serde_json::Value, field: &str) -> &'a serde_json::Value {
    v.get(field).unwrap_or(&serde_json::Value::Null)
}

fn text(v: &serde_json::Value, field: &str) -> String {
    match at(v, field) {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
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
            let command = Command::CreateTeam {
                name: name.clone(),
                description: description.clone(),
            };
            let t = exec(common, None, &command)?;
            print(common, &t, || {
                format!("created team {} ({})", text(&t, "slug"), text(&t, "name"))
            });
            Ok(())
        }
        TeamCommand::AddMember {
            team,
            email,
            role,
            common,
        } => {
            let command = Command::SetMember {
                team: team.clone(),
                email: email.clone(),
                role: parse_role(role)?,
            };
            let m = exec(common, None, &command)?;
            print(common, &m, || {
                format!(
                    "{} is now {} of {}",
                    text(&m, "user"),
                    text(&m, "role"),
                    text(&m, "team")
                )
            });
            Ok(())
        }
        TeamCommand::RemoveMember {
            team,
            email,
            common,
        } => {
            let command = Command::RemoveMember {
                team: team.clone(),
                email: email.clone(),
            };
            let m = exec(common, None, &command)?;
            print(common, &m, || {
                format!(
                    "removed {} from {}: their keys for it no longer work",
                    text(&m, "user"),
                    text(&m, "team")
                )
            });
            Ok(())
        }
        TeamCommand::Update {
            team,
            name,
            description,
            archive,
            restore,
            common,
        } => {
            let change = TeamChange {
                name: name.clone(),
                description: description.clone(),
                archived: (*archive || *restore).then_some(*archive),
            };
            let command = Command::UpdateTeam {
                team: team.clone(),
                change,
            };
            let t = exec(common, None, &command)?;
            print(common, &t, || {
                let state = if at(&t, "archived_at").is_null() {
                    "active"
                } else {
                    "archived"
                };
                format!(
                    "team {} ({}) is {state}",
                    text(&t, "slug"),
                    text(&t, "name")
                )
            });
            Ok(())
        }
        TeamCommand::Show { team, common } => {
            let t = exec(common, None, &Command::GetTeam { team: team.clone() })?;
            print(common, &t, || {
                let mut out = format!("{}  {}", text(&t, "slug"), text(&t, "name"));
                if !at(&t, "archived_at").is_null() {
                    out.push_str("  (archived)");
                }
                for m in at(&t, "members").as_array().into_iter().flatten() {
                    out.push_str(&format!("\n  {} ({})", text(m, "user"), text(m, "role")));
                }
                out
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
                    let archived = if t.archived_at.is_some() {
                        "  (archived)"
                    } else {
                        ""
                    };
                    out.push_str(&format!("{}  {}{archived}\n", t.slug, t.name));
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

pub fn org(cmd: &OrgCommand) -> u8 {
    done((|| match cmd {
        OrgCommand::AddAdmin { email, common } => {
            let v = exec(
                common,
                None,
                &Command::AddOrgAdmin {
                    email: email.clone(),
                },
            )?;
            print(common, &v, || {
                format!("{email} is now an org admin: an admin of every team")
            });
            Ok(())
        }
        OrgCommand::RemoveAdmin { email, common } => {
            let v = exec(
                common,
                None,
                &Command::RemoveOrgAdmin {
                    email: email.clone(),
                },
            )?;
            print(common, &v, || format!("{email} is no longer an org admin"));
            Ok(())
        }
        OrgCommand::Admins { common } => {
            let s = open(common)?;
            let admins = admin::org_admins(s.as_ref()).map_err(|e| report(&e))?;
            print(common, &admins, || {
                admins
                    .iter()
                    .map(|m| m.user.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    })())
}

fn print_issued(common: &Common, v: &serde_json::Value) {
    print(common, v, || {
        format!(
            "{}\n(key {} for {} in {}; shown once — store it now)",
            text(v, "key"),
            text(v, "id"),
            text(v, "user"),
            text(v, "team")
        )
    });
}

pub fn key(cmd: &KeyCommand) -> u8 {
    done((|| match cmd {
        KeyCommand::Create {
            team,
            email,
            consumer_group,
            label,
            expires_in,
            common,
        } => {
            let new = NewKey {
                team: team.clone(),
                email: email.clone(),
                consumer_group: consumer_group.clone(),
                label: label.clone(),
                expires_at: expires_in.map(|d| backend::now_ms().saturating_add(d)),
            };
            let v = exec(common, None, &Command::CreateKey(new))?;
            print_issued(common, &v);
            Ok(())
        }
        KeyCommand::List { team, common } => {
            let rows = exec(common, None, &Command::ListKeys { team: team.clone() })?;
            print(common, &rows, || {
                rows.as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        format!(
                            "{}  {}  {}  {}  {}  last used {}",
                            text(k, "id"),
                            text(k, "team"),
                            text(k, "user"),
                            text(k, "label"),
                            text(k, "status"),
                            text(k, "last_used_at")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        KeyCommand::Revoke { id, common } => {
            let v = exec(common, None, &Command::RevokeKey { id: id.clone() })?;
            print(common, &v, || format!("revoked {id}"));
            Ok(())
        }
        KeyCommand::Rotate {
            id,
            expires_in,
            common,
        } => {
            let command = Command::RotateKey {
                id: id.clone(),
                expires_at: expires_in.map(|d| backend::now_ms().saturating_add(d)),
            };
            let v = exec(common, None, &command)?;
            print_issued(common, &v);
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
            let w = exec(common, None, &Command::Allocate(allocation))?;
            print(common, &w, || {
                format!(
                    "{} allocated {} {}",
                    serde_json::from_value::<keeptrusts_core::WalletKey>(at(&w, "key").clone())
                        .map_or_else(|_| "-".into(), |k| k.to_string()),
                    text(&w, "allocated"),
                    text(&w, "currency")
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
            let now = crate::backend::now_ms();
            print(common, &list, || {
                list.iter()
                    .map(|t| {
                        format!(
                            "{}  {:?}{}  {}  {} {}  {}",
                            t.id,
                            t.status_at(now),
                            // a gateway holds the request open, waiting for this ticket
                            if t.held_at(now) { " (held)" } else { "" },
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
            let command = Command::ResolveTicket {
                id: id.clone(),
                resolution: admin::Ruling::Approve,
                charge_to: charge_to.clone(),
            };
            let t = exec(common, Some(&cli_actor(actor)), &command)?;
            print(common, &t, || {
                format!("approved {}: the retry goes through once", text(&t, "id"))
            });
            Ok(())
        }
        ResolveCommand::Deny { id, actor, common } => {
            let command = Command::ResolveTicket {
                id: id.clone(),
                resolution: admin::Ruling::Deny,
                charge_to: None,
            };
            let t = exec(common, Some(&cli_actor(actor)), &command)?;
            print(common, &t, || format!("denied {}", text(&t, "id")));
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
            let command = Command::ResolveEscalation {
                id: id.clone(),
                resolution: admin::Ruling::Approve,
            };
            let e = exec(common, Some(&cli_actor(actor)), &command)?;
            print(common, &e, || {
                format!("approved {}: the retry goes through once", text(&e, "id"))
            });
            Ok(())
        }
        ResolveCommand::Deny { id, actor, common } => {
            let command = Command::ResolveEscalation {
                id: id.clone(),
                resolution: admin::Ruling::Deny,
            };
            let e = exec(common, Some(&cli_actor(actor)), &command)?;
            print(common, &e, || format!("denied {}", text(&e, "id")));
            Ok(())
        }
    })())
}
