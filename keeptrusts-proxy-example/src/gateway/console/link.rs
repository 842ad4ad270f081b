//! `kt console link --email E`: a one-time sign-in URL for someone who has no key yet.
//!
//! The link carries a key made for this purpose (label [`LABEL`], 15 minutes by default), kept
//! in the store like every key (only its hash), so any gateway on the same store accepts it.
//! Opening the link shows a button; pressing it rotates the key (the link stops working) into
//! one only the new console session knows, which ends with the session.

#![allow(clippy::indexing_slicing)] // `serde_json::Value["field"]` is `Null` when absent

use clap::Args;
use keeptrusts_core::admin::{self, Command, Ctx, NewKey};
use keeptrusts_core::directory::ORG_SCOPE;

use crate::backend;

/// The label of a sign-in link's key.
pub const LABEL: &str = "console-link";

/// `kt console link` options.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Whose link (a member of some team).
    #[arg(long)]
    email: String,
    /// The team the session acts in (default: the member's first team).
    #[arg(long)]
    team: Option<String>,
    /// The gateway's address as the browser reaches it.
    #[arg(long, default_value = "http://127.0.0.1:41002")]
    url: String,
    /// How long the link works.
    #[arg(long, default_value = "15m", value_parser = backend::parse_duration)]
    valid: i64,
    /// `sqlite:PATH` or `postgres://user@host:port/db`.
    #[arg(long, default_value = backend::DEFAULT_STORE)]
    store: String,
    /// Organization id (whose event chain records the key).
    #[arg(long, default_value = "default")]
    org_id: String,
}

/// Prints the link. Exit status: 0, 2 for an unknown member or a refused key, 1 when the store
/// cannot be opened or fails.
pub fn link(a: &LinkArgs) -> u8 {
    let store = match backend::open(&a.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kt: {e}");
            return 1;
        }
    };
    let team = match &a.team {
        Some(t) => t.clone(),
        None => {
            match store.members(None) {
                Ok(ms) => match ms
                    .into_iter()
                    .find(|m| m.user == a.email && m.team != ORG_SCOPE)
                {
                    Some(m) => m.team,
                    None => {
                        eprintln!("kt: {} is not a member of any team (add them first: kt team add-member)", a.email);
                        return 2;
                    }
                },
                Err(e) => {
                    eprintln!("kt: {e}");
                    return 1;
                }
            }
        }
    };
    let (Ok(random), Ok(rid)) = (backend::random32(), keeptrusts_store::random_id("cli_")) else {
        eprintln!("kt: the operating system gave no randomness");
        return 1;
    };
    let now = backend::now_ms();
    let ctx = Ctx::new(None, &a.org_id, now, &rid, random);
    let new = NewKey {
        team,
        email: a.email.clone(),
        consumer_group: None,
        label: Some(LABEL.into()),
        expires_at: Some(now.saturating_add(a.valid)),
    };
    match admin::execute(store.as_ref(), &ctx, &Command::CreateKey(new)) {
        Ok(v) => {
            let secret = v["key"].as_str().unwrap_or_default();
            println!(
                "{}/console/link?token={secret}",
                a.url.trim_end_matches('/')
            );
            eprintln!(
                "(a one-time sign-in link for {} in {}, valid {} minutes; key {})",
                a.email,
                v["team"].as_str().unwrap_or("-"),
                a.valid / 60_000,
                v["id"].as_str().unwrap_or("-")
            );
            0
        }
        Err(e) => {
            eprintln!("kt: {e}");
            if matches!(e, keeptrusts_core::AdminError::Store(_)) {
                1
            } else {
                2
            }
        }
    }
}
