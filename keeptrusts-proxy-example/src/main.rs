//! `kt`: the keeptrusts command line.

mod admin_api;
mod admin_cmd;
mod anthropic;
mod api;
mod backend;
mod console;
mod gateway;
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
    Dashboard(admin_cmd::DashboardArgs),
    /// First run: on an empty store, set up the seed's org (an owner; engineering, support and
    /// legal with an admin and a member each; wallets) and print its keys once; then run the
    /// gateway with the example pack and its console.
    ///
    /// Example: `cargo run -p keeptrusts-proxy-example -- quickstart` (from the repository)
    ///
    /// Exit status: as `kt gateway run`; 1 when the store cannot be set up.
    Quickstart(console::QuickstartArgs),
    /// The web console (served by `kt gateway run` at `/console`).
    #[command(subcommand)]
    Console(ConsoleCommand),
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
enum GatewayCommand {
    /// Serve the OpenAI-compatible API and the admin API.
    ///
    /// Exit status: 0 after a clean shutdown (Ctrl-C, SIGTERM), 2 for a bad pack, store or
    /// option, 1 if the address cannot be bound.
    Run(gateway::RunArgs),
}

#[derive(Debug, Subcommand)]
enum ConsoleCommand {
    /// Print a one-time sign-in URL for a member who has no key yet.
    ///
    /// Example: `kt console link --email ana@yourco.com --url http://127.0.0.1:41002`
    ///
    /// Exit status: 0, 2 for an unknown member, 1 when the store fails.
    Link(console::LinkArgs),
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
        Command::Console(ConsoleCommand::Link(a)) => console::link(&a),
        Command::Quickstart(a) => {
            init_logs();
            console::quickstart(&a)
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
}
