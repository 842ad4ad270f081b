//! `kt`: the keeptrusts command line.

mod policy_cmd;
mod scan_cmd;

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
    /// Detect sensitive values: reads JSON lines `{"id", "text"}` on stdin, writes
    /// `{"id", "spans": [{"start", "end", "type"}]}` per line.
    ///
    /// Exit status: 0, 2 if an input line was invalid (reported on stderr), 1 on an I/O error.
    Scan(scan_cmd::ScanArgs),
    /// Redact text read on stdin (streamed) and write it to stdout.
    ///
    /// Exit status: 0, 2 for input that is not UTF-8 or a bad option, 1 on an I/O error.
    Redact(scan_cmd::RedactArgs),
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
        Command::Scan(a) => scan_cmd::scan(&a),
        Command::Redact(a) => scan_cmd::redact(&a),
    };
    ExitCode::from(code)
}
