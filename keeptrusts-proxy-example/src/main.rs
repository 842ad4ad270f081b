//! `kt`: the keeptrusts command line.

mod admin_cmd;
mod backend;
mod bootstrap;
mod gateway;
mod policy_cmd;
mod quickstart;
mod scan_cmd;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keeptrusts: team-based AI governance. The gateway (`kt gateway run`) puts every team's policy
/// chain, budget and models between your applications and the LLM providers; the other commands
/// manage teams, keys, wallets, tickets, escalations and the audit trail on its store, and lint,
/// test and scan offline.
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
    #[command(
        after_help = "Example:\n  echo '{\"id\": 1, \"text\": \"mail jane@example.com\"}' | kt scan"
    )]
    Scan(scan_cmd::ScanArgs),
    /// Run the gateway.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Teams and their members.
    #[command(subcommand)]
    Team(admin_cmd::TeamCommand),
    /// Org admins: admins of every team.
    #[command(subcommand)]
    Org(admin_cmd::OrgCommand),
    /// API keys.
    #[command(subcommand)]
    Key(admin_cmd::KeyCommand),
    /// Wallets: allocations and balances.
    #[command(subcommand)]
    Wallet(admin_cmd::WalletCommand),
    /// Cost tickets (402 budget_exceeded).
    #[command(subcommand)]
    Ticket(admin_cmd::ResolveCommand),
    /// Escalations (human-oversight).
    #[command(subcommand)]
    Escalation(admin_cmd::ResolveCommand),
    /// The audit event chain.
    #[command(subcommand)]
    Events(admin_cmd::EventsCommand),
    /// A dashboard section as a user sees it.
    #[command(
        after_help = "Example:\n  kt dashboard --as lead@yourco.com --team support --section spend"
    )]
    Dashboard(admin_cmd::DashboardArgs),
    /// First run: on an empty store, set up the seed's org (an owner; engineering, support and
    /// legal with an admin and a member each; wallets) and print its keys once; then run the
    /// gateway with the example pack and its console.
    ///
    /// Exit status: as `kt gateway run`.
    #[command(
        after_help = "Example:\n  kt quickstart      (from the repository: cargo run -p keeptrusts-proxy-example -- quickstart)"
    )]
    Quickstart(quickstart::QuickstartArgs),
    /// The web console (served by `kt gateway run` at `/console`).
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// Redact text read on stdin (streamed) and write it to stdout.
    ///
    /// Exit status: 0, 2 for input that is not UTF-8 or a bad option, 1 on an I/O error.
    #[command(after_help = "Example:\n  kt redact < ticket.txt > ticket.redacted.txt")]
    Redact(scan_cmd::RedactArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a pack and print the effective chain of every team it names.
    ///
    /// Exit status: 0 valid, 2 invalid, 1 the file could not be read.
    #[command(
        after_help = "Example:\n  kt policy lint --file examples/packs/gateway-quickstart.yaml --known-teams engineering,support,legal"
    )]
    Lint(policy_cmd::LintArgs),
    /// Run golden cases (principal + request → expected verdict) against a pack.
    ///
    /// Exit status: 0 all passed, 1 a case failed, 2 the pack or a case file is invalid.
    #[command(
        after_help = "Example:\n  kt policy test --file examples/packs/multi-team-governance.yaml --cases examples/packs/cases/multi-team-governance"
    )]
    Test(policy_cmd::TestArgs),
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Serve the OpenAI-compatible API and the admin API.
    ///
    /// Exit status: 0 after a clean shutdown (Ctrl-C, SIGTERM), 2 for a bad pack, store or
    /// option, 1 if the address cannot be bound.
    #[command(
        after_help = "Example:\n  kt gateway run --pack examples/packs/gateway-quickstart.yaml --bootstrap seed"
    )]
    Run(gateway::RunArgs),
}

#[derive(Debug, Subcommand)]
enum ConsoleCommand {
    /// Print a one-time sign-in URL for a member who has no key yet.
    ///
    /// Exit status: 0, 2 for an unknown member, 1 when the store fails.
    #[command(
        after_help = "Example:\n  kt console link --email ana@yourco.com --url http://127.0.0.1:41002"
    )]
    Link(gateway::console::LinkArgs),
}

#[derive(Debug, Subcommand)]
enum PackCommand {
    /// Same as `kt policy lint`.
    #[command(
        after_help = "Example:\n  kt pack validate --file examples/packs/gateway-quickstart.yaml"
    )]
    Validate(policy_cmd::LintArgs),
}

/// The options every store command takes (`--store`, `--org-id`, `--json`) may also come
/// before the subcommand: `kt --store sqlite:kt.db team list` is `kt team list --store
/// sqlite:kt.db`. They are moved after it; any other leading option is left where it is.
fn hoisted(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut moved = Vec::new();
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let s = a.to_string_lossy();
        if s == "--store" || s == "--org-id" {
            moved.push(a);
            moved.extend(args.next());
        } else if s.starts_with("--store=") || s.starts_with("--org-id=") || s == "--json" {
            moved.push(a);
        } else {
            rest.push(a);
            rest.extend(args.by_ref());
        }
    }
    out.extend(rest);
    out.extend(moved);
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(hoisted(std::env::args_os()));
    let code = match cli.command {
        Command::Policy(PolicyCommand::Lint(a)) | Command::Pack(PackCommand::Validate(a)) => {
            policy_cmd::lint(&a)
        }
        Command::Policy(PolicyCommand::Test(a)) => policy_cmd::test(&a),
        Command::Scan(a) => scan_cmd::scan(&a),
        Command::Redact(a) => scan_cmd::redact(&a),
        Command::Gateway(GatewayCommand::Run(a)) => {
            init_logs();
            gateway::run(&a)
        }
        Command::Team(c) => admin_cmd::team(&c),
        Command::Org(c) => admin_cmd::org(&c),
        Command::Key(c) => admin_cmd::key(&c),
        Command::Wallet(c) => admin_cmd::wallet(&c),
        Command::Ticket(c) => admin_cmd::ticket(&c),
        Command::Escalation(c) => admin_cmd::escalation(&c),
        Command::Events(c) => admin_cmd::events(&c),
        Command::Dashboard(a) => admin_cmd::dashboard(&a),
        Command::Console(ConsoleCommand::Link(a)) => gateway::console::link(&a),
        Command::Quickstart(a) => {
            init_logs();
            quickstart::quickstart(&a)
        }
    };
    ExitCode::from(code)
}

/// Structured logs on stderr (`RUST_LOG`, default `info`); they never carry prompt text or
/// detected values: only ids, codes, targets and timings are logged.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn store_options_may_come_before_the_subcommand() {
        let h = |a: &[&str]| -> Vec<String> {
            super::hoisted(a.iter().map(std::ffi::OsString::from))
                .into_iter()
                .map(|s| s.into_string().unwrap_or_default())
                .collect()
        };
        assert_eq!(
            h(&["kt", "--store", "sqlite:a.db", "--json", "team", "list"]),
            ["kt", "team", "list", "--store", "sqlite:a.db", "--json"]
        );
        assert_eq!(
            h(&["kt", "--org-id=acme", "events", "tail"]),
            ["kt", "events", "tail", "--org-id=acme"]
        );
        // after the subcommand, nothing moves
        assert_eq!(
            h(&["kt", "key", "create", "--store", "x", "--team", "t"]),
            ["kt", "key", "create", "--store", "x", "--team", "t"]
        );
        assert_eq!(h(&["kt", "--version"]), ["kt", "--version"]);
    }
}
