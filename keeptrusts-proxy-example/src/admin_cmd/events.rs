//! `kt events tail|export|verify|head|prune`: the event chain in the store, from the shell.

use super::*;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The last events.
    #[command(after_help = "Example:\n  kt events tail --n 50")]
    Tail {
        #[arg(long, default_value_t = 20)]
        n: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Every event as JSON lines.
    #[command(after_help = "Example:\n  kt events export > events.jsonl")]
    Export {
        #[command(flatten)]
        common: Common,
    },
    /// Verify the hash chain: every link and hash, nothing missing at the end (the recorded
    /// head), pruned events only past their retention. Exit status 3 if it was tampered with.
    #[command(after_help = "Example:\n  kt events verify --expect-head \"$(cat head.txt)\"")]
    Verify {
        /// A head kept elsewhere (`kt events head` printed it): the chain must still reach it,
        /// with that hash.
        #[arg(long, value_parser = parse_head)]
        expect_head: Option<keeptrusts_core::event::Head>,
        /// Retention of events without an audit stamp, as `kt events prune` uses it.
        #[arg(long, default_value_t = 365)]
        default_days: u32,
        #[command(flatten)]
        common: Common,
    },
    /// The chain's head (`SEQ:HASH`): keep it elsewhere and pass it to `verify --expect-head`
    /// later, so a rewritten or truncated store is caught even with its head row rewritten.
    #[command(after_help = "Example:\n  kt events head > head.txt")]
    Head {
        #[command(flatten)]
        common: Common,
    },
    /// Remove the content of events past their retention (each its own: the audit stamp's
    /// `retention_days`); they keep their place, time and hash, so the chain still verifies.
    #[command(after_help = "Example:\n  kt events prune --default-days 365")]
    Prune {
        /// Retention for events without an audit stamp.
        #[arg(long, default_value_t = 365)]
        default_days: u32,
        #[command(flatten)]
        common: Common,
    },
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
        EventsCommand::Verify {
            expect_head,
            default_days,
            common,
        } => {
            let s = open(common)?;
            let chain = s.snapshot(&common.org_id).map_err(|e| report(&e.into()))?;
            let opts = event::VerifyOptions {
                now: backend::now_ms(),
                default_days: *default_days,
                expect_head: expect_head.clone(),
            };
            match event::verify_chain(&chain, &opts) {
                Ok(v) => {
                    print(
                        common,
                        &serde_json::json!({"ok": true, "events": v.events, "pruned": v.pruned, "head": v.head}),
                        || {
                            let head = v
                                .head
                                .as_ref()
                                .map_or_else(|| "empty".into(), ToString::to_string);
                            format!(
                                "ok: {} events, chain intact ({} pruned; head {head})",
                                v.events, v.pruned
                            )
                        },
                    );
                    Ok(())
                }
                Err(t) => {
                    eprintln!("kt: the event chain was tampered with: {t}");
                    Err(3)
                }
            }
        }
        EventsCommand::Head { common } => {
            let s = open(common)?;
            let chain = s.snapshot(&common.org_id).map_err(|e| report(&e.into()))?;
            print(common, &chain.head, || {
                chain
                    .head
                    .as_ref()
                    .map_or_else(|| "(no events)".into(), ToString::to_string)
            });
            Ok(())
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
