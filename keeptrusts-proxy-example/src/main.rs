//! `kt`: the keeptrusts command line.

mod policy_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keeptrusts: team-based AI governance.
#[derive(Debug, Parser)]
#[command(name = "kt", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate and test policy packs.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Pack commands (`kt pack validate` is `kt policy lint`).
    #[command(subcommand)]
    Pack(PackCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a pack and print the effective chain of every team it names.
    ///
    /// Exit status: 0 valid, 2 invalid, 1 the file could not be read.
    Lint(policy_cmd::LintArgs),
    /// Run golden cases (principal + request → expected verdict) against a pack.
    ///
    /// Exit status: 0 all passed, 1 a case failed, 2 the pack or a case file is invalid.
    Test(policy_cmd::TestArgs),
}

#[derive(Debug, Subcommand)]
enum PackCommand {
    /// Same as `kt policy lint`.
    Validate(policy_cmd::LintArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Policy(PolicyCommand::Lint(a)) | Command::Pack(PackCommand::Validate(a)) => {
            policy_cmd::lint(&a)
        }
        Command::Policy(PolicyCommand::Test(a)) => policy_cmd::test(&a),
    };
    ExitCode::from(code)
}
