//! The first run in one command: `kt quickstart`, which is `kt gateway run --pack
//! examples/packs/gateway-quickstart.yaml --bootstrap seed` ([`crate::bootstrap`]).

use clap::{Args, FromArgMatches};

use crate::{backend, gateway};

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

/// Runs the gateway on the example pack with `--bootstrap seed` ([`crate::bootstrap`]): on an
/// empty store the seed's org is made and its keys printed once; a store with teams is served
/// as it is. Exit status: as `kt gateway run`.
pub fn quickstart(a: &QuickstartArgs) -> u8 {
    let cli = gateway::RunArgs::augment_args(clap::Command::new("run"));
    let matches = cli.try_get_matches_from([
        "run",
        "--pack",
        &a.pack,
        "--store",
        &a.store,
        "--listen",
        &a.listen,
        "--org-id",
        &a.org_id,
        "--bootstrap",
        "seed",
    ]);
    match matches.and_then(|m| gateway::RunArgs::from_arg_matches(&m)) {
        Ok(args) => gateway::run(&args),
        Err(e) => {
            eprintln!("kt quickstart: {e}");
            2
        }
    }
}
